"""The server's memory while anonymous clients send it large bodies.

    .venv/bin/python -m bench.big_bodies [--clients 4] [--megabytes 100] [--rounds 3] [--smoke]

Starts ``bastion serve`` (one process, SQLite, fresh data directory) and, in each round,
has ``--clients`` clients at once POST a ``--megabytes`` body without any credentials to a
command, the token endpoint and the sign-in form, once declaring the size with
``Content-Length`` and once chunked. Each client keeps sending until it is answered (as an
attacker would). The server's resident set size (``VmRSS`` of its process) is sampled every
5 ms; the figure is the peak during the rounds minus the size before them, after a warm-up
request of each kind. Prints one JSON object. Every answer must be 413 (refused while the
body streams); any other makes the run exit non-zero. ``--smoke``: one round of two clients
sending 2 MB.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tests.support.bodies import BigBodyResult, rss_kib, send_big_body

from bench.common import machine, parse_args, start_server

TARGETS = (
    ("/api/directory/commands/Get-User", "application/json"),
    ("/t/contoso/oauth2/token", "application/x-www-form-urlencoded"),
    ("/t/contoso/login", "application/x-www-form-urlencoded"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parse_args(parser, smoke={"clients": 2, "megabytes": 2, "rounds": 1})
    total = args.megabytes * 1024 * 1024
    data_dir = Path(tempfile.mkdtemp(prefix="bastion-bench-bodies-"))
    server = start_server(data_dir, cpus=None)
    try:
        pid = server.process.pid
        for path, content_type in TARGETS:  # warm-up: every route's code is loaded
            send_big_body(server.base_url + path, 1024, chunked=False, content_type=content_type)
        before = rss_kib(pid)
        peak = before
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss_kib(pid))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        statuses: Counter[int] = Counter()
        sent: list[int] = []
        started = time.perf_counter()
        for _ in range(args.rounds):
            for path, content_type in TARGETS:
                for chunked in (False, True):
                    results = _at_once(
                        args.clients,
                        lambda p=path, c=content_type, ch=chunked: send_big_body(
                            server.base_url + p, total, chunked=ch, content_type=c
                        ),
                    )
                    statuses.update(r.status for r in results)
                    sent.extend(r.sent for r in results)
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
        after = rss_kib(pid)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "clients_at_once": args.clients,
                "body_mb": args.megabytes,
                "requests": sum(statuses.values()),
                "statuses": dict(statuses),
                "largest_sent_before_answer_kib": max(sent) // 1024,
                "rss_before_mib": round(before / 1024, 1),
                "rss_peak_mib": round(peak / 1024, 1),
                "rss_after_mib": round(after / 1024, 1),
                "growth_mib": round((peak - before) / 1024, 1),
                "seconds": round(elapsed, 2),
            },
            indent=2,
        )
    )
    unexpected = {status: n for status, n in statuses.items() if status != 413}
    if unexpected:
        print(f"error: answers other than 413 (0: no answer): {unexpected}", file=sys.stderr)
    return 1 if unexpected else 0


def _at_once(clients: int, send: Callable[[], BigBodyResult]) -> list[BigBodyResult]:
    results: list[BigBodyResult] = []
    threads = [threading.Thread(target=lambda: results.append(send())) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


if __name__ == "__main__":
    sys.exit(main())
