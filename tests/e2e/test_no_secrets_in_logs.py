"""Logs and audit records never hold a secret (L3).

One server, logging at DEBUG, is driven through every flow that handles a secret: sign-in on
the pages with a password and an authenticator code, a wrong password, factor registration
(its seed and recovery codes), the code and token exchange, refreshes, the device grant, the
authorization challenge endpoint with a recovery code, a confidential client's secret at
introspection, revocation, and commands that carry passwords. Every secret and token issued
or typed is collected, then the server's whole log and every audit record are searched for
each: none may appear.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from bastion.authority.factors import totp
from bastion.authority.grants.pkce_verification import s256
from bastion.store.schema import audit_events
from tests.e2e.test_authorization_challenge import recovery_codes_for
from tests.e2e.test_authorization_code import authorize_url
from tests.support.browser import Browser
from tests.support.flows import Org, make_tenant, poll_token, refresh
from tests.support.plane import run
from tests.support.server import ServerProcess, running_server


class Secrets:
    """Every secret seen, with what it is, for the report."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, what: str, value: object) -> None:
        if isinstance(value, str) and value:
            self.values[value] = what

    def tokens(self, what: str, answer: dict[str, object]) -> None:
        for name in ("access_token", "refresh_token", "id_token", "device_code", "user_code"):
            self.add(f"{what} {name}", answer.get(name))
        self.add(f"{what} auth_session", answer.get("auth_session"))
        self.add(f"{what} authorization_code", answer.get("authorization_code"))

    def cookies(self, browser: Browser) -> None:
        for name, value in browser.cookies.items():
            self.add(f"cookie {name}", value)


@pytest.fixture
def logged(backend: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(backend, tmp_path, extra=["--log-level", "DEBUG"]) as proc:
        yield proc


def code_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["code"][0]


def redeem(t: Org, code: str, verifier: str) -> dict[str, object]:
    answer = httpx.post(
        f"{t.issuer}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": "http://127.0.0.1:53117/callback",
            "client_id": "bastion-cli",
        },
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def drive_every_flow(t: Org, seen: Secrets) -> None:
    server = t.server
    directory = t.audience("directory")
    for person in (t.admin, t.enrolling, t.password_only):
        seen.add(f"password of {person.username}", person.password)
    assert t.admin.totp_secret is not None
    seen.add("admin TOTP seed (base32)", totp.secret_to_base32(t.admin.totp_secret))

    # 1. the sign-in pages: a wrong password, the password, the code; code and tokens
    verifier = secrets.token_urlsafe(48)
    seen.add("PKCE verifier", verifier)
    browser = Browser(server.base_url)
    browser.get(authorize_url(t, verifier=verifier, resource=directory))
    seen.add("CSRF token", browser.csrf())
    wrong = "Wrong-" + secrets.token_urlsafe(10)
    seen.add("a wrong password", wrong)
    browser.submit(f"/t/{t.name}/login", {"username": t.admin.username, "password": wrong})
    browser.submit(
        f"/t/{t.name}/login", {"username": t.admin.username, "password": t.admin.password}
    )
    code = t.admin.code(server)
    done = browser.submit(f"/t/{t.name}/login/mfa", {"code": code})
    seen.cookies(browser)
    authorization_code = code_of(done.headers["location"])
    seen.add("authorization code", authorization_code)
    pages = redeem(t, authorization_code, verifier)
    seen.tokens("pages", pages)

    # 2. refreshes, for another service too
    refreshed = refresh(t, str(pages["refresh_token"])).json()
    seen.tokens("refresh", refreshed)
    mail = refresh(t, str(refreshed["refresh_token"]), resource=t.audience("mail")).json()
    seen.tokens("refresh for mail", mail)

    # 3. the device grant, approved in the signed-in browser
    start = httpx.post(
        f"{t.issuer}/oauth2/devicecode", data={"client_id": "bastion-cli", "resource": directory}
    ).json()
    seen.tokens("device", start)
    seen.add("user code without its dash", str(start["user_code"]).replace("-", ""))
    browser.get(f"/t/{t.name}/device?user_code={start['user_code']}")
    browser.submit(f"/t/{t.name}/device", {"user_code": "BCDF-GHJK"})
    browser.submit(f"/t/{t.name}/device", {"user_code": start["user_code"]})
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})
    server.advance(6)
    device = poll_token(t, str(start["device_code"])).json()
    seen.tokens("device grant", device)

    # 4. factor registration: its seed, its first code, the recovery codes shown once
    enrolling = Browser(server.base_url)
    enrolling.get(authorize_url(t, verifier=verifier))
    page = enrolling.submit(
        f"/t/{t.name}/login",
        {"username": t.enrolling.username, "password": t.enrolling.password},
    )
    seed_text = re.search(r'id="secret">([A-Z2-7]+)<', page.text)
    assert seed_text, page.text[:500]
    seen.add("registered TOTP seed", seed_text.group(1))
    seed = totp.base32_to_secret(seed_text.group(1))
    first = totp.code_at(seed, server.now())
    registered = enrolling.submit(f"/t/{t.name}/login/enroll", {"code": first})
    shown = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", registered.text)
    assert len(shown) == 10
    for shown_code in shown:
        seen.add("recovery code shown at registration", shown_code)
    seen.cookies(enrolling)

    # 5. the authorization challenge endpoint, with a recovery code
    codes = recovery_codes_for(t, t.admin)
    for recovery in codes:
        seen.add("admin recovery code", recovery)
    terminal_verifier = secrets.token_urlsafe(48)
    seen.add("PKCE verifier (terminal)", terminal_verifier)
    first_step = httpx.post(
        f"{t.issuer}/oauth2/authorize-challenge",
        data={
            "client_id": "bastion-cli",
            "username": t.admin.username,
            "password": t.admin.password,
            "scope": "openid offline_access",
            "resource": directory,
            "code_challenge": s256(terminal_verifier),
            "code_challenge_method": "S256",
        },
    ).json()
    seen.tokens("challenge", first_step)
    wrong_recovery = httpx.post(
        f"{t.issuer}/oauth2/authorize-challenge",
        data={
            "client_id": "bastion-cli",
            "auth_session": first_step["auth_session"],
            "recovery_code": "zzzz-zzzzzzz-zzzzzzz",
        },
    ).json()
    seen.tokens("challenge after a wrong recovery code", wrong_recovery)
    second_step = httpx.post(
        f"{t.issuer}/oauth2/authorize-challenge",
        data={
            "client_id": "bastion-cli",
            "auth_session": wrong_recovery["auth_session"],
            "recovery_code": codes[0],
        },
    ).json()
    seen.tokens("challenge", second_step)
    terminal = httpx.post(
        f"{t.issuer}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": second_step["authorization_code"],
            "code_verifier": terminal_verifier,
            "client_id": "bastion-cli",
        },
    ).json()
    seen.tokens("terminal", terminal)

    # 6. a confidential client's secret, at introspection; revocation
    out = server.cli(
        "client",
        "create",
        "--tenant",
        t.name,
        "reports",
        "--name",
        "Reports",
        "--confidential",
        "--grant-type",
        "refresh_token",
    ).stdout
    client_secret = json.loads(out)["client_secret"]
    seen.add("client secret", client_secret)
    seen_by_client = httpx.post(
        f"{t.issuer}/oauth2/introspect",
        data={"token": str(terminal["access_token"])},
        auth=("reports", client_secret),
    )
    assert seen_by_client.json()["active"] is True
    httpx.post(
        f"{t.issuer}/oauth2/introspect",
        data={"token": "x"},
        auth=("reports", client_secret + "-wrong"),
    )
    httpx.post(
        f"{t.issuer}/oauth2/revoke",
        data={"token": str(device["refresh_token"]), "client_id": "bastion-cli"},
    )

    # 7. commands carrying passwords, and a wrong one refused by the rules
    admin = str(terminal["access_token"])
    initial = "Initial-" + secrets.token_urlsafe(12)
    reset = "Reset-" + secrets.token_urlsafe(12)
    for what, value in (("New-User password", initial), ("Set-User password", reset)):
        seen.add(what, value)
    name = f"lee@{t.name}"
    made = run(t, admin, "New-User", {"user_principal_name": name, "password": initial})
    assert made.status_code == 200, made.text
    changed = run(t, admin, "Set-User", {"identity": name, "password": reset})
    assert changed.status_code == 200, changed.text
    run(t, admin, "Set-User", {"identity": name, "password": "short"})
    # a bearer token that is not valid, and one for another service
    run(t, "not-a-token-" + secrets.token_urlsafe(8), "Get-User", {"identity": name})
    run(t, str(mail["access_token"]), "Get-User", {"identity": name})

    # codes of the authenticators for the steps around now, as a person would type them
    for step in (-1, 0, 1):
        seen.add("admin TOTP code", t.admin.code(server, offset_steps=step))
    seen.add("registration TOTP code", first)


def test_no_secret_or_token_reaches_the_log_or_the_audit_records(logged: ServerProcess) -> None:
    t = make_tenant(logged)
    seen = Secrets()
    drive_every_flow(t, seen)
    assert len(seen.values) >= 50

    log = logged.log()
    assert log.count('"request_id"') > 30  # the log is there, and it is the whole run's
    with logged.authority.store.begin() as conn:
        records = conn.execute(select(audit_events)).all()
    kinds = {r.type for r in records}
    assert {"sign_in.success", "sign_in.password_failure", "command"} <= kinds, kinds
    audit = "\n".join(json.dumps(tuple(r), default=str) for r in records)

    def found(text: str, value: str) -> bool:
        if re.fullmatch(r"[0-9]{6}", value):  # a TOTP code: only where a code could be
            return re.search(rf"(?<![0-9.]){value}(?![0-9])", text) is not None
        return value in text

    # the search sees what is there: names are logged and recorded, secrets are not
    assert f"/t/{t.name}/login" in log and t.admin.username in audit
    leaks = [
        f"{what} in {where}"
        for value, what in seen.values.items()
        for where, text in (("the log", log), ("the audit records", audit))
        if found(text, value)
    ]
    assert leaks == []
