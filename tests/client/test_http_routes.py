"""Every route of the connection's HTTP client retries: the direct one, a proxy given
explicitly, and proxies named by the environment (HTTP_PROXY, NO_PROXY), which httpx
would otherwise route around the retry transport (issue 11 item 5)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bastion.client.http import Http, Options
from tests.client.test_http import Scripted


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Scripted]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    server = Scripted()
    yield server
    server.server.shutdown()
    server.server.server_close()


def http() -> tuple[Http, list[float]]:
    waits: list[float] = []
    return Http(Options(retries=3, timeout=5), sleep=waits.append, rand=lambda: 0.5), waits


# a port nothing listens on: only a proxy can answer for it
ELSEWHERE = "http://127.0.0.1:9/x"


def test_a_proxy_from_the_environment_is_used_and_retried(
    proxy: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url.removesuffix("/x"))
    proxy.script = [(503, {"Retry-After": "3"}), (200, {})]
    client, waits = http()
    assert client.request("GET", ELSEWHERE).status_code == 200
    assert waits == [3.0] and proxy.seen == ["GET", "GET"]


def test_an_explicit_proxy_is_used_and_retried(proxy: Scripted) -> None:
    proxy.script = [(429, {"Retry-After": "1"}), (200, {})]
    waits: list[float] = []
    client = Http(Options(proxy=proxy.url.removesuffix("/x"), retries=3), sleep=waits.append)
    assert client.request("GET", ELSEWHERE).status_code == 200
    assert waits == [1.0] and len(proxy.seen) == 2


def test_no_proxy_sends_directly_and_still_retries(
    proxy: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would fail if it were used
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    proxy.script = [(503, {"Retry-After": "2"}), (200, {})]
    client, waits = http()
    assert client.request("GET", proxy.url).status_code == 200
    assert waits == [2.0] and len(proxy.seen) == 2
