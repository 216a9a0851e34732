"""Rotating refresh-token grants per second, server on one core, wrk on the other.

    .venv/bin/python -m bench.refresh_grants [--duration 20] [--reference] [--json] [--smoke]

Setup (not timed): ``bastion demo --setup-only`` in a fresh temporary data directory (SQLite),
``taskset -c 0 bastion serve --workers 1``, then one authorization-code sign-in of the demo
user ``sam@contoso`` (password only) per chain, through the pages. Each chain then loops
``grant_type=refresh_token`` with its newest refresh token, ``client_id=bastion-cli`` and a
``resource`` alternating between ``{base}/api/mail`` and ``{base}/api/sites``; every answer
is a JWT access token, an ID token and the next refresh token. The load generator is wrk
(Debian package ``wrk``) under ``taskset -c 1``, one chain per connection, with the Lua
script beside this file; its CPU time is reported, to show it is not the bottleneck.
A warm-up run precedes the timed run. They use separate chains, and the timed run starts
once the server has finished what the warm-up left in flight, so that no refresh token is
ever presented twice (that would revoke its chain). ``--smoke``: two chains, one second, no
warm-up; exits non-zero on any error or when no grant succeeded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import (
    Account,
    Server,
    code_sign_in,
    cpu_seconds,
    create_postgres_database,
    demo_setup,
    drop_postgres_database,
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
USER = "sam@contoso"


@dataclass(frozen=True)
class Plan:
    workers: int
    server_cpus: str | None
    load_cpus: str | None
    connections: int
    warmup: int
    duration: int
    #: a PostgreSQL server (SQLAlchemy URL) to create the run's database on; None: SQLite
    postgres: str | None = None


def wrk(plan: Plan, server: Server, seconds: int, tokens: Path) -> tuple[dict[str, Any], float]:
    """One wrk run; returns its BENCH summary and wrk's own CPU seconds."""
    base = server.base_url
    return run_wrk(
        LUA,
        base,
        connections=plan.connections,
        seconds=seconds,
        cpus=plan.load_cpus,
        env={
            "BENCH_TOKENS": str(tokens),
            "BENCH_PATH": f"/t/{TENANT}/oauth2/token",
            "BENCH_RESOURCES": " ".join(
                quote(f"{base}/api/{s}", safe="") for s in ("mail", "sites")
            ),
        },
    )


def run(plan: Plan, keep: bool = False) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    database_url, dsn = (
        create_postgres_database(plan.postgres, "bench_refresh") if plan.postgres else (None, "")
    )
    info = demo_setup(data_dir, database_url=database_url)
    sam = next(u for u in info["users"] if u["username"] == USER)
    server = start_server(
        data_dir, cpus=plan.server_cpus, workers=plan.workers, database_url=database_url
    )
    try:
        started = time.perf_counter()
        account = Account(sam["username"], sam["password"])
        chains = [
            code_sign_in(server.base_url, TENANT, account)["refresh_token"]
            for _ in range(2 * plan.connections)
        ]
        print(
            f"  {len(chains)} sign-ins in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        warm_tokens, timed_tokens = data_dir / "warm-up.txt", data_dir / "timed.txt"
        warm_tokens.write_text("\n".join(chains[: plan.connections]) + "\n")
        timed_tokens.write_text("\n".join(chains[plan.connections :]) + "\n")
        if plan.warmup > 0:
            warm, _ = wrk(plan, server, plan.warmup, warm_tokens)
            print(f"  warm-up: {warm['ok'] / (warm['duration_us'] / 1e6):.0f}/s", file=sys.stderr)
            wait_idle(server)
        pids = server.pids
        cpu_before, wall_before = cpu_seconds(pids), time.perf_counter()
        timed, load_cpu = wrk(plan, server, plan.duration, timed_tokens)
        wall = time.perf_counter() - wall_before
        server_cpu = cpu_seconds(pids) - cpu_before
    finally:
        server.stop()
        database = {"backend": "postgresql"} if database_url else sqlite_pragmas(data_dir)
        if database_url:
            drop_postgres_database(dsn, database_url)
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    seconds = timed["duration_us"] / 1e6
    sockets = timed["socket_errors"]
    return {
        "workers": plan.workers,
        "server_cpus": plan.server_cpus or "any",
        "load_cpus": plan.load_cpus or "any",
        "connections": plan.connections,
        "seconds": round(seconds, 2),
        "grants": timed["ok"],
        "grants_per_s": round(timed["ok"] / seconds, 1),
        "p50_ms": timed["p50_us"] / 1000,
        "p90_ms": timed["p90_us"] / 1000,
        "p99_ms": timed["p99_us"] / 1000,
        "max_ms": timed["max_us"] / 1000,
        "errors": timed["bad"] + sockets["connect"] + sockets["read"] + sockets["write"],
        "over_10s": sockets["timeout"],
        "first_errors": timed["first_errors"],
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
        "server_cpu_ms_per_grant": round(1000 * server_cpu / timed["ok"], 3)
        if timed["ok"]
        else None,
        "load_generator_cpu_pct": round(100 * load_cpu / wall, 1),
        "database": database,
        "data_dir": str(data_dir) if keep else None,
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"workers={result['workers']} server cpus={result['server_cpus']} "
        f"wrk cpus={result['load_cpus']} chains={result['connections']}\n"
        f"  {result['grants_per_s']:.0f} grants/s ({result['grants']} in {result['seconds']} s)"
        f"\n  latency p50 {result['p50_ms']:.1f} ms  p90 {result['p90_ms']:.1f} ms"
        f"  p99 {result['p99_ms']:.1f} ms  max {result['max_ms']:.0f} ms\n"
        f"  errors (non-200 or socket) {result['errors']}  over 10 s {result['over_10s']}\n"
        f"  CPU: server {result['server_cpu_pct']}% of one core"
        f" ({result['server_cpu_ms_per_grant']} ms per grant),"
        f" wrk {result['load_generator_cpu_pct']}% of one core\n"
        f"  {_database(result['database'])}"
    )
    for error in result["first_errors"]:
        print(f"  error: {error}")


def _database(database: dict[str, Any]) -> str:
    if database.get("backend") == "postgresql":
        return "PostgreSQL"
    return f"SQLite: journal_mode={database['journal_mode']} synchronous={database['synchronous']}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=32, help="concurrent chains")
    parser.add_argument("--duration", type=int, default=20, help="timed seconds")
    parser.add_argument("--warmup", type=int, default=5, help="warm-up seconds (0: none)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1], help="server processes; several: a run each"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="a fresh database on the PostgreSQL server of BASTION_TEST_POSTGRES_URL "
        "(scripts/with-postgres sets it) instead of SQLite",
    )
    parser.add_argument("--server-cpus", default="0", help="taskset list ('' for any)")
    parser.add_argument("--load-cpus", default="1", help="taskset list for wrk ('' for any)")
    parser.add_argument(
        "--reference", action="store_true", help="also run --workers 2 with nothing pinned"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    server_cpus, load_cpus = two_cpus()
    args = parse_args(
        parser,
        smoke={
            "connections": 2,
            "duration": 1,
            "warmup": 0,
            "server_cpus": server_cpus,
            "load_cpus": load_cpus,
        },
    )
    if shutil.which("wrk") is None:
        print(
            "This benchmark drives the load with wrk, which is not installed.\n"
            "Install it with:  sudo apt-get install -y wrk   (Debian/Ubuntu package 'wrk')",
            file=sys.stderr,
        )
        return 2
    if (args.server_cpus or args.load_cpus) and shutil.which("taskset") is None:
        print("taskset is missing: sudo apt-get install -y util-linux", file=sys.stderr)
        return 2
    postgres = os.environ.get("BASTION_TEST_POSTGRES_URL") if args.postgres else None
    if args.postgres and not postgres:
        print("--postgres needs BASTION_TEST_POSTGRES_URL (scripts/with-postgres)", file=sys.stderr)
        return 2
    plans = [
        Plan(
            workers=workers,
            server_cpus=args.server_cpus or None,
            load_cpus=args.load_cpus or None,
            connections=args.connections,
            warmup=args.warmup,
            duration=args.duration,
            postgres=postgres,
        )
        for workers in args.workers
    ]
    if args.reference:
        plans.append(Plan(2, None, None, args.connections, args.warmup, args.duration, postgres))
    setup = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(setup))
    results = []
    for plan in plans:
        result = run(plan, keep=args.keep)
        report(result)
        results.append(result)
    if args.json:
        print(json.dumps({**setup, "results": results}))
    failed = [r for r in results if r["errors"] or r["over_10s"] or not r["grants"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
