"""Listing every mailbox: objects per second, and the server's memory while it runs.

    .venv/bin/python -m bench.mailbox_listing [--people 1000000] [--page-size 1000] [--json]
                                              [--smoke]

Setup (not timed): ``bastion demo --setup-only --mailboxes N`` in a fresh temporary data
directory (SQLite; the seeding time is reported too), ``taskset -c 0 bastion serve``, one
sign-in of ``rory@contoso`` (Read-Only Reporting: password and TOTP) and a refresh for the
mail audience. Timed:
``Get-Mailbox`` page after page by cursor until ``next`` is null, from this process pinned
to CPU 1, each page parsed as JSON and its items counted. The server's resident memory is
sampled from /proc every 100 ms: idle (after start-up and one warm-up page) and the peak
during the listing. ``--smoke``: 300 mailboxes in pages of 100.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    Account,
    cpu_seconds,
    demo_setup,
    machine,
    parse_args,
    rss_kib,
    start_server,
    two_cpus,
)
from bench.mailbox_reads import USER, mail_token


class MemoryWatch(threading.Thread):
    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.peak = max(self.peak, rss_kib(self.pids))
            time.sleep(0.1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    seeding = time.perf_counter()
    info = demo_setup(data_dir, mailboxes=args.people)
    seeded_s = time.perf_counter() - seeding
    reader = Account.of_demo(info, USER)
    server = start_server(data_dir, cpus=args.server_cpus or None, workers=1)
    if args.client_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.client_cpus.split(",")})
    try:
        token = mail_token(server.base_url, reader)
        url = f"{server.base_url}/api/mail/commands/Get-Mailbox"
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            http.post(url, json={"page_size": args.page_size}).raise_for_status()
            pids = server.pids
            idle = rss_kib(pids)
            watch = MemoryWatch(pids)
            watch.start()
            cpu_before, started = cpu_seconds(pids), time.perf_counter()
            count, pages, cursor = 0, 0, None
            while True:
                body: dict[str, Any] = {"page_size": args.page_size}
                if cursor:
                    body["cursor"] = cursor
                answer = http.post(url, json=body)
                answer.raise_for_status()
                page = answer.json()
                count += len(page["items"])
                pages += 1
                cursor = page["next"]
                if cursor is None:
                    break
            wall = time.perf_counter() - started
            server_cpu = cpu_seconds(pids) - cpu_before
            watch.stopped.set()
            watch.join()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return {
        "people": args.people,
        "seeding_s": round(seeded_s, 1),
        "page_size": args.page_size,
        "objects": count,
        "pages": pages,
        "seconds": round(wall, 2),
        "objects_per_s": round(count / wall),
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
        "rss_idle_mib": round(idle / 1024, 1),
        "rss_peak_mib": round(watch.peak / 1024, 1),
        "rss_growth_mib": round((watch.peak - idle) / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--server-cpus", default="0", help="taskset list ('' for any)")
    parser.add_argument("--client-cpus", default="1", help="CPUs for this process ('' any)")
    parser.add_argument("--json", action="store_true")
    server_cpus, client_cpus = two_cpus()
    args = parse_args(
        parser,
        smoke={
            "people": 300,
            "page_size": 100,
            "server_cpus": server_cpus,
            "client_cpus": client_cpus,
        },
    )
    setup = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(setup))
    result = run(args)
    print(
        f"  {result['objects']:,} mailboxes in {result['seconds']} s: "
        f"{result['objects_per_s']:,} objects/s ({result['pages']} pages of "
        f"{result['page_size']}); server CPU {result['server_cpu_pct']}%\n"
        f"  server memory: idle {result['rss_idle_mib']} MiB, peak {result['rss_peak_mib']} MiB"
        f" (+{result['rss_growth_mib']} MiB); seeding took {result['seeding_s']} s"
    )
    if args.json:
        print(json.dumps({**setup, "result": result}))
    return 0 if result["objects"] >= args.people else 1


if __name__ == "__main__":
    sys.exit(main())
