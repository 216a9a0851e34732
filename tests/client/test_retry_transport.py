"""The retry transport against httpx.MockTransport, with an injected sleep: what is sent
again, after how long, and what never is (issue 11 item 5)."""

from __future__ import annotations

import ssl

import httpx
import pytest

from bastion.client.retry_policy import MAX_RETRY_AFTER, REPLAYABLE, backoff
from bastion.client.retry_transport import RetryTransport

URL = "https://127.0.0.1/x"


class Server:
    """Answers each request with the next item of a script: a status with its headers, or
    an exception raised as the transport would."""

    def __init__(self, script: list[int | tuple[int, dict[str, str]] | Exception]) -> None:
        self.script = script
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        step = self.script.pop(0) if self.script else 200
        if isinstance(step, Exception):
            raise step
        status, headers = step if isinstance(step, tuple) else (step, {})
        return httpx.Response(status, headers=headers)


def client(server: Server, retries: int = 3) -> tuple[httpx.Client, list[float]]:
    waits: list[float] = []
    transport = RetryTransport(
        httpx.MockTransport(server),
        retries=retries,
        sleep=waits.append,
        rand=lambda: 0.5,
        clock=lambda: 1_000_000.0,
    )
    return httpx.Client(transport=transport), waits


def test_a_503_is_retried_after_its_retry_after() -> None:
    server = Server([(503, {"Retry-After": "7"}), (503, {"Retry-After": "2"}), 200])
    http, waits = client(server)
    assert http.get(URL).status_code == 200
    assert waits == [7.0, 2.0] and len(server.seen) == 3


def test_a_429_without_retry_after_backs_off_with_jitter() -> None:
    server = Server([429, 429, 200])
    http, waits = client(server)
    assert http.get(URL).status_code == 200
    assert waits == [backoff(0, lambda: 0.5), backoff(1, lambda: 0.5)]


def test_it_gives_up_after_n_retries_with_the_last_answer() -> None:
    server = Server([(503, {"Retry-After": "1"})] * 10)
    http, waits = client(server, retries=2)
    assert http.get(URL).status_code == 503
    assert len(server.seen) == 3 and waits == [1.0, 1.0]


def test_a_retry_after_beyond_the_cap_is_answered_at_once() -> None:
    server = Server([(503, {"Retry-After": str(int(MAX_RETRY_AFTER) + 1)})])
    http, waits = client(server)
    assert http.get(URL).status_code == 503 and waits == [] and len(server.seen) == 1


def test_other_statuses_are_not_retried() -> None:
    for status in (200, 401, 407, 500, 502):
        server = Server([status])
        http, waits = client(server)
        assert http.get(URL).status_code == status and waits == [] and len(server.seen) == 1


def test_a_post_without_an_idempotency_key_is_never_sent_again_after_a_lost_answer() -> None:
    server = Server([httpx.ReadTimeout("lost"), 200])
    http, waits = client(server)
    with pytest.raises(httpx.ReadTimeout):
        http.post(URL, json={})
    assert len(server.seen) == 1 and waits == []


def test_a_post_with_an_idempotency_key_is_sent_again_after_a_lost_answer() -> None:
    server = Server([httpx.RemoteProtocolError("dropped"), 200])
    http, waits = client(server)
    assert http.post(URL, json={}, headers={"Idempotency-Key": "k1"}).status_code == 200
    assert len(server.seen) == 2 and len(waits) == 1
    assert [r.headers["idempotency-key"] for r in server.seen] == ["k1", "k1"]


def test_an_idempotent_method_is_sent_again_after_a_lost_answer() -> None:
    server = Server([httpx.ReadError("dropped"), 200])
    http, _ = client(server)
    assert http.get(URL).status_code == 200 and len(server.seen) == 2


def test_the_callers_mark_decides_for_a_lost_answer() -> None:
    server = Server([httpx.ReadTimeout("lost"), 200])
    http, _ = client(server)
    assert http.post(URL, extensions={REPLAYABLE: True}).status_code == 200
    server = Server([httpx.ReadTimeout("lost"), 200])
    http, _ = client(server)
    with pytest.raises(httpx.ReadTimeout):
        http.post(URL, headers={"Idempotency-Key": "k"}, extensions={REPLAYABLE: False})


def test_a_request_that_never_left_is_sent_again_whatever_it_is() -> None:
    server = Server([httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), 200])
    http, waits = client(server)
    assert http.post(URL, json={}).status_code == 200
    assert len(server.seen) == 3 and len(waits) == 2


def test_a_certificate_failure_is_never_retried() -> None:
    failure = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    failure.__cause__ = ssl.SSLCertVerificationError(1, "certificate verify failed")
    server = Server([failure, 200])
    http, waits = client(server)
    with pytest.raises(httpx.ConnectError):
        http.get(URL)
    assert len(server.seen) == 1 and waits == []


def test_connection_failures_give_up_after_n_retries() -> None:
    server = Server([httpx.ConnectError("refused")] * 10)
    http, waits = client(server, retries=2)
    with pytest.raises(httpx.ConnectError):
        http.get(URL)
    assert len(server.seen) == 3 and len(waits) == 2


def test_a_proxy_failure_is_not_retried() -> None:
    server = Server([httpx.ProxyError("407 Proxy Authentication Required"), 200])
    http, waits = client(server)
    with pytest.raises(httpx.ProxyError):
        http.get(URL)
    assert len(server.seen) == 1 and waits == []
