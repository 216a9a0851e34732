"""Sending large request bodies over a raw socket, and reading a process's memory."""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

CHUNK = 64 * 1024


@dataclass(frozen=True)
class BigBodyResult:
    #: the status line's code, or 0 when the connection ended without an answer
    status: int
    #: body bytes written before the answer came (or the connection was closed)
    sent: int
    head: bytes


def send_big_body(
    url: str,
    total: int,
    *,
    chunked: bool,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> BigBodyResult:
    """POST ``total`` bytes to ``url`` as a client that keeps sending until answered: with
    ``Content-Length`` or chunked; between chunks it looks for an answer and stops at one."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Content-Type: {content_type}",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    sent = 0
    answer = b""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        chunk = b" " * CHUNK
        try:
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                piece = chunk[: min(CHUNK, total - sent)]
                if chunked:
                    sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                else:
                    sock.sendall(piece)
                sent += len(piece)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    status = 0
    if answer.startswith(b"HTTP/1.1 "):
        status = int(answer[9:12])
    return BigBodyResult(status, sent, answer.split(b"\r\n\r\n", 1)[0])


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (``VmRSS`` of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")
