"""The rules at the edge, one by one: redirect URI matching on the raw string (T1, issue 9
item 9), the host a request names (item 11), body limits per route and bounded whole numbers
(item 3), and the aggregation of anonymous refusals and crashes in the audit log (item 8)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.audit.refusals import AnonymousRefusals
from bastion.authority.clients import check_redirect_uri, redirect_uri_matches
from bastion.authority.sign_in_sessions import ACR_TWO_FACTORS
from bastion.authority.tokens import sign
from bastion.core.config import Settings
from bastion.core.errors import ConfigError, UsageError
from bastion.http.request_limits import (
    COMMAND_LIMIT,
    FORM_LIMIT,
    TOKEN_LIMIT,
    EdgeMiddleware,
    body_limit,
    split_host,
)
from bastion.plane.declare import INT_MAX
from bastion.plane.service import Service
from bastion.server.app import create_app
from bastion.server.bootstrap import new_tenant, new_user
from bastion.server.context import ServerContext
from bastion.services import SERVICES
from bastion.store.schema import audit_events

REGISTERED = "http://127.0.0.1/callback"


@pytest.mark.parametrize(
    ("candidate", "matches"),
    [
        ("http://127.0.0.1/callback", True),
        ("http://127.0.0.1:53117/callback", True),  # RFC 8252 section 7.3: any port
        (" http://127.0.0.1:53117/callback", False),
        ("http://127.0.0.1:53117/callback ", False),
        ("\thttp://127.0.0.1:53117/callback", False),
        ("http://127.0.0.1:53117/call\tback", False),
        ("http://127.0.0.1:53117/call\r\nback", False),
        ("http://127.0.0.1:53117/call\nback", False),
        ("http://127.0.0.1:53117/callback\x00", False),
        ("http://127.0.0.1:53117/callback\u2028", False),
        ("http://127.0.0.1:53117/callback\u00a0", False),
        ("http://127.0.0.1:99999/callback", False),
        ("http://127.0.0.1:53117/callback/", False),
        ("http://127.0.0.1:53117/Callback", False),
        ("http://localhost:53117/callback", False),  # another host name is another URI
        ("HTTP://127.0.0.1:53117/callback", False),
        ("http://user@127.0.0.1:53117/callback", False),
    ],
)
def test_redirect_uris_are_compared_as_given(candidate: str, matches: bool) -> None:
    assert redirect_uri_matches(REGISTERED, candidate) is matches


def test_an_https_redirect_uri_matches_only_itself() -> None:
    registered = "https://app.example/cb"
    assert redirect_uri_matches(registered, registered)
    for candidate in (
        " https://app.example/cb",
        "https://app.example/cb\t",
        "https://app.example/c\nb",
    ):
        assert not redirect_uri_matches(registered, candidate)


@pytest.mark.parametrize(
    "uri", [" https://app.example/cb", "https://app.example/c\tb", "http://127.0.0.1/\r\ncb"]
)
def test_a_redirect_uri_with_whitespace_is_never_registered(uri: str) -> None:
    with pytest.raises(UsageError):
        check_redirect_uri(uri)


@pytest.mark.parametrize(
    ("value", "scheme", "expected"),
    [
        ("127.0.0.1:8700", "http", ("127.0.0.1", 8700)),
        ("LocalHost:8700", "http", ("localhost", 8700)),
        ("[::1]:8700", "http", ("[::1]", 8700)),
        ("admin.example", "https", ("admin.example", 443)),
        ("admin.example", "http", ("admin.example", 80)),
        (" admin.example", "http", None),
        ("admin.example\t", "http", None),
        ("admin.example/x", "http", None),
        ("user@admin.example", "http", None),
        ("admin.example:99999", "http", None),
        ("", "http", None),
    ],
)
def test_the_host_header_is_read_as_given(
    value: str, scheme: str, expected: tuple[str, int] | None
) -> None:
    named = split_host(value, scheme)
    if expected is None:
        assert named is None
    else:
        assert named is not None
        assert (named[0].strip("[]"), named[1]) == (expected[0].strip("[]"), expected[1])


def test_each_route_has_its_body_limit() -> None:
    assert body_limit("/api/directory/commands/New-User") == COMMAND_LIMIT
    assert body_limit("/t/contoso/oauth2/token") == TOKEN_LIMIT
    assert body_limit("/t/contoso/oauth2/authorize-challenge") == TOKEN_LIMIT
    assert body_limit("/t/contoso/login") == FORM_LIMIT
    assert body_limit("/t/contoso/device") == FORM_LIMIT
    assert FORM_LIMIT < TOKEN_LIMIT < COMMAND_LIMIT


def _integers(schema: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        if schema.get("type") == "integer":
            found.append((where, schema))
        for key, value in schema.items():
            found += _integers(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found += _integers(value, f"{where}/{index}")
    return found


def test_every_whole_number_parameter_has_bounds_the_store_can_hold() -> None:
    """Export-AuditLog -FromSeq 2^63 was a 500: every integer in every command's schema now
    has a minimum and a maximum within a signed 64-bit column."""
    checked = 0
    for service in SERVICES:
        for spec in service:
            for where, schema in _integers(spec.parameters.model_json_schema()):
                assert "minimum" in schema and "maximum" in schema, (spec.name, where)
                assert -(2**63) <= schema["minimum"] <= schema["maximum"] <= INT_MAX
                checked += 1
    assert checked >= 5
    export = next(s for s in SERVICES if s.name == "directory")["Export-AuditLog"].parameters
    with pytest.raises(ValueError, match="less than or equal"):
        export.model_validate({"from_seq": 2**63})
    assert export.model_json_schema()["properties"]["from_seq"]["minimum"] == 1  # as declared


def test_anonymous_refusals_make_one_record_per_source_and_window() -> None:
    table = AnonymousRefusals(window=60, max_sources=2)
    assert table.due("t1", "10.0.0.1", 0) == 0
    assert [table.due("t1", "10.0.0.1", s) for s in (1, 2, 59)] == [None, None, None]
    assert table.due("t1", "10.0.0.2", 5) == 0  # another source has its own window
    assert table.due("t2", "10.0.0.1", 5) == 0  # and another tenant (the oldest is forgotten)
    assert table.due("t1", "10.0.0.2", 70) == 0
    assert table.due("t2", "10.0.0.1", 70) == 0
    assert table.due("t2", "10.0.0.1", 71) is None
    assert table.due("t2", "10.0.0.1", 131) == 1


def test_settings_refuse_a_base_url_that_is_not_an_absolute_https_url() -> None:
    for bad in ("admin.example", "http://admin.example", "https://admin.example/", "ftp://x"):
        with pytest.raises(ConfigError):
            Settings(base_url=bad).check()
    Settings(base_url="https://admin.example").check()
    Settings(base_url="http://127.0.0.1:8700").check()


def test_a_crash_on_a_tenant_address_is_audited_once_per_source_and_minute(
    tmp_path: Path,
) -> None:
    auth = ServerContext.open(Settings(data_dir=tmp_path))
    try:
        with auth.store.begin() as conn:
            tenant = new_tenant(auth, conn, name="crashing", display_name="Crashing")
        app = create_app(auth)

        async def boom(request: Request) -> Response:
            raise RuntimeError("a bug")

        starlette_app: Any = app.app.app  # type: ignore[attr-defined]
        starlette_app.router.routes.append(Route("/t/{tenant}/boom", boom))

        async def three_requests() -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost:8700"
            ) as http:
                return [await http.get("/t/crashing/boom") for _ in range(3)]

        for answer in asyncio.run(three_requests()):
            assert answer.status_code == 500
            assert "a bug" not in answer.text and "Traceback" not in answer.text
        with auth.store.begin() as conn:
            rows = conn.execute(
                select(audit_events).where(
                    audit_events.c.tenant_id == tenant.id, audit_events.c.type == "server_error"
                )
            ).all()
        assert len(rows) == 1
        assert rows[0].data["path"] == "/t/crashing/boom" and rows[0].data["repeats"] == 0
    finally:
        auth.close()


def _scope(host: str | None, *, scheme: str = "http", port: int = 8700) -> dict[str, Any]:
    headers = [(b"host", host.encode())] if host is not None else []
    return {"type": "http", "scheme": scheme, "server": ("127.0.0.1", port), "headers": headers}


async def _never(request: Request, exc: Exception) -> Response:
    raise AssertionError("not rendered here")


def test_with_a_base_url_only_its_host_and_port_are_answered() -> None:
    edge = EdgeMiddleware(None, base_url="https://admin.example", render=_never)  # type: ignore[arg-type]
    # behind a TLS proxy the request may arrive over plain HTTP: the port is the base URL's
    assert edge.host_allowed(_scope("admin.example"))
    assert edge.host_allowed(_scope("ADMIN.example:443", scheme="https"))
    assert edge.host_allowed(_scope(None))
    for other in (
        "admin.example:8443",
        "evil.example",
        "127.0.0.1:8700",
        "admin.example.",
        " admin.example",
    ):
        assert not edge.host_allowed(_scope(other)), other


def test_without_a_base_url_only_loopback_names_on_the_bound_port_are_answered() -> None:
    edge = EdgeMiddleware(None, base_url=None, render=_never)  # type: ignore[arg-type]
    for allowed in ("127.0.0.1:8700", "localhost:8700", "[::1]:8700", "127.1.2.3:8700"):
        assert edge.host_allowed(_scope(allowed)), allowed
    for refused in ("127.0.0.1", "127.0.0.1:8701", "evil.example:8700", "10.0.0.1:8700", None):
        assert not edge.host_allowed(_scope(refused)), refused


def test_a_crash_in_a_command_is_audited_with_its_caller(tmp_path: Path) -> None:
    """L1: a 500 inside the command plane leaves one ``command`` record naming the caller."""

    # a directory service of this test's own, with one command more
    directory = Service("directory")
    directory.include(next(s for s in SERVICES if s.name == "directory"))

    @directory.command("Set-Crash")
    def set_crash(ctx: Any) -> None:
        """A command with a bug, for this test only."""
        raise RuntimeError("a bug")

    auth = ServerContext.open(Settings(data_dir=tmp_path))
    try:
        base = "http://localhost:8700"
        now = auth.now()
        with auth.store.begin() as conn:
            tenant = new_tenant(auth, conn, name="buggy", display_name="Buggy")
            admin = new_user(
                auth,
                conn,
                tenant,
                upn="admin@buggy",
                display_name="Admin",
                password=None,
                mfa_state="enforced",
                roles=["Global Administrator"],
            )
            key = auth.keys.active_key(conn, tenant.id)
        claims = {
            "iss": f"{base}/t/buggy",
            "sub": admin.id,
            "aud": f"{base}/api/directory",
            "client_id": "bastion-cli",
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + 300,
            "jti": "crash-test",
            "auth_time": int(now),
            "amr": ["pwd", "otp"],
            "acr": ACR_TWO_FACTORS,
            "preferred_username": "admin@buggy",
        }
        token = sign(key, "at+jwt", claims)

        async def call() -> httpx.Response:
            app = create_app(auth, services=[directory])
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url=base) as http:
                return await http.post(
                    "/api/directory/commands/Set-Crash",
                    json={},
                    headers={"Authorization": f"Bearer {token}"},
                )

        answer = asyncio.run(call())
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/problem+json"
        assert "a bug" not in answer.text
        with auth.store.begin() as conn:
            rows = conn.execute(
                select(audit_events).where(audit_events.c.tenant_id == tenant.id)
            ).all()
        crashes = [r for r in rows if r.type == "command" and r.data["command"] == "Set-Crash"]
        assert len(crashes) == 1
        assert (crashes[0].outcome, crashes[0].data["error"]) == ("failure", "internal-error")
        assert crashes[0].actor_id == admin.id
    finally:
        auth.close()
