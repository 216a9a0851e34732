"""The client library signing in against a real server: one sign-in for every service (S1,
S2, S3), an encrypted cache with no token in any file (S8, X4), refusals of another issuer
(T9), and no prompt where no one can answer (S5)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

import bastion
from bastion.client import (
    ClientError,
    IssuerMismatch,
    SignInFailed,
    SignInRequired,
)
from bastion.client.cache import TokenCache
from bastion.client.connection import Connection
from bastion.client.settings import resolve
from tests.client.players import DEVICE_CODE, Player
from tests.support.flows import Org, Person, device_sign_in, make_tenant, refresh
from tests.support.server import ServerProcess

pytestmark = pytest.mark.tenant(device_poll_interval=1)


def cache_of(conn: Connection) -> TokenCache:
    assert conn.cache is not None
    return conn.cache


def mail_commands(t: Org) -> bool:
    """Whether the mail service has its commands on this server (it may still be landing)."""
    response = httpx.get(f"{t.server.base_url}/api/mail/commands")
    return response.status_code == 200 and any(
        c["name"] == "Get-Mailbox" for c in response.json()["commands"]
    )


def use_every_service(t: Org, conn: Connection) -> None:
    users = list(conn.directory.get_user())
    assert t.admin.username in {u["userPrincipalName"] for u in users}
    assert list(conn.sites.get_site()) == []
    policies = conn.chat.get_meeting_policy()
    assert any(p["name"] == "Global" for p in policies)
    if mail_commands(t):
        assert list(conn.mail.get_mailbox()) is not None


def test_one_device_sign_in_serves_every_service(t: Org, tmp_path: Path) -> None:
    player = Player(t)
    conn = bastion.connect(
        t.server.base_url, t.name, method="device", prompt=player, config_dir=tmp_path
    )
    [message] = player.shown
    assert f"{t.issuer}/device" in message and "enter the code" in message
    assert player.submitted == ["password", "code"]
    use_every_service(t, conn)
    # A second connection (another script, the same profile) finds the sign-in.
    again = bastion.connect(
        t.server.base_url, t.name, method="device", prompt=player, config_dir=tmp_path
    )
    assert again.directory.get_user(identity=t.admin.username).count == 0
    assert player.submitted == ["password", "code"] and len(player.shown) == 1
    status = again.status()
    assert status.signed_in and status.account and status.account.username == t.admin.username
    assert status.account.acr == "urn:bastion:acr:2fa" and status.method == "device"
    assert set(status.access_expires) >= {t.audience("directory"), t.audience("sites")}
    assert status.key_storage.startswith("key file ") or status.key_storage == "keyring"
    # S8: no token, nor any part of one, in any file the client wrote.
    state = cache_of(conn).load()
    secrets = [state.refresh_token or "", *(c.token for c in state.access.values())]
    assert all(secrets) and len(secrets) >= 4
    parts = [p for s in secrets for p in s.split(".") if len(p) > 16]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [p for p in parts if p.encode() in data], f"a token is in {path}"


def test_browser_sign_in_with_pkce_and_a_loopback_redirect(t: Org, tmp_path: Path) -> None:
    player = Player(t)
    conn = bastion.connect(
        t.server.base_url, t.name, method="browser", prompt=player, config_dir=tmp_path
    )
    [url] = player.opened
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    redirect = urlsplit(query["redirect_uri"][0])
    assert redirect.hostname == "127.0.0.1" and redirect.path == "/callback"
    assert player.submitted == ["password", "code"]
    use_every_service(t, conn)
    assert player.submitted == ["password", "code"] and len(player.opened) == 1


def test_an_authorization_response_from_another_issuer_is_refused(t: Org, tmp_path: Path) -> None:
    """T9: an ``iss`` naming another tenant stops the sign-in before the code is redeemed."""
    other = make_tenant(t.server)
    player = Player(t)

    def swap_issuer(location: str) -> str:
        parts = urlsplit(location)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["iss"] = other.issuer
        return urlunsplit(parts._replace(query=urlencode(query)))

    player.tamper = swap_issuer
    with pytest.raises(IssuerMismatch) as caught:
        bastion.connect(
            t.server.base_url, t.name, method="browser", prompt=player, config_dir=tmp_path
        )
    assert other.issuer in str(caught.value) and caught.value.exit_code == 1
    assert not list((tmp_path / "tokens").glob("*.json"))


def test_a_discovery_document_of_another_issuer_is_refused(t: Org, tmp_path: Path) -> None:
    """T9: the document at ``{url}/t/{tenant}`` must name exactly that issuer; here a
    go-between serves another tenant's real document (a mix-up)."""
    other = make_tenant(t.server)
    real = f"{other.issuer}/.well-known/openid-configuration"

    class MixUp(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = httpx.get(real).content
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    go_between = ThreadingHTTPServer(("127.0.0.1", 0), MixUp)
    threading.Thread(target=go_between.serve_forever, kwargs={"poll_interval": 0.02}).start()
    try:
        url = f"http://127.0.0.1:{go_between.server_address[1]}"
        with pytest.raises(IssuerMismatch, match="discovery document") as caught:
            bastion.connect(url, t.name, method="device", prompt=Player(t), config_dir=tmp_path)
        assert other.issuer in str(caught.value)
    finally:
        go_between.shutdown()
        go_between.server_close()
    assert not list((tmp_path / "cache").glob("*.json"))  # nothing of it was kept


def test_with_no_one_to_answer_nothing_waits(t: Org, tmp_path: Path) -> None:
    """S5: non-interactive and not signed in: SignInRequired at once, no prompt."""
    player = Player(t)
    started = time.monotonic()
    with pytest.raises(SignInRequired) as caught:
        bastion.connect(
            t.server.base_url, t.name, interactive=False, prompt=player, config_dir=tmp_path
        )
    assert time.monotonic() - started < 2
    assert caught.value.exit_code == 4 and caught.value.hint
    assert player.asked == player.shown == player.opened == []


def test_an_ended_sign_in_stops_a_script_with_a_clear_message(
    server: ServerProcess, tmp_path: Path
) -> None:
    t = make_tenant(
        server, session_lifetime=120, idle_timeout=60, access_token_lifetime=30, step_up_window=60
    )
    player = Player(t)
    bastion.connect(server.base_url, t.name, method="browser", prompt=player, config_dir=tmp_path)
    server.advance(125)
    script = bastion.connect(server.base_url, t.name, interactive=False, config_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(SignInRequired) as caught:
        script.directory.get_user()
    assert time.monotonic() - started < 2
    assert "has ended" in caught.value.detail and caught.value.exit_code == 4
    assert not script.status().signed_in


def test_a_tampered_cache_is_discarded_and_the_person_signs_in_again(
    t: Org, tmp_path: Path
) -> None:
    player = Player(t)
    conn = bastion.connect(
        t.server.base_url, t.name, method="browser", prompt=player, config_dir=tmp_path
    )
    path = cache_of(conn).path
    sealed = json.loads(path.read_text())
    sealed["data"] = ("A" if sealed["data"][5] != "A" else "B").join(
        (sealed["data"][:5], sealed["data"][6:])
    )
    path.write_text(json.dumps(sealed))
    with pytest.raises(SignInRequired):
        bastion.connect(t.server.base_url, t.name, interactive=False, config_dir=tmp_path)
    again = bastion.connect(
        t.server.base_url, t.name, method="browser", prompt=player, config_dir=tmp_path
    )
    assert len(player.opened) == 2
    assert again.directory.get_user(identity=t.admin.username) is not None


def test_disconnect_revokes_the_sign_in_and_wipes_the_cache(t: Org, tmp_path: Path) -> None:
    player = Player(t)
    conn = bastion.connect(
        t.server.base_url, t.name, method="browser", prompt=player, config_dir=tmp_path
    )
    conn.sites.get_site()
    cache = cache_of(conn)
    refresh_token = cache.load().refresh_token
    assert refresh_token and cache.path.exists()
    conn.disconnect()
    assert not cache.path.exists() and not list((tmp_path / "keys").glob("*.key"))
    answer = refresh(t, refresh_token)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    with pytest.raises(SignInRequired):
        bastion.connect(t.server.base_url, t.name, interactive=False, config_dir=tmp_path)


def test_terminal_sign_in_asks_the_password_then_the_code(t: Org, tmp_path: Path) -> None:
    if not t.discovery().get("authorization_challenge_endpoint"):
        pytest.skip("this server has no authorization challenge endpoint yet")
    player = Player(t)
    conn = bastion.connect(
        t.server.base_url, t.name, method="terminal", prompt=player, config_dir=tmp_path
    )
    assert [q.split(" ")[0] for q in player.asked] == ["User", "Password", "One-time"]
    assert player.opened == [] and player.submitted == []
    use_every_service(t, conn)
    # a password-only account is asked no code (S3: the server says what it needs)
    sam = Player(t, t.password_only)
    bastion.connect(
        t.server.base_url, t.name, method="terminal", prompt=sam, config_dir=tmp_path / "sam"
    )
    assert [q.split(" ")[0] for q in sam.asked] == ["User", "Password"]


def test_terminal_sign_in_says_when_the_password_is_wrong(t: Org, tmp_path: Path) -> None:
    if not t.discovery().get("authorization_challenge_endpoint"):
        pytest.skip("this server has no authorization challenge endpoint yet")
    player = Player(t, Person(t.admin.username, "not-the-password", t.admin.totp_secret))
    with pytest.raises(SignInFailed) as caught:
        bastion.connect(
            t.server.base_url, t.name, method="terminal", prompt=player, config_dir=tmp_path
        )
    assert "password" in str(caught.value).lower() and caught.value.exit_code == 4
    assert [q.split(" ")[0] for q in player.asked] == ["User", "Password"] * 3


def test_a_given_access_token_is_used_as_it_is(t: Org, tmp_path: Path) -> None:
    tokens = device_sign_in(t, t.admin, resource=t.audience("directory"))
    conn = bastion.connect(
        t.server.base_url, t.name, token=tokens["access_token"], config_dir=tmp_path
    )
    assert conn.directory.get_user(identity=t.admin.username).count == 0
    with pytest.raises(SignInRequired, match="not for"):
        conn.sites.get_site()
    assert not (tmp_path / "tokens").exists()  # nothing cached
    other = make_tenant(t.server)
    with pytest.raises(IssuerMismatch):
        bastion.connect(t.server.base_url, other.name, token=tokens["access_token"])


def test_errors_carry_the_problem_details(t: Org, tmp_path: Path) -> None:
    conn = bastion.connect(
        t.server.base_url, t.name, method="browser", prompt=Player(t), config_dir=tmp_path
    )
    with pytest.raises(ClientError) as caught:
        conn.directory.get_user(page_size=5000)
    assert caught.value.exit_code == 2 and caught.value.parameter == "page_size"
    assert caught.value.status == 400 and caught.value.type
    with pytest.raises(ClientError) as unknown:
        conn.directory.get_user(identiti="x")
    assert unknown.value.exit_code == 2 and "identity" in str(unknown.value)
    with pytest.raises(ClientError) as missing:
        conn.invoke("directory", "Get-Nothing")
    assert missing.value.exit_code == 3
    with pytest.raises(AttributeError, match="get_user"):
        _ = conn.directory.get_users
    assert "get_user" in dir(conn.directory) and "directory" in dir(conn)
    assert "Only this user" in (conn.directory.get_user.__doc__ or "")


class ApprovesLater(Player):
    """Shows the device code without approving it; the test approves when it wants."""

    def show(self, message: str) -> None:
        self.shown.append(message)


def test_device_polling_waits_the_interval_and_slows_down(t: Org, tmp_path: Path) -> None:
    """RFC 8628 section 3.5: ``slow_down`` adds 5 seconds to the interval. Waits are played
    on the server's clock; the second wait is cut short, as a hurried client would."""
    player = ApprovesLater(t)
    conn = Connection(
        resolve(tmp_path, url=t.server.base_url, tenant=t.name, method="device"),
        prompt=player,
        interactive=True,
    )
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) != 2:
            t.server.advance(seconds)
        if len(waits) == 3:
            code = DEVICE_CODE.search(player.shown[0])
            assert code is not None
            player.approve_device(code.group(1))

    conn.auth.sleep = wait
    conn.sign_in()
    assert waits == [1.0, 1.0, 6.0]
    assert conn.status().signed_in
