"""Retries with backoff and Retry-After, against a tiny local HTTP server (S4)."""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bastion.client.errors import NetworkError, ProxyError
from bastion.client.http import (
    BACKOFF_CAP,
    MAX_RETRY_AFTER,
    Http,
    Options,
    backoff,
    redact,
    retry_after,
)


class Scripted:
    """A server answering each request with the next (status, headers) of a script."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.seen: list[str] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                scripted.seen.append(self.command)
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                status, headers = scripted.script.pop(0) if scripted.script else (200, {})
                if status == 0:  # drop the connection without an answer
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = b'{"ok": true}'
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/x"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.server.shutdown()
    server.server.server_close()


def client(retries: int = 3) -> tuple[Http, list[float]]:
    waits: list[float] = []
    return Http(Options(retries=retries, timeout=5), sleep=waits.append, rand=lambda: 0.5), waits


def test_503_with_retry_after_in_seconds(scripted: Scripted) -> None:
    scripted.script = [(503, {"Retry-After": "2"}), (503, {"Retry-After": "1"}), (200, {})]
    http, waits = client()
    assert http.request("GET", scripted.url).status_code == 200
    assert waits == [2.0, 1.0] and len(scripted.seen) == 3


def test_429_with_retry_after_as_a_date(scripted: Scripted) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    scripted.script = [(429, {"Retry-After": when}), (200, {})]
    http, waits = client()
    assert http.request("POST", scripted.url, json={}, idempotent=False).status_code == 200
    assert len(waits) == 1 and 25 <= waits[0] <= 31


def test_backoff_grows_with_jitter_when_no_retry_after(scripted: Scripted) -> None:
    scripted.script = [(503, {})] * 3 + [(200, {})]
    http, waits = client()
    assert http.request("GET", scripted.url).status_code == 200
    assert waits == [backoff(0, lambda: 0.5), backoff(1, lambda: 0.5), backoff(2, lambda: 0.5)]
    assert waits[0] < waits[1] < waits[2]


def test_gives_up_after_the_retries_with_the_last_answer(scripted: Scripted) -> None:
    scripted.script = [(503, {})] * 5
    http, waits = client(retries=2)
    assert http.request("GET", scripted.url).status_code == 503
    assert len(waits) == 2 and len(scripted.seen) == 3


def test_a_retry_after_beyond_the_cap_is_not_waited_for(scripted: Scripted) -> None:
    scripted.script = [(503, {"Retry-After": str(int(MAX_RETRY_AFTER) + 1)})]
    http, waits = client()
    assert http.request("GET", scripted.url).status_code == 503
    assert waits == []


def test_other_errors_are_not_retried(scripted: Scripted) -> None:
    scripted.script = [(500, {}), (200, {})]
    http, waits = client()
    assert http.request("GET", scripted.url).status_code == 500 and waits == []


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    http, waits = client(retries=2)
    with pytest.raises(NetworkError) as caught:
        http.request("GET", f"http://127.0.0.1:{port}/x")
    assert len(waits) == 2
    assert caught.value.exit_code == 1 and "tried 3 times" in str(caught.value)


def test_a_dropped_answer_is_retried_only_when_idempotent(scripted: Scripted) -> None:
    scripted.script = [(0, {}), (200, {})]
    http, waits = client()
    assert http.request("GET", scripted.url).status_code == 200 and len(waits) == 1
    scripted.script = [(0, {}), (200, {})]
    with pytest.raises(NetworkError):
        http.request("POST", scripted.url, json={}, idempotent=False)


def test_proxy_authentication_required(scripted: Scripted) -> None:
    scripted.script = [(407, {"Proxy-Authenticate": 'Basic realm="corp"'})]
    proxy = scripted.url.replace("http://", "http://me:secret@").removesuffix("/x")
    http = Http(Options(proxy=proxy, retries=0))
    with pytest.raises(ProxyError) as caught:
        http.request("GET", scripted.url)
    message = str(caught.value)
    assert "407" in message and "credentials" in message and "secret" not in message


def test_retry_after_parsing() -> None:
    now = 1_000_000.0
    assert retry_after("120", now) == 120.0
    assert retry_after(email.utils.formatdate(now + 60, usegmt=True), now) == pytest.approx(60)
    assert retry_after(email.utils.formatdate(now - 60, usegmt=True), now) == 0.0
    assert retry_after("soon", now) is None and retry_after(None, now) is None


def test_backoff_is_capped() -> None:
    assert backoff(30, lambda: 1.0) == BACKOFF_CAP
    assert BACKOFF_CAP / 2 <= backoff(30, lambda: 0.0) <= BACKOFF_CAP


def test_redact_hides_proxy_passwords() -> None:
    assert redact("http://user:pw@proxy:3128") == "http://user:***@proxy:3128"
    assert redact("http://proxy:3128") == "http://proxy:3128"
