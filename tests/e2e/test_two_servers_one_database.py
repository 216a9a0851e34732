"""Two servers, one deployment: what one process does, the other sees at once.

Two ``bastion serve`` processes share one PostgreSQL database and one master key (README:
several servers share one database and one master key file), behind a TCP relay that stands
for a load balancer: their base URL names the relay, so issuers and audiences are the same
whichever process answers, and each test chooses the process of each request. The sign-in
throttle, refresh-token rotation and reuse detection, and revocations are held in the
database, never in a process: failures made on both count together, a token rotated on one
is reuse on the other, a sign-in ended on one is refused by the other. A host without the
deployment's master key refuses to start.

PostgreSQL only: several hosts cannot share a SQLite file.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.authority.throttle import FIRST_DELAY, FREE_FAILURES, SOURCE_FREE_FAILURES
from bastion.authority.tokens import REFRESH_GRACE_SECONDS
from tests.e2e.test_credential_changes import authenticated, ended
from tests.e2e.test_throttling import start
from tests.support.audit_log import events_of
from tests.support.browser import Browser
from tests.support.flows import (
    Org,
    approve_device,
    device_code_request,
    device_sign_in,
    poll_token,
    refresh,
)
from tests.support.plane import Tokens, result, run
from tests.support.relay import pump
from tests.support.server import (
    ServerProcess,
    create_postgres_database,
    free_port,
    start_server,
)

pytestmark = pytest.mark.tenant(served_by="server_a")

Route = Callable[[str], contextlib.AbstractContextManager[None]]


class Balancer:
    """A TCP relay in front of the servers, as a load balancer would be. Each connection goes
    to the server chosen (by name) when it is accepted; :meth:`to` chooses, and checks that
    the requests of its block did reach that server. (Each ``httpx.post`` opens a connection
    of its own; a ``Browser`` keeps one, so it is made inside the block that uses it.)"""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.ports: dict[str, int] = {}
        self.connections: Counter[str] = Counter()
        self._current = ""
        threading.Thread(target=self._accept, daemon=True).start()

    @contextlib.contextmanager
    def to(self, name: str) -> Iterator[None]:
        before = self.connections[name]
        previous, self._current = self._current, name
        try:
            yield
        finally:
            self._current = previous
        assert self.connections[name] > before, f"no request reached server {name}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            name = self._current
            self.connections[name] += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.ports[name]))
            except (OSError, KeyError):
                conn.close()
                continue
            for source, sink in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=pump, args=(source, sink), daemon=True).start()


@dataclass
class Deployment:
    balancer: Balancer
    a: ServerProcess
    b: ServerProcess


@pytest.fixture(scope="module")
def deployment(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Servers ``a`` and ``b``: one database, one data directory (so one master key file,
    as every host would hold a copy of it) and one test clock, behind one balancer."""
    if backend != "postgresql":
        pytest.skip("several servers share one database on PostgreSQL only")
    database_url = create_postgres_database()
    data_dir = tmp_path_factory.mktemp("two-servers")
    balancer = Balancer()
    servers: list[ServerProcess] = []
    try:
        for name in ("a", "b"):
            balancer.ports[name] = free_port()
            with balancer.to(name):  # its health is checked through the balancer
                servers.append(
                    start_server(
                        data_dir,
                        database_url=database_url,
                        port=balancer.ports[name],
                        base_url=balancer.url,
                        name=name,
                    )
                )
        yield Deployment(balancer, *servers)
    finally:
        for server in servers:
            server.stop()
        balancer.close()


@pytest.fixture
def server_a(deployment: Deployment) -> ServerProcess:
    """The tenant's setup and the test clock go through server ``a``'s handle (each handle
    keeps its own copy of the clock's offset: only one of them may move it)."""
    return deployment.a


@pytest.fixture
def on(deployment: Deployment) -> Route:
    """``with on("b"): ...`` sends the block's requests to server ``b``."""
    return deployment.balancer.to


def each(on: Route, call: Callable[[], httpx.Response]) -> dict[str, httpx.Response]:
    """The same request made on each server."""
    answers = {}
    for name in ("a", "b"):
        with on(name):
            answers[name] = call()
    return answers


# -- the sign-in throttle --------------------------------------------------------------------


def test_failed_passwords_on_both_servers_count_against_the_account(t: Org, on: Route) -> None:
    user = t.password_only
    for i in range(FREE_FAILURES):  # a, b, a, b, a: each server sees only some of them
        with on("ab"[i % 2]):
            wrong = start(t, user.username, f"wrong-{i}")
        assert wrong.status_code == 400, wrong.text  # checked, and refused
    # The last of them started the account's pause: both servers hold to it, and neither
    # checks even the right password.
    for name, paused in each(on, lambda: start(t, user.username, user.password)).items():
        assert paused.status_code == 429, (name, paused.text)
        assert 0 < int(paused.headers["retry-after"]) <= FIRST_DELAY, name
    assert len(events_of(t, "sign_in.lockout")) == 1
    # It lifts by itself, on both.
    t.server.advance(FIRST_DELAY)
    for name, done in each(on, lambda: start(t, user.username, user.password)).items():
        assert done.status_code == 200, (name, done.text)
    # Both servers appended to the tenant's audit chain, one after another: it verifies.
    t.server.cli("audit", "verify", "--tenant", t.name)


def test_an_address_spraying_both_servers_is_paused_on_both(t: Org, on: Route) -> None:
    for i in range(SOURCE_FREE_FAILURES):  # one guess per name, half of them on each server
        with on("ab"[i % 2]):
            guess = start(t, f"user{i}@{t.name}", "Winter2026!")
        assert guess.status_code == 400, guess.text
    answers = each(on, lambda: start(t, t.password_only.username, t.password_only.password))
    for name, paused in answers.items():
        assert paused.status_code == 429, (name, paused.text)
        assert paused.json()["error"] == "temporarily_unavailable"
        assert int(paused.headers["retry-after"]) > 0, name


# -- refresh tokens --------------------------------------------------------------------------


def reuse_events(t: Org) -> int:
    return len(events_of(t, "token.refresh_reuse"))


def test_a_token_rotated_on_one_server_is_reuse_on_the_other(t: Org, on: Route) -> None:
    with on("a"):
        rt1 = device_sign_in(t, t.password_only)["refresh_token"]
        rt2 = refresh(t, rt1).json()["refresh_token"]
    t.server.advance(REFRESH_GRACE_SECONDS + 1)
    with on("b"):
        late = refresh(t, rt1)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    assert "already used" in late.json()["error_description"]
    # The whole family is revoked: the successor server a handed out works on neither.
    for name, answer in each(on, lambda: refresh(t, rt2)).items():
        assert answer.json()["error"] == "invalid_grant", (name, answer.text)
        assert "revoked" in answer.json()["error_description"], name
    assert reuse_events(t) == 1


def test_a_retry_on_the_other_server_within_the_window_gets_the_same_successor(
    t: Org, on: Route
) -> None:
    """A lost response, retried on another server: the successor is derived from the token
    under the deployment's master key, so server b hands out the very token a did."""
    with on("a"):
        rt1 = device_sign_in(t, t.password_only)["refresh_token"]
        rt2 = refresh(t, rt1).json()["refresh_token"]
    t.server.advance(REFRESH_GRACE_SECONDS - 1)
    with on("b"):
        retry = refresh(t, rt1)
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] == rt2
    with on("a"):
        assert refresh(t, rt2).status_code == 200  # the one successor carries the sign-in on
    assert reuse_events(t) == 0


# -- revocation ------------------------------------------------------------------------------


def introspector(t: Org) -> tuple[str, str]:
    out = t.server.cli(
        "client", "create", "--tenant", t.name, "intro", "--name", "intro", "--confidential"
    ).stdout
    return "intro", json.loads(out)["client_secret"]


def introspect(t: Org, creds: tuple[str, str], token: str) -> dict[str, Any]:
    answer = httpx.post(f"{t.issuer}/oauth2/introspect", data={"token": token}, auth=creds)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_tokens_revoked_on_one_server_are_refused_by_the_other(t: Org, on: Route) -> None:
    creds = introspector(t)
    with on("a"):
        tokens = device_sign_in(t, t.password_only, resource=t.audience("directory"))
    with on("b"):  # server b has seen both tokens before they are revoked
        assert authenticated(t, tokens["access_token"])
        rt2 = refresh(t, tokens["refresh_token"]).json()["refresh_token"]
        assert introspect(t, creds, tokens["access_token"])["active"] is True
    with on("a"):  # RFC 7009, each token
        for token in (rt2, tokens["access_token"]):
            revoked = httpx.post(
                f"{t.issuer}/oauth2/revoke", data={"token": token, "client_id": "bastion-cli"}
            )
            assert revoked.status_code == 200, revoked.text
    with on("b"):
        assert refresh(t, rt2).json()["error"] == "invalid_grant"
        assert introspect(t, creds, rt2) == {"active": False}
        assert introspect(t, creds, tokens["access_token"]) == {"active": False}


def test_a_session_ended_on_one_server_is_refused_by_the_other(t: Org, on: Route) -> None:
    """The command plane of each server reads, at every command, whether the sign-in still
    stands: an administrator's ``Revoke-UserSession`` on a, then a password reset on b."""
    user = t.password_only
    with on("a"):
        admin = Tokens(t, t.admin)
        first = device_sign_in(t, user, resource=t.audience("directory"))
    with on("b"):
        assert authenticated(t, first["access_token"])  # b verified the token and kept it
    with on("a"):
        result(admin.run("directory", "Revoke-UserSession", {"identity": user.username}))
    with on("b"):
        assert ended(t, first)
        second = device_sign_in(t, user, resource=t.audience("directory"))
    with on("a"):
        assert authenticated(t, second["access_token"])
    with on("b"):
        params = {"identity": user.username, "password": "pw-" + secrets.token_urlsafe(12)}
        result(admin.run("directory", "Set-User", params))
    with on("a"):
        assert ended(t, second)
        assert admin.run("directory", "Get-User", {}).status_code == 200  # the admin's stands


# -- keys ------------------------------------------------------------------------------------


def test_one_sign_in_across_both_servers(t: Org, on: Route) -> None:
    """The device grant begun on a, approved in a browser on b and polled on a; its token
    accepted by b's command plane, and a token b issued by a's: one key per tenant, in the
    database, published alike by both."""
    keys = each(on, lambda: httpx.get(f"{t.issuer}/discovery/keys"))
    assert keys["a"].json() == keys["b"].json()
    assert len(keys["a"].json()["keys"]) == 1
    with on("a"):
        begun = device_code_request(t, resource=t.audience("directory"))
    with on("b"):
        browser = Browser(t.server.base_url)
        try:
            approved = approve_device(browser, t, t.admin, begun["user_code"])
        finally:
            browser.close()
        assert approved.status_code == 200, approved.text[:300]
    with on("a"):
        tokens = poll_token(t, begun["device_code"]).json()
    with on("b"):
        assert run(t, tokens["access_token"], "Get-User", {}).status_code == 200
        renewed = refresh(t, tokens["refresh_token"], resource=t.audience("directory")).json()
    with on("a"):
        assert run(t, renewed["access_token"], "Get-User", {}).status_code == 200


def test_a_host_without_the_deployments_master_key_refuses_to_start(t: Org, tmp_path: Path) -> None:
    """A third host whose data directory holds no copy of the master key file: it would make
    a fresh key, with which it could sign no token, find no refresh token, and sign the audit
    chain's head so that the chain no longer verifies. It refuses to start instead."""
    env = {**t.server.env(), "BASTION_DATA_DIR": str(tmp_path)}
    started = subprocess.run(
        [sys.executable, "-m", "bastion", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert started.returncode == 2, started.stderr
    assert "does not open the keys stored in this database" in started.stderr
    assert "BASTION_MASTER_KEY_FILE" in started.stderr
