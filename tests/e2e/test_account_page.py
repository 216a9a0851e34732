"""The account page: a person's own sign-ins, password and factors (S5 user side, S6).

Driven through the pages against a real server; other sign-ins are made with the device
grant so that they hold refresh tokens, which must be refused once those sign-ins end.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from bastion.authority.factors import totp
from bastion.directory.tenants import TenantPolicy
from bastion.store.schema import users
from tests.support.audit_log import events_of
from tests.support.browser import Browser, page_error
from tests.support.flows import Org, Person, device_sign_in, refresh, sign_in_pages

STEP_UP_WINDOW = TenantPolicy().step_up_window
ROW = re.compile(r'<tr class="session">(.*?)</tr>', re.S)
REF = re.compile(r'name="session" value="([^"]+)"')


@pytest.fixture
def browser(t: Org) -> Iterator[Browser]:
    b = Browser(t.server.base_url)
    yield b
    b.close()


def open_account(browser: Browser, t: Org, person: Person) -> httpx.Response:
    """Ask for the account page signed out, sign in, and come back to it."""
    response = browser.get(f"/t/{t.name}/account")
    response = sign_in_pages(browser, t, person, response=response)
    assert response.status_code == 200, response.text[:500]
    assert str(response.url).endswith(f"/t/{t.name}/account"), response.url
    return response


def listed(page: httpx.Response) -> list[tuple[str, bool]]:
    """The sign-ins the page lists: (reference for the End form, whether it is this one)."""
    rows = ROW.findall(page.text)
    found = [(REF.search(row), "(this one)" in row) for row in rows]
    return [(match.group(1), current) for match, current in found if match]


def refused(t: Org, refresh_token: str) -> bool:
    answer = refresh(t, refresh_token)
    return answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def password_matches(t: Org, person: Person, password: str) -> bool:
    auth = t.server.authority
    with auth.store.begin() as conn:
        stored = conn.execute(
            select(users.c.password_hash).where(
                users.c.tenant_id == t.tenant.id, users.c.upn == person.username
            )
        ).scalar_one()
    return auth.hasher.verify(stored, password)


def test_signed_out_the_account_page_sends_to_the_login_and_back(t: Org) -> None:
    answer = httpx.get(f"{t.issuer}/account", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/t/{t.name}/login"


def test_lists_own_sign_ins_and_never_another_users(t: Org, browser: Browser) -> None:
    device_sign_in(t, t.password_only)
    device_sign_in(t, t.admin)  # another user's sign-in, never shown
    page = open_account(browser, t, t.password_only)
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    sessions = listed(page)
    assert len(sessions) == 2, page.text
    assert [current for _, current in sessions].count(True) == 1
    assert "bastion-cli" in page.text  # the device sign-in names its client
    assert t.password_only.username in page.text
    assert t.admin.username not in page.text


def test_ending_a_sign_in_asks_for_a_factor_first(t: Org, browser: Browser) -> None:
    other = device_sign_in(t, t.admin)
    t.server.advance(31)  # the next TOTP code: a code is accepted once
    open_account(browser, t, t.admin)
    t.server.advance(STEP_UP_WINDOW + 1)
    (ref,) = [ref for ref, current in listed(browser.get(f"/t/{t.name}/account")) if not current]

    asked = browser.submit(f"/t/{t.name}/account/sessions/end", {"session": ref}, follow=False)
    assert asked.status_code == 303
    assert asked.headers["location"] == f"/t/{t.name}/login/mfa"
    assert not refused(t, other["refresh_token"])  # nothing ended yet

    browser.get(f"/t/{t.name}/login/mfa")
    page = browser.submit(f"/t/{t.name}/login/mfa", {"code": t.admin.code(t.server)})
    assert str(page.url).endswith(f"/t/{t.name}/account"), page.text[:500]
    (ref,) = [ref for ref, current in listed(page) if not current]
    ended = browser.submit(f"/t/{t.name}/account/sessions/end", {"session": ref}, follow=False)
    assert ended.status_code == 303
    assert ended.headers["location"] == f"/t/{t.name}/account?done=ended"
    assert refused(t, other["refresh_token"])
    assert len(listed(browser.get(f"/t/{t.name}/account"))) == 1


def test_ending_a_sign_in_revokes_its_refresh_tokens(t: Org, browser: Browser) -> None:
    other = device_sign_in(t, t.password_only)
    page = open_account(browser, t, t.password_only)  # the password was just given
    (ref,) = [ref for ref, current in listed(page) if not current]
    ended = browser.submit(f"/t/{t.name}/account/sessions/end", {"session": ref})
    assert ended.status_code == 200
    assert refused(t, other["refresh_token"])


def test_another_users_sign_in_cannot_be_ended(t: Org, browser: Browser) -> None:
    theirs = device_sign_in(t, t.admin)
    payload = theirs["access_token"].split(".")[1]
    sid = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]
    ref = t.server.authority.keyring.lookup_hash("account-session", sid)
    open_account(browser, t, t.password_only)
    answer = browser.submit(f"/t/{t.name}/account/sessions/end", {"session": ref})
    assert answer.status_code == 400
    assert page_error(answer) == "That sign-in is not one of yours, or it has already ended."
    assert not refused(t, theirs["refresh_token"])


@pytest.mark.parametrize("current", ["", "not-the-password"])
def test_a_password_change_without_the_current_password_gets_400(
    t: Org, browser: Browser, current: str
) -> None:
    person = t.password_only
    open_account(browser, t, person)
    new = "a fresh passphrase " + secrets.token_hex(4)
    answer = browser.submit(
        f"/t/{t.name}/account/password",
        {"current_password": current, "new_password": new, "confirm_password": new},
    )
    assert answer.status_code == 400, answer.text[:500]
    assert page_error(answer)
    assert password_matches(t, person, person.password)
    assert events_of(t, "notify.password_changed") == []
    failures = events_of(t, "sign_in.password_failure")
    assert len(failures) == (1 if current else 0)  # a wrong one counts like a sign-in's


@pytest.mark.parametrize("end_others", [True, False])
def test_a_password_change_notifies_and_ends_the_other_sign_ins(
    t: Org, browser: Browser, end_others: bool
) -> None:
    person = t.password_only
    other = device_sign_in(t, person)
    open_account(browser, t, person)
    new = "a fresh passphrase " + secrets.token_hex(4)
    form = {"current_password": person.password, "new_password": new, "confirm_password": new}
    if end_others:
        form["end_others"] = "on"  # the checkbox, on by default
    answer = browser.submit(f"/t/{t.name}/account/password", form)
    assert answer.status_code == 200, answer.text[:500]
    assert "Your password was changed." in answer.text
    assert password_matches(t, person, new)
    notices = events_of(t, "notify.password_changed")
    assert [n.data.get("address") for n in notices] == [person.username]
    assert refused(t, other["refresh_token"]) is end_others
    assert len(listed(answer)) == (1 if end_others else 2)  # this sign-in is kept


def test_registering_totp_without_fresh_full_reauthentication_is_challenged(
    t: Org, browser: Browser
) -> None:
    person = t.password_only
    open_account(browser, t, person)
    t.server.advance(STEP_UP_WINDOW + 1)
    browser.get(f"/t/{t.name}/account")
    asked = browser.submit(f"/t/{t.name}/account/factors/totp", {}, follow=False)
    assert asked.status_code == 303
    assert asked.headers["location"] == f"/t/{t.name}/login"
    page = sign_in_pages(browser, t, person, response=browser.get(f"/t/{t.name}/login"))
    assert str(page.url).endswith(f"/t/{t.name}/account"), page.text[:500]
    enrol = browser.submit(f"/t/{t.name}/account/factors/totp", {}, follow=False)
    assert enrol.status_code == 303
    assert enrol.headers["location"] == f"/t/{t.name}/login/enroll"
    page = browser.get(enrol.headers["location"])
    secret = totp.base32_to_secret(re.search(r'id="secret">([A-Z2-7]+)<', page.text).group(1))
    done = browser.submit(
        f"/t/{t.name}/login/enroll", {"code": totp.code_at(secret, t.server.now())}
    )
    assert done.status_code == 200, done.text[:500]
    notices = events_of(t, "notify.factor_registered")
    assert [n.data.get("address") for n in notices] == [person.username]
    back = browser.get(f"/t/{t.name}/login/continue")
    assert str(back.url).endswith(f"/t/{t.name}/account"), back.text[:500]
    assert "Authenticator app, added" in back.text
    assert "End every other sign-in" in back.text  # the offer after the change


def test_removing_the_authenticator_needs_fresh_full_reauthentication(
    t: Org, browser: Browser
) -> None:
    person = t.admin
    other = device_sign_in(t, person)
    t.server.advance(31)  # the next TOTP code: a code is accepted once
    open_account(browser, t, person)
    t.server.advance(STEP_UP_WINDOW + 1)
    browser.get(f"/t/{t.name}/account")
    asked = browser.submit(
        f"/t/{t.name}/account/factors/remove", {"end_others": "on"}, follow=False
    )
    assert asked.status_code == 303
    assert asked.headers["location"] == f"/t/{t.name}/login"
    assert events_of(t, "notify.factor_removed") == []

    page = sign_in_pages(browser, t, person, response=browser.get(f"/t/{t.name}/login"))
    assert str(page.url).endswith(f"/t/{t.name}/account"), page.text[:500]
    done = browser.submit(f"/t/{t.name}/account/factors/remove", {"end_others": "on"})
    assert done.status_code == 200, done.text[:500]
    assert "Register an authenticator app" in done.text
    notices = events_of(t, "notify.factor_removed")
    assert [n.data.get("address") for n in notices] == [person.username]
    assert refused(t, other["refresh_token"])
    assert len(listed(done)) == 1
