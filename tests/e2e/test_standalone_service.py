"""A service served alone (``bastion serve --service NAME --authority URL``) against an
authority in another process: tokens are checked with the keys the authority publishes.

Two real processes share one data directory and database: the authority, told with
``BASTION_SERVICE_URLS`` that the directory runs elsewhere, and the standalone process
serving the directory and sites.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey

from bastion.authority.keys import create_signing_key
from bastion.core.clock import FrozenClock
from bastion.core.config import Settings
from bastion.core.errors import ConfigError, InvalidToken
from bastion.plane import remote_keys
from bastion.server.context import SERVICE_NAMES
from tests.support.flows import Org, device_sign_in, make_tenant, refresh
from tests.support.server import (
    ServerProcess,
    create_postgres_database,
    free_port,
    start_server,
)


@dataclass
class Pair:
    authority: ServerProcess
    alone: ServerProcess

    @property
    def directory(self) -> str:
        """The directory's audience: the standalone process's URL."""
        return f"{self.alone.base_url}/api/directory"


@pytest.fixture(scope="module")
def pair(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    data_dir = tmp_path_factory.mktemp(f"standalone-{backend}")
    database_url = create_postgres_database() if backend == "postgresql" else None
    port = free_port()
    authority = start_server(
        data_dir,
        database_url=database_url,
        env={"BASTION_SERVICE_URLS": f"directory=http://127.0.0.1:{port}"},
        name="authority",
    )
    try:
        alone = start_server(
            data_dir,
            database_url=database_url,
            port=port,
            extra=["--service", "directory,sites", "--authority", authority.base_url],
            name="alone",
        )
        try:
            yield Pair(authority, alone)
        finally:
            alone.stop()
    finally:
        authority.stop()


def run(pair: Pair, token: str, name: str = "Get-User", service: str = "directory") -> Any:
    return httpx.post(
        f"{pair.alone.base_url}/api/{service}/commands/{name}",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def sign_in(pair: Pair, t: Org) -> dict[str, Any]:
    return device_sign_in(t, t.admin, resource=pair.directory)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    header: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return header


def forged(issuer: str, audience: str, kid: str | None = None) -> str:
    header = {"typ": "at+jwt", "alg": "ES256", "kid": kid or secrets.token_hex(8)}
    claims = {"iss": issuer, "aud": audience, "sub": "someone", "exp": time.time() + 600}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(b'x' * 64)}"


def key_fetches(pair: Pair, t: Org, *, at_least: int = 0) -> int:
    """How many times the authority served this tenant's JWKS (its log has every request);
    waits briefly for the log line of a request just answered."""
    path = f"/t/{t.name}/discovery/keys"
    deadline = time.monotonic() + 3
    while True:
        count = 0
        for line in pair.authority.log().splitlines():
            if line.startswith("{") and json.loads(line).get("path") == path:
                count += 1
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def assert_invalid_token(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="bastion", error="invalid_token"'), challenge
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


def test_the_standalone_process_serves_only_its_services(pair: Pair) -> None:
    t = make_tenant(pair.authority)
    alone = pair.alone.base_url
    assert httpx.get(f"{alone}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{alone}/api/directory/commands").status_code == 200
    assert httpx.get(f"{alone}/api/sites/commands").status_code == 200
    for path in (
        "/api/mail/commands",
        f"/t/{t.name}/.well-known/openid-configuration",
        f"/t/{t.name}/discovery/keys",
        f"/t/{t.name}/login",
    ):
        response = httpx.get(f"{alone}{path}")
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    missing = httpx.post(f"{alone}/t/{t.name}/oauth2/token", data={"grant_type": "x"})
    assert missing.status_code == 404
    blocked = httpx.post(f"{alone}/api/chat/commands/Get-ChatPolicy", json={})
    assert blocked.status_code == 404


def test_discovery_and_the_token_endpoint_name_the_service_where_it_runs(pair: Pair) -> None:
    t = make_tenant(pair.authority)
    services = t.discovery()["bastion_services"]
    assert services["directory"] == pair.directory
    assert services["mail"] == f"{pair.authority.base_url}/api/mail"
    # The authority's own address for the directory is no longer an audience.
    refused = httpx.post(
        f"{t.issuer}/oauth2/devicecode",
        data={"client_id": "bastion-cli", "resource": t.audience("directory")},
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_target"
    by_scope = httpx.post(
        f"{t.issuer}/oauth2/devicecode",
        data={"client_id": "bastion-cli", "scope": f"openid {pair.directory}/.default"},
    )
    assert by_scope.status_code == 200, by_scope.text


def test_a_command_runs_with_keys_fetched_from_the_authority(pair: Pair) -> None:
    t = make_tenant(pair.authority)
    before = key_fetches(pair, t)
    tokens = sign_in(pair, t)
    assert tokens["scope"].split()[-1] == f"{pair.directory}/.default"
    answer = run(pair, tokens["access_token"])
    assert answer.status_code == 200, answer.text
    assert f"admin@{t.name}" in {u["userPrincipalName"] for u in answer.json()["items"]}
    assert key_fetches(pair, t, at_least=before + 1) == before + 1
    # Cached: a second command fetches nothing.
    assert run(pair, tokens["access_token"]).status_code == 200
    assert key_fetches(pair, t) == before + 1
    # The command was audited in the shared database, in a chain the authority verifies.
    pair.authority.cli("audit", "verify", "--tenant", t.name)
    # The same token is not for the authority's own command plane.
    at_authority = httpx.post(
        f"{t.audience('directory')}/commands/Get-User",
        json={},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert_invalid_token(at_authority, "another audience")


def test_an_ended_sign_in_is_refused_at_once_even_while_the_authority_is_down(
    pair: Pair,
) -> None:
    """The standalone process reads whether a sign-in still stands from the database it
    shares with the authority, in the command's own transaction, as it reads roles: an
    administrator's change counts at the next command, with no interval and no request
    to the authority (docs/decisions/0020)."""
    t = make_tenant(pair.authority)
    admin = sign_in(pair, t)["access_token"]
    user = device_sign_in(t, t.password_only, resource=pair.directory)["access_token"]
    assert run(pair, user).status_code == 403  # authenticated; holds no role
    pair.authority.stop()
    try:
        ended = httpx.post(
            f"{pair.alone.base_url}/api/directory/commands/Revoke-UserSession",
            json={"identity": t.password_only.username},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        assert ended.status_code == 200, ended.text
        assert_invalid_token(run(pair, user), "ended")
    finally:
        pair.authority.restart()
    again = device_sign_in(t, t.password_only, resource=pair.directory)["access_token"]
    assert run(pair, again).status_code == 403  # a new sign-in works
    pair.authority.cli("user", "disable", "--tenant", t.name, t.password_only.username)
    assert_invalid_token(run(pair, again), "disabled")


def test_a_token_for_the_authoritys_own_audience_is_refused(pair: Pair) -> None:
    t = make_tenant(pair.authority)
    mail = device_sign_in(t, t.admin, resource=t.audience("mail"))
    assert_invalid_token(run(pair, mail["access_token"]), "another audience")


def test_tokens_of_other_issuers_are_refused_without_asking_the_authority(pair: Pair) -> None:
    t = make_tenant(pair.authority)
    for issuer in (
        f"http://127.0.0.1:1/t/{t.name}",  # another authority
        f"{pair.alone.base_url}/t/{t.name}",  # the standalone process itself
        f"{pair.authority.base_url}/t/no-such-tenant",
        f"{pair.authority.base_url}/t/{t.name}/../x",
    ):
        assert_invalid_token(run(pair, forged(issuer, pair.directory)), "unknown issuer")
    no_token = httpx.post(f"{pair.alone.base_url}/api/directory/commands/Get-User", json={})
    assert no_token.status_code == 401
    assert no_token.headers["www-authenticate"] == 'Bearer realm="bastion"'
    assert key_fetches(pair, t) == 0
    assert "no-such-tenant" not in pair.authority.log()


def test_a_rotated_key_is_fetched_on_its_first_token(pair: Pair) -> None:
    t = make_tenant(pair.authority)
    tokens = sign_in(pair, t)
    assert run(pair, tokens["access_token"]).status_code == 200
    fetched = key_fetches(pair, t, at_least=1)
    # Rotate: a new signing key, which the authority signs with once it restarts.
    auth = pair.authority.authority
    with auth.store.begin() as conn:
        new_kid = create_signing_key(conn, auth.keyring, t.tenant.id, pair.authority.now())
    pair.authority.restart()
    pair.authority.advance(remote_keys.MIN_REFETCH + 1)  # well inside the cache's TTL
    renewed = refresh(t, tokens["refresh_token"], resource=pair.directory)
    assert renewed.status_code == 200, renewed.text
    new_token = renewed.json()["access_token"]
    assert header_of(new_token)["kid"] == new_kid != header_of(tokens["access_token"])["kid"]
    answer = run(pair, new_token)
    assert answer.status_code == 200, answer.text
    assert key_fetches(pair, t, at_least=fetched + 1) == fetched + 1
    # Both keys are published: the token signed with the old one still works.
    assert run(pair, tokens["access_token"]).status_code == 200


def test_made_up_key_ids_do_not_make_it_hammer_the_authority(pair: Pair) -> None:
    t = make_tenant(pair.authority)
    tokens = sign_in(pair, t)
    assert run(pair, tokens["access_token"]).status_code == 200
    fetched = key_fetches(pair, t, at_least=1)
    pair.authority.advance(remote_keys.MIN_REFETCH + 1)
    for _ in range(6):
        assert_invalid_token(run(pair, forged(t.issuer, pair.directory)), "unknown key")
    # One fetch for the first unknown kid; the others wait out the interval.
    assert key_fetches(pair, t, at_least=fetched + 1) == fetched + 1
    assert run(pair, tokens["access_token"]).status_code == 200


def test_an_unreachable_authority_is_a_503_unless_the_keys_are_cached(pair: Pair) -> None:
    cached, uncached = make_tenant(pair.authority), make_tenant(pair.authority)
    cached_token = sign_in(pair, cached)["access_token"]
    assert run(pair, cached_token).status_code == 200
    uncached_token = sign_in(pair, uncached)["access_token"]
    pair.authority.stop()
    try:
        started = time.monotonic()
        answer = run(pair, uncached_token)
        assert time.monotonic() - started < 10
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["title"] == "Authority unavailable"
        assert pair.authority.base_url in body["detail"] and "Traceback" not in answer.text
        assert "www-authenticate" not in answer.headers
        # Keys already fetched keep working, even past their time to be fetched again.
        pair.authority.advance(remote_keys.TTL + 1)
        assert run(pair, cached_token).status_code == 200
    finally:
        pair.authority.restart()
    pair.authority.advance(remote_keys.MIN_REFETCH + 1)
    assert run(pair, uncached_token).status_code == 200


# Configuration, without servers.


def test_service_urls_are_validated() -> None:
    settings = Settings.from_env(
        service_urls={"mail": "https://mail.example.org", "sites": "http://[::1]:9001/x"}
    )
    assert settings.service_urls["sites"] == "http://[::1]:9001/x"
    for bad, message in (
        ({"post": "https://post.example.org"}, "no service 'post'"),
        ({"mail": "http://mail.example.org"}, "plain HTTP"),
        ({"mail": "mail.example.org"}, "absolute"),
        ({"mail": "https://mail.example.org/?q=1"}, "absolute"),
    ):
        with pytest.raises(ConfigError, match=message):
            Settings(service_urls=bad).check(service_names=SERVICE_NAMES)


def test_service_urls_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASTION_SERVICE_URLS", "mail=https://mail.example.org/, Sites=https://s")
    assert Settings.from_env().service_urls == {
        "mail": "https://mail.example.org",
        "sites": "https://s",
    }
    monkeypatch.setenv("BASTION_SERVICE_URLS", "mail")
    with pytest.raises(ConfigError, match="NAME=URL"):
        Settings.from_env()


def bastion(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", "serve", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_a_service_alone_without_its_authority(tmp_path: Path) -> None:
    result = bastion(tmp_path, "--service", "mail")
    assert result.returncode == 2 and "--authority" in result.stderr
    result = bastion(tmp_path, "--service", "post", "--authority", "http://127.0.0.1:1")
    assert result.returncode == 2 and "no service 'post'" in result.stderr
    # A fresh data directory has no master key: not the authority's, so refused.
    result = bastion(tmp_path, "--service", "mail", "--authority", "http://127.0.0.1:1")
    assert result.returncode == 2 and "no master key" in result.stderr


# The key cache in process, against a stand-in authority.

AUTHORITY = "http://127.0.0.1:9"
ISSUER = f"{AUTHORITY}/t/contoso"


def cache(
    handler: Any, clock: FrozenClock, tenant_exists: bool = True
) -> tuple[remote_keys.RemoteKeys, list[str]]:
    asked: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        response: httpx.Response = handler(request)
        return response

    keys = remote_keys.RemoteKeys(
        AUTHORITY,
        clock=clock,
        tenant_exists=lambda name: tenant_exists,
        transport=httpx.MockTransport(record),
    )
    return keys, asked


def authority(document: dict[str, Any], jwks: dict[str, Any]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/openid-configuration"):
            return httpx.Response(200, json=document)
        return httpx.Response(200, json=jwks)

    return handler


def a_jwks(kid: str) -> dict[str, Any]:
    key = ECKey.generate_key("P-256", parameters={"kid": kid, "use": "sig", "alg": "ES256"})
    return {"keys": [key.as_dict(private=False)]}


GOOD = {"issuer": ISSUER, "jwks_uri": f"{ISSUER}/discovery/keys"}


def test_the_discovery_document_must_name_the_tokens_issuer() -> None:
    for document, message in (
        ({**GOOD, "issuer": f"{AUTHORITY}/t/other"}, "names another issuer"),
        ({**GOOD, "jwks_uri": "http://127.0.0.1:99/keys"}, "outside the authority"),
        ({**GOOD, "jwks_uri": f"{AUTHORITY}9/t/contoso/keys"}, "outside the authority"),
    ):
        keys, _ = cache(authority(document, a_jwks("k1")), FrozenClock())
        keys.prefetch(forged(ISSUER, "aud", kid="k1"))
        with pytest.raises(InvalidToken, match=message):
            keys.keys(ISSUER)


def test_unknown_tenants_and_foreign_issuers_are_not_fetched() -> None:
    keys, asked = cache(authority(GOOD, a_jwks("k1")), FrozenClock(), tenant_exists=False)
    keys.prefetch(forged(ISSUER, "aud"))
    keys.prefetch(forged("http://127.0.0.1:99/t/contoso", "aud"))
    keys.prefetch("not a token")
    assert asked == []


def test_stale_keys_serve_while_the_authority_is_down_then_expire() -> None:
    clock = FrozenClock()
    up = [True]
    good = authority(GOOD, a_jwks("k1"))

    def handler(request: httpx.Request) -> httpx.Response:
        if up[0]:
            response: httpx.Response = good(request)
            return response
        raise httpx.ConnectError("refused", request=request)

    keys, asked = cache(handler, clock)
    token = forged(ISSUER, "aud", kid="k1")
    keys.prefetch(token)
    assert [k.kid for k in keys.keys(ISSUER).keys] == ["k1"]
    up[0] = False
    clock.advance(remote_keys.TTL + 1)
    keys.prefetch(token)
    assert len(asked) == 3  # discovery, keys, then discovery again, refused
    assert [k.kid for k in keys.keys(ISSUER).keys] == ["k1"]
    clock.advance(remote_keys.MAX_STALE)
    keys.prefetch(token)
    with pytest.raises(remote_keys.AuthorityUnavailable, match="could not be reached"):
        keys.keys(ISSUER)


def test_an_authority_that_does_not_answer_is_given_up_on_in_seconds() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections are accepted by the kernel, never answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        keys = remote_keys.RemoteKeys(url, clock=FrozenClock(), tenant_exists=lambda name: True)
        started = time.monotonic()
        keys.prefetch(forged(f"{url}/t/contoso", "aud"))
        assert time.monotonic() - started < 8
    with pytest.raises(remote_keys.AuthorityUnavailable, match="ReadTimeout"):
        keys.keys(f"{url}/t/contoso")
