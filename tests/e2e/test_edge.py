"""What every request meets first: bounded bodies (issue 9 item 3), the host it names
(item 11), methods and media types (item 14); the limits of values (item 3), exact redirect
URIs (item 9, T1), and audited refusals (item 8, L1)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from bastion.authority.grants.pkce_verification import s256
from bastion.store.schema import audit_events
from tests.support.bodies import rss_kib, send_big_body
from tests.support.browser import Browser
from tests.support.flows import Org, device_sign_in, make_tenant
from tests.support.plane import Tokens, run
from tests.support.server import (
    ServerProcess,
    free_port,
    running_server,
)

HUNDRED_MB = 100 * 1024 * 1024
FORM = "application/x-www-form-urlencoded"


def _records(t: Org, **match: Any) -> list[Any]:
    with t.server.authority.store.begin() as conn:
        query = select(audit_events).where(audit_events.c.tenant_id == t.tenant.id)
        for column, value in match.items():
            query = query.where(getattr(audit_events.c, column) == value)
        return list(conn.execute(query.order_by(audit_events.c.seq)).all())


# --- item 3: bounded bodies ------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    ("path", "content_type", "answer_type"),
    [
        ("/api/directory/commands/Get-User", "application/json", b"application/problem+json"),
        ("/t/{tenant}/oauth2/token", FORM, b"application/json"),
        ("/t/{tenant}/login", FORM, b"application/problem+json"),
    ],
    ids=["command", "token", "form"],
)
def test_a_large_body_is_refused_while_it_streams_before_authentication(
    t: Org, path: str, content_type: str, answer_type: bytes, chunked: bool
) -> None:
    """A 100 MB body without credentials gets 413 long before it is all sent, and the
    connection is closed rather than the rest read."""
    url = t.server.base_url + path.format(tenant=t.name)
    result = send_big_body(url, HUNDRED_MB, chunked=chunked, content_type=content_type)
    assert result.status == 413, result.head
    assert result.sent < HUNDRED_MB // 10
    head = result.head.lower()
    assert b"connection: close" in head
    assert b"content-type: " + answer_type in head


def test_memory_stays_flat_under_four_concurrent_large_bodies(server: ServerProcess) -> None:
    """Four anonymous 100 MB bodies at once, declared and chunked: the server process's
    resident memory grows by far less than one body (bench/big_bodies.py measures it)."""
    url = f"{server.base_url}/api/directory/commands/Get-User"
    send_big_body(url, 1024, chunked=False)  # warm-up
    before = rss_kib(server.process.pid)
    peak = before
    statuses: list[int] = []

    def client(chunked: bool) -> None:
        statuses.append(send_big_body(url, HUNDRED_MB, chunked=chunked).status)

    for chunked in (False, True):
        threads = [threading.Thread(target=client, args=(chunked,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, rss_kib(server.process.pid))
            threads[0].join(0.005)
        for thread in threads:
            thread.join()
    peak = max(peak, rss_kib(server.process.pid))
    assert statuses == [413] * 8
    assert peak - before < 50 * 1024, f"grew by {(peak - before) // 1024} MiB"


def test_json_nested_too_deep_is_a_400_not_a_crash(t: Org) -> None:
    token = Tokens(t, t.admin)("directory")
    for depth in (40, 5000, 100_000):
        body = '{"identity": ' + "[" * depth + "]" * depth + "}"
        answer = httpx.post(
            f"{t.server.base_url}/api/directory/commands/Get-User",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert answer.status_code == 400, (depth, answer.text[:300])
        assert answer.headers["content-type"] == "application/problem+json"
        assert "nested more than 32 levels" in answer.json()["detail"]


def test_an_unpaired_surrogate_is_a_400_naming_the_parameter(t: Org) -> None:
    """JSON may escape a lone surrogate, which no database can encode."""
    token = Tokens(t, t.admin)("directory")
    for body in ('{"identity": "a\\ud800b"}', '{"name": "x", "description": ["\\udfff"]}'):
        answer = httpx.post(
            f"{t.server.base_url}/api/directory/commands/"
            + ("Get-User" if "identity" in body else "New-Group"),
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert answer.status_code == 400, answer.text[:300]
        assert answer.json()["parameter"] in ("identity", "description")


def test_whole_numbers_are_bounded_to_what_the_store_holds(t: Org) -> None:
    """``Export-AuditLog -FromSeq 2^63`` was a 500; every integer parameter now has a
    declared range, shown in the catalog."""
    token = Tokens(t, t.admin)("directory")
    too_big = run(t, token, "Export-AuditLog", {"from_seq": 2**63})
    assert too_big.status_code == 400, too_big.text
    assert too_big.json()["parameter"] == "from_seq"
    largest = run(t, token, "Export-AuditLog", {"from_seq": 2**63 - 1})
    assert largest.status_code == 200, largest.text
    assert largest.json()["items"] == []
    catalog = httpx.get(f"{t.server.base_url}/api/directory/commands").json()
    export = next(c for c in catalog["commands"] if c["name"] == "Export-AuditLog")
    assert export["parameters"]["properties"]["from_seq"]["maximum"] == 2**63 - 1


def test_revoking_a_token_twice_answers_200_both_times(t: Org) -> None:
    """RFC 7009 section 2.2: revoking an already revoked access token is a success."""
    tokens = device_sign_in(t, t.admin, resource=t.audience("directory"))
    for token in (tokens["access_token"], tokens["refresh_token"]):
        for _ in range(2):
            answer = httpx.post(
                f"{t.issuer}/oauth2/revoke", data={"token": token, "client_id": "bastion-cli"}
            )
            assert answer.status_code == 200, answer.text


# --- item 14: methods and media types ----------------------------------------------------------


def test_a_wrong_method_gets_405_with_allow_and_a_body_that_says_405(t: Org) -> None:
    base = t.server.base_url
    for method, path, allowed in (
        ("GET", "/api/directory/commands/Get-User", "POST"),
        ("DELETE", "/api/directory/commands", "GET"),
        ("PUT", f"/t/{t.name}/oauth2/token", "POST"),
        ("POST", f"/t/{t.name}/.well-known/openid-configuration", "GET"),
    ):
        answer = httpx.request(method, base + path)
        assert answer.status_code == 405, (method, path)
        assert allowed in answer.headers["allow"]
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 405
        assert answer.json()["title"] == "Method not allowed"
    page = httpx.request("PUT", f"{base}/t/{t.name}/login", headers={"Accept": "text/html"})
    assert page.status_code == 405 and "allow" in page.headers
    assert "Method not allowed" in page.text


def test_a_command_body_that_is_not_json_gets_415(t: Org) -> None:
    token = Tokens(t, t.admin)("directory")
    url = f"{t.server.base_url}/api/directory/commands/Get-User"
    for content_type, body in (
        ("text/plain", "{}"),
        (FORM, "identity=x"),
        ("application/jsonx", "{}"),
        (None, "{}"),
    ):
        headers = {"Authorization": f"Bearer {token}"}
        if content_type:
            headers["Content-Type"] = content_type
        answer = httpx.post(url, content=body, headers=headers)
        assert answer.status_code == 415, (content_type, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == 415
    good = httpx.post(
        url,
        content="{}",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=utf-8",
        },
    )
    assert good.status_code == 200, good.text


# --- item 9: exact redirect URIs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        " http://127.0.0.1:53117/callback",
        "http://127.0.0.1:53117/call\r\nback",
        "http://127.0.0.1:53117/call\tback",
        "http://127.0.0.1:53117/callback ",
        "\thttp://127.0.0.1/callback",
        "http://127.0.0.1:53117/callback\x00",
    ],
    ids=["leading-space", "crlf", "tab", "trailing-space", "leading-tab", "nul"],
)
def test_a_redirect_uri_with_whitespace_or_controls_never_redirects(
    t: Org, redirect_uri: str
) -> None:
    browser = Browser(t.server.base_url)
    query = urlencode(
        {
            "client_id": "bastion-cli",
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": "openid",
            "state": "st",
            "code_challenge": s256("v" * 43),
            "code_challenge_method": "S256",
        }
    )
    response = browser.get(f"/t/{t.name}/oauth2/authorize?{query}", follow=False)
    assert response.status_code == 400, response.text[:300]
    assert "location" not in response.headers


# --- item 11: the host comes from configuration ------------------------------------------------


def test_another_host_name_gets_421_and_never_names_the_issuer(t: Org) -> None:
    port = t.server.base_url.rsplit(":", 1)[1]
    discovery = f"{t.issuer}/.well-known/openid-configuration"
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1", "127.0.0.1:1", "[::1]:1"):
        answer = httpx.get(discovery, headers={"Host": host})
        assert answer.status_code == 421, host
        assert "evil.example" not in answer.text
    token = httpx.post(
        f"{t.issuer}/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": "bastion-cli"},
        headers={"Host": "evil.example"},
    )
    assert token.status_code == 421
    assert token.json()["error"] == "invalid_request"
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        answer = httpx.get(discovery, headers={"Host": host})
        assert answer.status_code == 200, host
        assert answer.json()["issuer"] == f"http://{host.lower()}/t/{t.name}"


@pytest.fixture
def with_base_url(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose base URL is configured (names 127.0.0.1 on its port)."""
    port = free_port()
    base_url = {"BASTION_BASE_URL": f"http://127.0.0.1:{port}"}
    with running_server(backend, tmp_path, port=port, env=base_url) as proc:
        yield proc


def test_with_a_base_url_only_its_host_is_answered(with_base_url: ServerProcess) -> None:
    t = make_tenant(with_base_url)
    port = with_base_url.base_url.rsplit(":", 1)[1]
    discovery = f"{t.issuer}/.well-known/openid-configuration"
    assert httpx.get(discovery).json()["issuer"] == t.issuer
    for host in (f"localhost:{port}", "evil.example", f"127.0.0.1:{int(port) + 1}"):
        answer = httpx.get(discovery, headers={"Host": host})
        assert answer.status_code == 421, host
        assert answer.headers["content-type"] == "application/problem+json"
    tokens = device_sign_in(t, t.admin, resource=t.audience("directory"))
    claims = json.loads(_payload(tokens["access_token"]))
    assert claims["iss"] == t.issuer


def _payload(jwt: str) -> bytes:
    import base64

    part = jwt.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_serving_off_loopback_needs_the_base_url(server: ServerProcess) -> None:
    # 192.0.2.10 is a documentation address: the command refuses before binding anything.
    refused = server.cli(
        "serve", "--host", "192.0.2.10", "--insecure-http", "--port", "1", check=False
    )
    assert refused.returncode == 2, refused.stderr
    assert "needs the public base URL" in refused.stderr
    assert "--base-url" in refused.stderr
    assert "Traceback" not in refused.stderr


# --- item 8: every refusal is audited ---------------------------------------------------------


def test_a_validation_refusal_of_a_signed_in_caller_is_audited(t: Org) -> None:
    admin = Tokens(t, t.admin)
    bad = admin.run("directory", "New-Group", {"name": "x", "colour": "red"})
    assert bad.status_code == 400
    deep = run(t, admin("directory"), "New-Group", {"name": [[[[]]]] * 1})
    assert deep.status_code == 400
    records = _records(t, type="command", outcome="failure")
    assert [(r.data["command"], r.data["error"]) for r in records] == [
        ("New-Group", "invalid-parameters"),
        ("New-Group", "invalid-parameters"),
    ]
    assert records[0].actor_name == t.admin.username
    assert records[0].request_id == bad.headers["x-request-id"]


def test_a_step_up_challenge_is_audited(t: Org) -> None:
    token = Tokens(t, t.admin)("directory")
    t.server.advance(t.tenant.policy.step_up_window + 60)
    challenged = run(
        t, token, "Set-UserMfa", {"identity": t.enrolling.username, "state": "enforced"}
    )
    assert challenged.status_code == 401
    records = _records(t, type="command", outcome="denied")
    assert [(r.data["command"], r.data["error"]) for r in records] == [
        ("Set-UserMfa", "step-up-required")
    ]
    assert records[0].request_id == challenged.headers["x-request-id"]


def test_anonymous_refusals_are_audited_once_per_source_and_minute(t: Org) -> None:
    """A flood of forged tokens naming the tenant leaves one record a minute, with a count."""
    token = Tokens(t, t.admin)("directory")
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    for _ in range(20):
        assert run(t, forged, "Get-User", {}).status_code == 401
    first = _records(t, type="command.unauthenticated")
    assert len(first) == 1
    assert first[0].source == "127.0.0.1" and first[0].outcome == "denied"
    assert first[0].data["command"] == "Get-User" and first[0].data["repeats"] == 0
    t.server.advance(61)
    assert run(t, forged, "Get-User", {}).status_code == 401
    second = _records(t, type="command.unauthenticated")
    assert len(second) == 2
    assert second[1].data["repeats"] == 19


def test_a_token_naming_no_tenant_is_refused_without_a_record(t: Org) -> None:
    before = _records(t)
    for token in ("garbage", secrets.token_urlsafe(40)):
        answer = run(t, token, "Get-User", {})
        assert answer.status_code == 401
    assert len(_records(t)) == len(before)
