"""Client credentials grants with ``private_key_jwt`` per second, one server worker.

    .venv/bin/python -m bench.client_credentials [--connections 32] [--duration 15]
                                                 [--warmup 3] [--json] [--smoke]

Setup (not timed): ``bastion demo --setup-only`` in a fresh temporary data directory
(SQLite), then, in process on its store, one application with an RSA 2048 certificate
(as tests/support/applications.py makes them); ``taskset -c 0 bastion serve --workers 1``.
The load is wrk under ``taskset -c 1`` with ``--connections`` kept-alive connections, as the
peer's benchmark (``../shared/anchors/node-oidc-provider``, ``cc.lua``) loads its server.
Each request is what MSAL's confidential client sends: ``grant_type=client_credentials``,
``client_id``, ``client_assertion_type``, a PS256 ``client_assertion`` with ``x5t#S256``
and ``x5c``, and ``scope={base}/api/mail/.default``; one assertion is reused for every
request, as MSAL does for nine minutes. Every answer is an access token (checked by the
Lua script beside this file), and a ``sign_in.application`` audit record is committed with
it before it is sent. A warm-up run precedes the timed one; the server's CPU time is read
from /proc around the timed run. Any answer other than a token makes the run exit non-zero.
``--smoke``: one second on two connections, no warm-up.
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
from urllib.parse import urlencode

from tests.support.applications import ASSERTION_TYPE, assertion, make_certificate

from bastion.core.config import Settings
from bastion.directory import applications
from bastion.directory.tenants import find_tenant
from bastion.server.context import ServerContext
from bench.common import (
    cpu_seconds,
    demo_setup,
    machine,
    parse_args,
    run_wrk,
    start_server,
    two_cpus,
    wait_idle,
)

LUA = Path(__file__).with_suffix(".lua")
TENANT = "contoso"


def register_application(data_dir: Path) -> tuple[str, Any]:
    """An application with one certificate; returns its appId and the key pair."""
    pair = make_certificate("RSA")
    auth = ServerContext.open(Settings(data_dir=data_dir), migrate=False)
    try:
        with auth.store.begin() as conn:
            tenant = find_tenant(conn, TENANT)
            assert tenant is not None
            app = applications.create_application(
                conn, tenant_id=tenant.id, display_name="Bench job", now=time.time()
            )
            applications.add_certificate(
                conn, app, applications.parse_certificate(pair.certificate_pem), time.time()
            )
    finally:
        auth.close()
    return app.app_id, pair


def run(connections: int, duration: int, warmup: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    try:
        demo_setup(data_dir, mailboxes=0)
        app_id, pair = register_application(data_dir)
        server_cpus, load_cpus = two_cpus()  # nothing pinned on a one-CPU machine
        server = start_server(data_dir, cpus=server_cpus or None)
        try:
            base = server.base_url
            endpoint = f"{base}/t/{TENANT}/oauth2/token"
            form = {
                "grant_type": "client_credentials",
                "client_id": app_id,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion(pair, app_id, endpoint, time.time()),
                "scope": f"{base}/api/mail/.default",
                "client_info": "1",
            }
            body_file = data_dir / "request-body"
            body_file.write_text(urlencode(form))
            env = {"BENCH_PATH": f"/t/{TENANT}/oauth2/token", "BENCH_BODY": str(body_file)}

            def load(seconds: int) -> tuple[dict[str, Any], float]:
                return run_wrk(
                    LUA,
                    base,
                    connections=connections,
                    seconds=seconds,
                    cpus=load_cpus or None,
                    env=env,
                )

            warm: dict[str, Any] = {"bad": 0, "first_errors": []}
            if warmup:
                warm, _ = load(warmup)
                wait_idle(server)
            pids = server.pids
            cpu_before, wall_before = cpu_seconds(pids), time.perf_counter()
            timed, load_cpu = load(duration)
            wall = time.perf_counter() - wall_before
            server_cpu = cpu_seconds(pids) - cpu_before
        finally:
            server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    seconds = timed["duration_us"] / 1e6
    sockets = timed["socket_errors"]
    grants = timed["ok"]
    return {
        "benchmark": "client_credentials",
        "assertion": "one, reused",
        "workers": 1,
        "database": "sqlite",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "connections": connections,
        "seconds": round(seconds, 2),
        "grants": grants,
        "grants_per_s": round(grants / seconds, 1),
        "p50_ms": timed["p50_us"] / 1000,
        "p99_ms": timed["p99_us"] / 1000,
        "server_cpu_ms_per_grant": round(1000 * server_cpu / grants, 3) if grants else None,
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
        "load_generator_cpu_pct": round(100 * load_cpu / wall, 1),
        "errors": timed["bad"] + warm["bad"] + sum(sockets.values()),
        "first_errors": warm["first_errors"] + timed["first_errors"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=15, help="timed seconds")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds (0: none)")
    parser.add_argument("--json", action="store_true")
    args = parse_args(parser, smoke={"connections": 2, "duration": 1, "warmup": 0})
    if shutil.which("wrk") is None:
        print("This benchmark needs wrk:  sudo apt-get install -y wrk", file=sys.stderr)
        return 2
    r = run(args.connections, args.duration, args.warmup)
    failed = r["errors"] > 0 or r["grants"] == 0
    if args.json:
        print(json.dumps(r, indent=2))
        return 1 if failed else 0
    m = r["machine"]
    print(f"client credentials (private_key_jwt, assertion {r['assertion']}), 1 worker, SQLite")
    print(f"{m['nproc']} CPUs {m['cpu']}, Python {m['python']}, {r['date']}")
    print(
        f"  {r['grants_per_s']:.0f} grants/s on {r['connections']} connections"
        f" ({r['grants']} in {r['seconds']} s), p50 {r['p50_ms']:.1f} ms,"
        f" p99 {r['p99_ms']:.1f} ms\n"
        f"  server CPU {r['server_cpu_ms_per_grant']} ms/grant ({r['server_cpu_pct']}% of one"
        f" core), wrk {r['load_generator_cpu_pct']}%\n"
        f"  errors {r['errors']}"
    )
    for error in r["first_errors"]:
        print(f"  error: {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
