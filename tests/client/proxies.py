"""A real HTTP proxy for tests: proxy.py on a loopback port, with basic authentication."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import free_port


@contextmanager
def http_proxy(log_dir: Path, *, user: str, password: str) -> Iterator[int]:
    """Run proxy.py requiring ``user:password``; yields its port."""
    port = free_port()
    log = log_dir / "proxy.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "--hostname",
                "127.0.0.1",
                "--port",
                str(port),
                "--basic-auth",
                f"{user}:{password}",
                "--num-workers",
                "1",
                "--num-acceptors",
                "1",
                "--log-level",
                "WARNING",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"proxy.py exited: {log.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("proxy.py did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
