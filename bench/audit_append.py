"""Audit records appended per second, committed, through Bastion's own store.

    .venv/bin/python -m bench.audit_append [--records 3000] [--json] [--smoke]

Each mode appends to a fresh tenant with ``bastion.audit.events.record`` inside
``Store.begin()`` (the hash chain, the head row and a signed checkpoint every 100 records,
as in the server), and counts records whose transaction committed:

(a) one record per transaction, one thread;
(b) 100 records per transaction, one thread;
(c) 4 threads, one record per transaction, all on one tenant (one chain);
(d) 4 threads, one record per transaction, one tenant each (four chains);
(e) 32 threads each waiting for its own record to commit through the group commit that
    read commands use (``bastion.audit.group_commit``, decision 0012), one tenant.

SQLite runs in a temporary data directory with Bastion's settings (WAL, synchronous=FULL).
With ``BASTION_TEST_POSTGRES_URL`` set (``scripts/test`` sets it) the same runs are made on a
fresh database in that cluster, which is dropped afterwards. Each mode ends by verifying the
tenant's chain, and the verification rate is printed too; a chain that does not verify, or
holds other than the records written, makes the run exit non-zero. ``--smoke``: 32 records
per mode (320 in modes b and e).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bastion.audit import events
from bastion.audit.verify import snapshot, verify
from bastion.core.config import Settings
from bastion.server.bootstrap import new_tenant
from bastion.server.context import ServerContext
from bench.common import (
    create_postgres_database,
    drop_postgres_database,
    machine,
    parse_args,
    sqlite_pragmas,
)

THREADS = 4
GROUP_THREADS = 32


@dataclass
class Result:
    backend: str
    mode: str
    records: int
    seconds: float
    per_second: float
    verified_per_second: float


def append(auth: ServerContext, tenant_id: str, count: int, per_transaction: int, tag: str) -> None:
    now = auth.now()
    for first in range(0, count, per_transaction):
        with auth.store.begin() as conn:
            for i in range(first, min(first + per_transaction, count)):
                events.record(
                    conn,
                    tenant_id=tenant_id,
                    type="sign_in.success",
                    outcome="success",
                    now=now + i / 1000,
                    actor_id="00000000-0000-4000-8000-000000000000",
                    actor_name="someone@bench",
                    client_id="bastion-cli",
                    amr=["pwd", "otp"],
                    session_id=f"{tag}-{i}",
                )


def append_grouped(auth: ServerContext, tenant_id: str, count: int, tag: str) -> None:
    """Like the records of concurrent reads: each call returns once its record committed."""
    now = auth.now()
    for i in range(count):
        auth.audit_reads.record(
            tenant_id=tenant_id,
            type="command",
            outcome="success",
            now=now + i / 1000,
            actor_id="00000000-0000-4000-8000-000000000000",
            actor_name="someone@bench",
            client_id="bastion-cli",
            service="mail",
            command="Get-Mailbox",
            session_id=f"{tag}-{i}",
        )


def fresh_tenant(auth: ServerContext) -> str:
    with auth.store.begin() as conn:
        name = "b-" + secrets.token_hex(5)
        return new_tenant(auth, conn, name=name, display_name=name).id


def run(auth: ServerContext, backend: str, mode: str, records: int) -> Result:
    tenants = [fresh_tenant(auth) for _ in range(THREADS if mode == "d" else 1)]
    jobs: list[Callable[[], None]]
    if mode == "a":
        jobs = [lambda: append(auth, tenants[0], records, 1, "a")]
    elif mode == "b":
        jobs = [lambda: append(auth, tenants[0], records, 100, "b")]
    elif mode == "e":
        share = records // GROUP_THREADS
        records = share * GROUP_THREADS
        jobs = [
            (lambda n=n: append_grouped(auth, tenants[0], share, f"e{n}"))
            for n in range(GROUP_THREADS)
        ]
    else:
        share = records // THREADS
        records = share * THREADS

        def job(n: int) -> Callable[[], None]:
            tenant = tenants[n] if mode == "d" else tenants[0]
            return lambda: append(auth, tenant, share, 1, f"{mode}{n}")

        jobs = [job(n) for n in range(THREADS)]
    threads = [threading.Thread(target=j) for j in jobs]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start

    checked = 0
    verify_start = time.perf_counter()
    with snapshot(auth.store) as conn:
        for tenant in tenants:
            report = verify(conn, auth.keyring, tenant)
            if not report.ok:
                raise SystemExit(f"chain of mode {mode} does not verify: {report.problem}")
            checked += report.records
    verify_seconds = time.perf_counter() - verify_start
    if checked != records:
        raise SystemExit(f"mode {mode}: {checked} records verified, {records} written")
    return Result(backend, mode, records, seconds, records / seconds, checked / verify_seconds)


def bench_backend(backend: str, records: int, database_url: str | None) -> list[Result]:
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-audit-bench-"))
    try:
        auth = ServerContext.open(Settings(data_dir=data_dir, database_url=database_url))
        try:
            if backend == "sqlite":
                print(f"sqlite: {sqlite_pragmas(data_dir)}", flush=True)
            results = []
            for mode in ("a", "b", "c", "d", "e"):
                count = records * 10 if mode in ("b", "e") else records
                result = run(auth, backend, mode, count)
                print(
                    f"{backend:10} ({mode}) {result.records:6} records in "
                    f"{result.seconds:6.2f} s: {result.per_second:8,.0f}/s committed; "
                    f"verify {result.verified_per_second:8,.0f}/s",
                    flush=True,
                )
                results.append(result)
            return results
        finally:
            auth.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--records",
        type=int,
        default=3000,
        help="records per mode (modes b and e write ten times as many); default 3000",
    )
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parse_args(parser, smoke={"records": 32})

    print(json.dumps(machine()), flush=True)
    results = bench_backend("sqlite", args.records, None)
    base = os.environ.get("BASTION_TEST_POSTGRES_URL")
    if base:
        url, dsn = create_postgres_database(base, "bench_audit")
        try:
            results += bench_backend("postgresql", args.records, url)
        finally:
            drop_postgres_database(dsn, url)
    else:
        print("postgresql: skipped (BASTION_TEST_POSTGRES_URL is not set)")
    if args.json:
        print(json.dumps([asdict(r) for r in results]))


if __name__ == "__main__":
    main()
