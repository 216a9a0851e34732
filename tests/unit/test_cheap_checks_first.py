"""No request reaches Argon2id before its cheap checks pass (issue 9 item 4).

The application runs in-process with its real store; the only thing added is a count of the
Argon2id calls its hasher makes (a subclass that counts, then does the real work), so each
case can say exactly how many hashes a request cost. Every path that hashes is here:
registering a factor (ten recovery-code hashes), the password (and the dummy hash of an
unknown user), and a recovery code.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.authority import factor_store, throttle
from bastion.authority.factors import totp
from bastion.authority.passwords import PasswordHasher
from bastion.core.config import Settings
from bastion.directory.tenants import Tenant
from bastion.server.app import create_app
from bastion.server.bootstrap import new_tenant, new_user
from bastion.server.context import ServerContext

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PASSWORD = "correct horse battery"


class Client:
    """A synchronous face on httpx's in-process ASGI transport (cookies kept)."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50000)),
            base_url="https://127.0.0.1",
        )

    def get(self, path: str) -> httpx.Response:
        return self._loop.run_until_complete(self._client.get(path))

    def post(
        self, path: str, *, data: dict[str, str], follow_redirects: bool = False
    ) -> httpx.Response:
        return self._loop.run_until_complete(
            self._client.post(path, data=data, follow_redirects=follow_redirects)
        )

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


class CountingHasher(PasswordHasher):
    """The real hasher, counting its Argon2id calls."""

    calls = 0

    def hash(self, password: str) -> str:
        self.calls += 1
        return super().hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        self.calls += 1
        return super().verify(stored_hash, password)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[ServerContext, Tenant, CountingHasher, Client]]:
    auth = ServerContext.open(Settings(data_dir=tmp_path))
    with auth.store.begin() as conn:
        tenant = new_tenant(auth, conn, name="acme", display_name="Acme")
        user = new_user(
            auth,
            conn,
            tenant,
            upn="ga@acme",
            display_name="GA",
            password=PASSWORD,
            mfa_state="enforced",
            roles=["Global Administrator"],
        )
        factor_store.add_totp(
            conn,
            auth.keyring,
            tenant_id=tenant.id,
            user_id=user.id,
            secret=totp.generate_secret(),
            accepted_step=None,
            now=auth.now(),
        )
    hasher = CountingHasher(auth.settings.argon2)
    auth.hasher = hasher
    client = Client(create_app(auth))
    yield auth, tenant, hasher, client
    client.close()
    auth.close()


def _csrf(client: Client, path: str) -> str:
    match = CSRF.search(client.get(path).text)
    assert match
    return match.group(1)


def test_enroll_post_with_no_tenant_session_or_csrf_does_no_hashing(setup) -> None:
    _auth, _tenant, hasher, client = setup
    nowhere = client.post("/t/no-such-tenant/login/enroll", data={"code": "123456"})
    assert nowhere.status_code == 404
    anonymous = client.post("/t/acme/login/enroll", data={"code": "123456"})
    assert anonymous.status_code == 403
    # a real web session and CSRF token, but no password yet: sent back to the login page
    csrf = _csrf(client, "/t/acme/login")
    early = client.post(
        "/t/acme/login/enroll", data={"csrf": csrf, "code": "123456"}, follow_redirects=False
    )
    assert early.status_code == 303 and early.headers["location"] == "/t/acme/login"
    assert hasher.calls == 0


def test_password_post_with_a_bad_csrf_token_does_no_hashing(setup) -> None:
    _auth, _tenant, hasher, client = setup
    _csrf(client, "/t/acme/login")
    refused = client.post(
        "/t/acme/login", data={"csrf": "forged", "username": "ga@acme", "password": "x"}
    )
    assert refused.status_code == 403
    assert hasher.calls == 0


def test_a_blocked_password_check_does_no_hashing(setup) -> None:
    auth, tenant, hasher, client = setup
    with auth.store.begin() as conn:
        for _ in range(throttle.FREE_FAILURES + 1):
            throttle.fail(
                conn, auth.settings, throttle.password_key(tenant.id, "ga@acme"), auth.now()
            )
    csrf = _csrf(client, "/t/acme/login")
    blocked = client.post(
        "/t/acme/login", data={"csrf": csrf, "username": "GA@acme", "password": PASSWORD}
    )
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    answer = client.post(
        "/t/acme/oauth2/authorize-challenge",
        data={
            "client_id": "bastion-cli",
            "username": "ga@acme",
            "password": PASSWORD,
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
    )
    assert answer.status_code == 429, answer.text
    assert hasher.calls == 0


def test_a_blocked_recovery_code_check_does_no_hashing(setup) -> None:
    auth, tenant, hasher, client = setup
    csrf = _csrf(client, "/t/acme/login")
    client.post("/t/acme/login", data={"csrf": csrf, "username": "ga@acme", "password": PASSWORD})
    assert hasher.calls == 1  # the password itself
    with auth.store.begin() as conn:
        user_id = conn.exec_driver_sql("SELECT id FROM users WHERE upn = 'ga@acme'").scalar_one()
        key = throttle.factor_key(tenant.id, user_id, throttle.RECOVERY_CODE)
        for _ in range(throttle.FREE_FAILURES + 1):
            throttle.fail(conn, auth.settings, key, auth.now())
    csrf = _csrf(client, "/t/acme/login/mfa")
    blocked = client.post(
        "/t/acme/login/mfa", data={"csrf": csrf, "recovery_code": "abcd-efghjkm-npqrstu"}
    )
    assert blocked.status_code == 429
    assert hasher.calls == 1


def test_an_unknown_client_at_the_challenge_endpoint_does_no_hashing(setup) -> None:
    _auth, _tenant, hasher, client = setup
    answer = client.post(
        "/t/acme/oauth2/authorize-challenge",
        data={"client_id": "nobody", "username": "ga@acme", "password": PASSWORD},
    )
    assert answer.status_code == 401
    assert hasher.calls == 0


def test_unknown_and_real_names_cost_the_same_argon2id_work(setup) -> None:
    """The same answer and the same work: one hash for either name while it may be tried,
    none for either once paused (the timing of A3's answers, counted instead of timed)."""
    _auth, _tenant, hasher, client = setup
    costs = []
    for name in ("ga@acme", "nobody@acme") * throttle.FREE_FAILURES:
        before = hasher.calls
        csrf = _csrf(client, "/t/acme/login")
        answer = client.post(
            "/t/acme/login", data={"csrf": csrf, "username": name, "password": "wrong"}
        )
        costs.append((name == "ga@acme", answer.status_code, hasher.calls - before))
    assert costs == [(real, 401, 1) for real in (True, False)] * throttle.FREE_FAILURES
    for name in ("ga@acme", "nobody@acme"):
        before = hasher.calls
        csrf = _csrf(client, "/t/acme/login")
        answer = client.post(
            "/t/acme/login", data={"csrf": csrf, "username": name, "password": PASSWORD}
        )
        assert (answer.status_code, hasher.calls - before) == (429, 0)
