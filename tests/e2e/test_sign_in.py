"""Passwords and second factors through the sign-in pages (A3, A4, A5, A6, S3, S4, X5)."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from bastion.authority.factors import totp
from bastion.authority.throttle import FREE_FAILURES
from bastion.store.schema import factors, recovery_codes, throttles, users
from tests.support.audit_log import events_of
from tests.support.browser import Browser, page_error
from tests.support.flows import Org, device_sign_in, give_recovery_codes, make_tenant
from tests.support.server import ServerProcess


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def login(browser: Browser, t: Org, username: str, password: str):
    browser.get(f"/t/{t.name}/login")
    return browser.submit(f"/t/{t.name}/login", {"username": username, "password": password})


def test_same_totp_code_is_refused_the_second_time(t: Org) -> None:
    code = t.admin.code(t.server)
    first, second = Browser(t.server.base_url), Browser(t.server.base_url)
    login(first, t, t.admin.username, t.admin.password)
    login(second, t, t.admin.username, t.admin.password)
    ok = first.submit(f"/t/{t.name}/login/mfa", {"code": code})
    assert ok.status_code == 200 and "signed in" in ok.text
    replay = second.submit(f"/t/{t.name}/login/mfa", {"code": code})
    assert replay.status_code == 401
    assert page_error(replay) == "That code was already used."
    # an earlier step is refused too once a later one was accepted
    earlier = t.admin.code(t.server, offset_steps=-1)
    if earlier != code:
        assert second.submit(f"/t/{t.name}/login/mfa", {"code": earlier}).status_code == 401
    assert len(events_of(t, "sign_in.otp_replay")) >= 1


def test_wrong_code_gets_a_clear_message(t: Org) -> None:
    browser = Browser(t.server.base_url)
    response = login(browser, t, t.admin.username, t.admin.password)
    assert "/login/mfa" in str(response.url)
    good = t.admin.code(t.server)
    wrong = "000000" if good != "000000" else "111111"
    response = browser.submit(f"/t/{t.name}/login/mfa", {"code": wrong})
    assert response.status_code == 401
    assert page_error(response) == "That code is not correct."
    # codes two steps away are outside the allowed drift
    far = t.admin.code(t.server, offset_steps=2)
    assert browser.submit(f"/t/{t.name}/login/mfa", {"code": far}).status_code == 401


def test_wrong_password_and_unknown_user_get_the_same_message(t: Org) -> None:
    browser = Browser(t.server.base_url)
    wrong = login(browser, t, t.admin.username, "not-the-password")
    unknown = login(browser, t, f"nobody@{t.name}", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert page_error(wrong) == page_error(unknown) == "The user name or password is incorrect."


def test_mfa_disabled_user_signs_in_with_password_only(t: Org) -> None:
    tokens = device_sign_in(t, t.password_only)
    claims = claims_of(tokens["access_token"])
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "urn:bastion:acr:1fa"


def test_mfa_enabled_user_registers_totp_before_any_token(t: Org) -> None:
    from tests.support.flows import device_code_request, poll_token

    start = device_code_request(t)
    browser = Browser(t.server.base_url)
    browser.get(f"/t/{t.name}/device?user_code={start['user_code']}")
    response = browser.submit(f"/t/{t.name}/device", {"user_code": start["user_code"]})
    response = browser.submit(
        f"/t/{t.name}/login", {"username": t.enrolling.username, "password": t.enrolling.password}
    )
    assert "/login/enroll" in str(response.url)
    assert "<svg" in response.text
    assert poll_token(t, start["device_code"]).json()["error"] == "authorization_pending"
    secret_text = re.search(r'id="secret">([A-Z2-7]+)<', response.text).group(1)
    secret = totp.base32_to_secret(secret_text)
    assert len(secret) >= 20  # A5: 160 bits
    uri = re.search(r"otpauth://totp/[^\"<]+", response.text)
    assert uri is None or "secret=" in uri.group(0)
    wrong = browser.submit(
        f"/t/{t.name}/login/enroll",
        {"code": "123456" if totp.code_at(secret, t.server.now()) != "123456" else "654321"},
    )
    assert wrong.status_code == 400
    done = browser.submit(
        f"/t/{t.name}/login/enroll", {"code": totp.code_at(secret, t.server.now())}
    )
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    cont = browser.get(f"/t/{t.name}/login/continue")
    assert "/device/confirm" in str(cont.url)
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})
    t.server.advance(5)
    tokens = poll_token(t, start["device_code"]).json()
    assert claims_of(tokens["access_token"])["amr"] == ["pwd", "otp", "mfa"]
    with t.server.authority.store.begin() as conn:
        row = conn.execute(
            select(factors).where(factors.c.tenant_id == t.tenant.id, factors.c.kind == "totp")
        ).all()
        assert all(secret not in r.secret_sealed for r in row)  # A5: sealed at rest
        hashes = (
            conn.execute(
                select(recovery_codes.c.code_hash).where(recovery_codes.c.tenant_id == t.tenant.id)
            )
            .scalars()
            .all()
        )
        assert len(hashes) == 10 and all(h.startswith("$argon2id$") for h in hashes)  # A6
        state = conn.execute(
            select(users.c.mfa_state).where(users.c.upn == t.enrolling.username)
        ).scalar_one()
        assert state == "enforced"
    # the page never shows the seed again once confirmed
    again = browser.get(f"/t/{t.name}/login/enroll")
    assert secret_text not in again.text


def test_recovery_code_signs_in_once(t: Org) -> None:
    codes = give_recovery_codes(t, t.admin)
    browser = Browser(t.server.base_url)
    login(browser, t, t.admin.username, t.admin.password)
    ok = browser.submit(f"/t/{t.name}/login/mfa", {"recovery_code": codes[0].upper()})
    assert ok.status_code == 200 and "signed in" in ok.text
    other = Browser(t.server.base_url)
    login(other, t, t.admin.username, t.admin.password)
    again = other.submit(f"/t/{t.name}/login/mfa", {"recovery_code": codes[0]})
    assert again.status_code == 401
    assert len(events_of(t, "notify.recovery_code_used")) == 1


def test_password_failures_count_across_sessions_and_spoofed_sources(t: Org) -> None:
    for i in range(FREE_FAILURES):
        browser = Browser(t.server.base_url, headers={"X-Forwarded-For": f"10.0.0.{i}"})
        assert login(browser, t, t.password_only.username, f"wrong-{i}").status_code == 401
    browser = Browser(t.server.base_url)
    paused = login(browser, t, t.password_only.username, t.password_only.password)
    assert paused.status_code == 429 and int(paused.headers["retry-after"]) > 0
    assert "locked" not in paused.text
    t.server.cli("user", "unlock", "--tenant", t.name, t.password_only.username)
    assert login(browser, t, t.password_only.username, t.password_only.password).status_code == 200
    with t.server.authority.store.begin() as conn:
        assert conn.execute(select(throttles).where(throttles.c.tenant_id == t.tenant.id)).all()
        assert not conn.execute(
            select(throttles).where(throttles.c.key.like(f"pwd:{t.tenant.id}:%"))
        ).all()


def test_session_cookie_attributes_and_rotation(t: Org) -> None:
    browser = Browser(t.server.base_url)
    browser.get(f"/t/{t.name}/login")
    before = browser.cookies[f"__Host-bastion-{t.name}"]
    assert len(base64.urlsafe_b64decode(before + "=" * (-len(before) % 4))) >= 16
    header = browser.set_cookie_headers[-1].lower()
    for attribute in ("secure", "httponly", "samesite=lax", "path=/"):
        assert attribute in header
    response = browser.submit(
        f"/t/{t.name}/login",
        {"username": t.password_only.username, "password": t.password_only.password},
    )
    after = browser.cookies[f"__Host-bastion-{t.name}"]
    assert after != before
    assert t.password_only.username not in after
    # the cookie from before the sign-in is worthless afterwards
    stale = Browser(t.server.base_url)
    stale.cookies[f"__Host-bastion-{t.name}"] = before
    assert "/login" in str(stale.get(f"/t/{t.name}/login/continue").url)
    assert response.status_code == 200


def test_forms_need_a_session_bound_csrf_token(t: Org) -> None:
    browser = Browser(t.server.base_url)
    browser.get(f"/t/{t.name}/login")
    missing = browser.request(
        "POST",
        f"/t/{t.name}/login",
        data={"username": t.password_only.username, "password": t.password_only.password},
    )
    assert missing.status_code == 403
    other = Browser(t.server.base_url)
    other.get(f"/t/{t.name}/login")
    foreign = browser.request(
        "POST",
        f"/t/{t.name}/login",
        data={
            "csrf": other.csrf(),
            "username": t.password_only.username,
            "password": t.password_only.password,
        },
    )
    assert foreign.status_code == 403


def test_password_post_answers_303_and_pages_cannot_be_framed(t: Org) -> None:
    browser = Browser(t.server.base_url)
    page = browser.get(f"/t/{t.name}/login")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    response = browser.request(
        "POST",
        f"/t/{t.name}/login",
        follow=False,
        data={"csrf": browser.csrf(), "username": t.admin.username, "password": t.admin.password},
    )
    assert response.status_code == 303


def test_passwords_are_argon2id_with_distinct_salts(server: ServerProcess) -> None:
    from bastion.server.bootstrap import new_user

    t = make_tenant(server)
    auth = server.authority
    with auth.store.begin() as conn:
        for name in ("x", "y"):
            new_user(
                auth,
                conn,
                t.tenant,
                upn=f"{name}@{t.name}",
                display_name=None,
                password="same password here",
                mfa_state="disabled",
            )
        hashes = (
            conn.execute(
                select(users.c.password_hash).where(
                    users.c.tenant_id == t.tenant.id,
                    users.c.upn.in_([f"x@{t.name}", f"y@{t.name}"]),
                )
            )
            .scalars()
            .all()
        )
    assert len(set(hashes)) == 2
    for h in hashes:
        assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert "same password here" not in h


def test_low_cost_hash_is_upgraded_at_sign_in(t: Org) -> None:
    import argon2

    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(
        t.password_only.password
    )
    with t.server.authority.store.begin() as conn:
        conn.execute(
            users.update().where(users.c.upn == t.password_only.username).values(password_hash=weak)
        )
    browser = Browser(t.server.base_url)
    assert login(browser, t, t.password_only.username, t.password_only.password).status_code == 200
    with t.server.authority.store.begin() as conn:
        stored = conn.execute(
            select(users.c.password_hash).where(users.c.upn == t.password_only.username)
        ).scalar_one()
    assert stored != weak and "m=19456,t=2" in stored


def test_new_tenant_has_no_account_that_can_sign_in(server: ServerProcess) -> None:
    name = "x5-" + base64.b32encode(__import__("os").urandom(5)).decode().lower()
    server.cli("tenant", "create", name)
    browser = Browser(server.base_url)
    for user, password in (
        ("admin", "admin"),
        ("admin@" + name, "admin"),
        ("administrator", "password"),
        ("root", "root"),
    ):
        browser.get(f"/t/{name}/login")
        response = browser.submit(f"/t/{name}/login", {"username": user, "password": password})
        assert response.status_code == 401


def test_bootstrap_admin_is_forced_through_factor_registration(server: ServerProcess) -> None:
    name = "boot-" + base64.b32encode(__import__("os").urandom(5)).decode().lower()
    server.cli(
        "tenant",
        "create",
        name,
        "--admin",
        f"root@{name}",
        "--password-stdin",
        input="a long bootstrap password\n",
    )
    browser = Browser(server.base_url)
    browser.get(f"/t/{name}/login")
    response = browser.submit(
        f"/t/{name}/login", {"username": f"root@{name}", "password": "a long bootstrap password"}
    )
    assert "/login/enroll" in str(response.url)


def test_sign_in_events_are_audited(t: Org) -> None:
    browser = Browser(t.server.base_url)
    login(browser, t, t.password_only.username, "wrong password")
    login(browser, t, t.password_only.username, t.password_only.password)
    failure = events_of(t, "sign_in.password_failure")
    success = events_of(t, "sign_in.success")
    assert len(failure) == 1 and len(success) == 1
    assert success[0].data["amr"] == ["pwd"]
    assert failure[0].source == "127.0.0.1"


def test_user_code_entry_prefilled_from_verification_uri_complete(t: Org) -> None:
    from tests.support.flows import device_code_request

    start = device_code_request(t)
    browser = Browser(t.server.base_url)
    page = browser.get(
        urlsplit(start["verification_uri_complete"]).path
        + "?"
        + urlsplit(start["verification_uri_complete"]).query
    )
    assert start["user_code"] in page.text
    assert parse_qs(urlsplit(start["verification_uri_complete"]).query)["user_code"]


def test_disabled_user_cannot_sign_in(t: Org) -> None:
    t.server.cli("user", "disable", "--tenant", t.name, t.password_only.username)
    browser = Browser(t.server.base_url)
    response = login(browser, t, t.password_only.username, t.password_only.password)
    assert response.status_code == 401 and "disabled" in page_error(response)


def test_wrong_codes_pause_the_authenticator_until_an_operator_unlocks(t: Org) -> None:
    good = t.admin.code(t.server)
    wrong = "000000" if good != "000000" else "111111"
    browser = Browser(t.server.base_url)
    login(browser, t, t.admin.username, t.admin.password)
    for _ in range(FREE_FAILURES):
        assert browser.submit(f"/t/{t.name}/login/mfa", {"code": wrong}).status_code == 401
    paused = browser.submit(f"/t/{t.name}/login/mfa", {"code": good})
    assert paused.status_code == 429 and page_error(paused) == "Too many wrong authenticator codes."
    assert "Or use a recovery code." in paused.text
    assert [e.data["counter"] for e in events_of(t, "sign_in.lockout")] == ["otp"]
    t.server.cli("user", "unlock", "--tenant", t.name, t.admin.username)
    assert browser.submit(f"/t/{t.name}/login/mfa", {"code": good}).status_code == 200


def test_wrong_recovery_codes_pause_recovery(t: Org) -> None:
    browser = Browser(t.server.base_url)
    login(browser, t, t.admin.username, t.admin.password)
    for _ in range(FREE_FAILURES):
        response = browser.submit(
            f"/t/{t.name}/login/mfa", {"recovery_code": "abcd-efghjkm-npqrstu"}
        )
        assert response.status_code == 401
    response = browser.submit(f"/t/{t.name}/login/mfa", {"recovery_code": "abcd-efghjkm-npqrstu"})
    assert response.status_code == 429
    assert page_error(response) == "Too many wrong recovery codes."
