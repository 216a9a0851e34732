"""Client credentials grants with ``private_key_jwt`` per second, one server worker.

    .venv/bin/python -m bench.client_credentials [--requests 2000] [--connections 1 4]
                                                 [--fresh] [--json] [--smoke]

Setup (not timed): ``bastion demo --setup-only`` in a fresh temporary data directory
(SQLite), then, in process on its store, one application with an RSA 2048 certificate
(as tests/support/applications.py makes them); ``taskset -c 0 bastion serve --workers 1``.
The client runs in this process, pinned to the other core, each connection a thread with its
own kept-alive ``httpx`` client. Each request is what MSAL's confidential client sends:
``grant_type=client_credentials``, ``client_id``, ``client_assertion_type``, a PS256
``client_assertion`` with ``x5t#S256`` and ``x5c`` and ``scope={base}/api/mail/.default``;
every answer is an access token, and a ``sign_in.application`` audit record is committed
with it. By default one assertion is reused for every request (as MSAL does for nine
minutes); with ``--fresh`` every request carries its own, signed before the timing starts.
A warm-up of a tenth of the requests precedes each timed run. The server's CPU time is
read from /proc before and after. A request answered other than 200 makes the run exit
non-zero. ``--smoke``: 20 requests, on one connection then on two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.applications import ASSERTION_TYPE, assertion, make_certificate

from bastion.core.config import Settings
from bastion.directory import applications
from bastion.directory.tenants import find_tenant
from bastion.server.context import ServerContext
from bench.common import cpu_seconds, demo_setup, machine, parse_args, start_server, two_cpus

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


def timed_run(
    base: str, forms: list[dict[str, str]], connections: int
) -> tuple[float, list[float], int]:
    """Post every form, ``connections`` at a time; (wall seconds, latencies, failures)."""
    url = f"{base}/t/{TENANT}/oauth2/token"
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    shares = [forms[i::connections] for i in range(connections)]

    def work(share: list[dict[str, str]]) -> None:
        mine: list[float] = []
        bad = 0
        with httpx.Client(timeout=30) as client:
            for form in share:
                started = time.perf_counter()
                response = client.post(url, data=form)
                mine.append(time.perf_counter() - started)
                if response.status_code != 200:
                    bad += 1
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    threads = [threading.Thread(target=work, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, failures[0]


def run(requests: int, connection_counts: list[int], fresh: bool) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    try:
        demo_setup(data_dir, mailboxes=0)
        app_id, pair = register_application(data_dir)
        server_cpus, client_cpus = two_cpus()  # nothing pinned on a one-CPU machine
        if client_cpus:
            os.sched_setaffinity(0, {int(client_cpus)})
        server = start_server(data_dir, cpus=server_cpus or None)
        try:
            base = server.base_url
            endpoint = f"{base}/t/{TENANT}/oauth2/token"

            def form(token: str) -> dict[str, str]:
                return {
                    "grant_type": "client_credentials",
                    "client_id": app_id,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": token,
                    "scope": f"{base}/api/mail/.default",
                    "client_info": "1",
                }

            def forms(count: int) -> list[dict[str, str]]:
                if not fresh:
                    one = form(assertion(pair, app_id, endpoint, time.time()))
                    return [one] * count
                return [form(assertion(pair, app_id, endpoint, time.time())) for _ in range(count)]

            results = []
            for connections in connection_counts:
                _, _, warm_failures = timed_run(
                    base, forms(max(requests // 10, connections)), connections
                )
                batch = forms(requests)
                pids = server.pids
                cpu_before = cpu_seconds(pids)
                wall, latencies, failures = timed_run(base, batch, connections)
                server_cpu = cpu_seconds(pids) - cpu_before
                latencies.sort()
                results.append(
                    {
                        "connections": connections,
                        "requests": len(batch),
                        "failures": failures,
                        "warmup_failures": warm_failures,
                        "seconds": round(wall, 2),
                        "grants_per_s": round(len(batch) / wall, 1),
                        "p50_ms": round(statistics.median(latencies) * 1000, 2),
                        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 2),
                        "server_cpu_ms_per_grant": round(server_cpu / len(batch) * 1000, 2),
                    }
                )
                print(f"  {results[-1]}", file=sys.stderr)
        finally:
            server.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "benchmark": "client_credentials",
        "assertion": "fresh per request" if fresh else "one, reused",
        "workers": 1,
        "database": "sqlite",
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "runs": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--fresh", action="store_true", help="a new assertion per request")
    parser.add_argument("--json", action="store_true")
    args = parse_args(parser, smoke={"requests": 20, "connections": [1, 2]})
    report = run(args.requests, args.connections, args.fresh)
    failed = any(r["failures"] or r["warmup_failures"] for r in report["runs"])
    if args.json:
        print(json.dumps(report, indent=2))
        return 1 if failed else 0
    m = report["machine"]
    print(f"client credentials (private_key_jwt, assertion {report['assertion']}), 1 worker,")
    print(f"SQLite; {m['nproc']} CPUs {m['cpu']}, Python {m['python']}, {report['date']}")
    print("connections  grants/s   p50 ms   p95 ms   server CPU ms/grant  failures")
    for r in report["runs"]:
        print(
            f"{r['connections']:>11}  {r['grants_per_s']:>8}  {r['p50_ms']:>7}  {r['p95_ms']:>7}"
            f"  {r['server_cpu_ms_per_grant']:>19}  {r['failures']:>8}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
