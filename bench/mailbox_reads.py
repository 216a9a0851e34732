"""Authorized single-object reads per second: ``Get-Mailbox -Identity``, end to end.

    .venv/bin/python -m bench.mailbox_reads [--duration 20] [--people 20000] [--json] [--smoke]

Setup (not timed): ``bastion demo --setup-only --mailboxes N`` in a fresh temporary data
directory (SQLite), ``taskset -c 0 bastion serve --workers 1``, one authorization-code sign-in of
``rory@contoso`` (Read-Only Reporting: password and TOTP, as every role holder signs in)
through the pages, and a refresh for the mail audience.
Each request is ``POST /api/mail/commands/Get-Mailbox {"identity": "userNNNNNNN@contoso"}``
with the bearer token, walking through the seeded mailboxes; each answer is checked to be
the mailbox. So every request pays for what a real one does: the token's signature, issuer,
audience and expiry, the caller's role groups read from the database, the scope, the
command, and its audit record appended to the tenant's hash chain and committed. The load
generator is wrk under ``taskset -c 1``. ``--smoke``: 300 mailboxes, two connections, one
second, no warm-up; exits non-zero on any error or when no read succeeded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    Account,
    code_sign_in,
    cpu_seconds,
    demo_setup,
    machine,
    parse_args,
    run_wrk,
    sqlite_pragmas,
    start_server,
    two_cpus,
    wait_idle,
)

LUA = Path(__file__).with_suffix(".lua")
TENANT = "contoso"
USER = "rory@contoso"


def mail_token(base_url: str, account: Account) -> str:
    tokens = code_sign_in(base_url, TENANT, account)
    answer = httpx.post(
        f"{base_url}/t/{TENANT}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "bastion-cli",
            "resource": f"{base_url}/api/mail",
        },
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    info = demo_setup(data_dir, mailboxes=args.people)
    reader = Account.of_demo(info, USER)
    server = start_server(data_dir, cpus=args.server_cpus or None, workers=1)
    try:
        token = mail_token(server.base_url, reader)
        env = {
            "BENCH_TOKEN": token,
            "BENCH_PATH": "/api/mail/commands/Get-Mailbox",
            "BENCH_DOMAIN": TENANT,
            "BENCH_PEOPLE": str(args.people),
        }

        def load(seconds: float) -> tuple[dict[str, Any], float]:
            return run_wrk(
                LUA,
                server.base_url,
                connections=args.connections,
                seconds=seconds,
                cpus=args.load_cpus or None,
                env=env,
            )

        if args.warmup > 0:
            warm, _ = load(args.warmup)
            print(f"  warm-up: {warm['ok'] / (warm['duration_us'] / 1e6):.0f}/s", file=sys.stderr)
            wait_idle(server)
        pids = server.pids
        cpu_before, wall_before = cpu_seconds(pids), time.perf_counter()
        timed, load_cpu = load(args.duration)
        wall = time.perf_counter() - wall_before
        server_cpu = cpu_seconds(pids) - cpu_before
    finally:
        server.stop()
        sqlite = sqlite_pragmas(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
    seconds = timed["duration_us"] / 1e6
    sockets = timed["socket_errors"]
    return {
        "people": args.people,
        "connections": args.connections,
        "seconds": round(seconds, 2),
        "reads": timed["ok"],
        "reads_per_s": round(timed["ok"] / seconds, 1),
        "reads_per_server_cpu_s": round(timed["ok"] / server_cpu, 1) if server_cpu else None,
        "p50_ms": timed["p50_us"] / 1000,
        "p99_ms": timed["p99_us"] / 1000,
        "errors": timed["bad"] + sockets["connect"] + sockets["read"] + sockets["write"],
        "first_errors": timed["first_errors"],
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
        "load_generator_cpu_pct": round(100 * load_cpu / wall, 1),
        "sqlite": sqlite,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=20000, help="seeded mailboxes")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=20, help="timed seconds")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up seconds (0: none)")
    parser.add_argument("--server-cpus", default="0", help="taskset list ('' for any)")
    parser.add_argument("--load-cpus", default="1", help="taskset list for wrk ('' for any)")
    parser.add_argument("--json", action="store_true")
    server_cpus, load_cpus = two_cpus()
    args = parse_args(
        parser,
        smoke={
            "people": 300,
            "connections": 2,
            "duration": 1,
            "warmup": 0,
            "server_cpus": server_cpus,
            "load_cpus": load_cpus,
        },
    )
    if shutil.which("wrk") is None:
        print("This benchmark needs wrk:  sudo apt-get install -y wrk", file=sys.stderr)
        return 2
    setup = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(setup))
    result = run(args)
    print(
        f"  {result['reads_per_s']:.0f} Get-Mailbox -Identity/s "
        f"({result['reads_per_server_cpu_s']}/s per second of server CPU), "
        f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
        f"errors {result['errors']}\n"
        f"  CPU: server {result['server_cpu_pct']}%, wrk {result['load_generator_cpu_pct']}%"
        f"  SQLite synchronous={result['sqlite']['synchronous']}"
    )
    for error in result["first_errors"]:
        print(f"  error: {error}")
    if args.json:
        print(json.dumps({**setup, "result": result}))
    return 0 if result["errors"] == 0 and result["reads"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
