"""A8: every role is an admin role, and its holder never gets a command-plane token from a
password-only sign-in (docs/decisions/0018).

The tenant's MFA-disabled user (``t.password_only``) is given a role directly, through a
group, or in a custom role group, and then: every sign-in path asks for a second factor, or
walks them through registering one first; a password-only sign-in made before the role was
granted opens no service, neither at the token endpoint nor at the command plane.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import bastion
from bastion.authority.factors import totp
from bastion.client import ClientError
from bastion.directory import groups, role_groups, users
from bastion.server.bootstrap import ROLE_NAMES
from tests.client.players import Player
from tests.e2e.test_authorization_challenge import claims_of, start, step_up
from tests.e2e.test_authorization_code import authorize_url, redeem
from tests.support.browser import Browser
from tests.support.flows import (
    Org,
    Person,
    device_code_request,
    device_sign_in,
    poll_token,
    refresh,
    register_factor,
)
from tests.support.plane import run

TWO_FACTORS = "urn:bastion:acr:2fa"
HOW = ("directly", "through a group", "in a custom role group")


def grant(t: Org, person: Person, how: str, role: str = "Read-Only Reporting") -> None:
    """Give ``person`` a role, held in one of the three ways a user can hold one."""
    auth, tag = t.server.authority, secrets.token_hex(3)
    with auth.store.begin() as conn:
        user = users.require_user(conn, t.tenant.id, person.username)
        now = t.server.now()
        if how == "directly":
            role_groups.add_to_built_in(conn, t.tenant.id, user.id, role, now, ROLE_NAMES)
        elif how == "through a group":
            group = groups.create_group(
                conn, tenant_id=t.tenant.id, name=f"g-{tag}", description="", now=now
            )
            groups.add_member(conn, group, user.id)
            built_in = role_groups.require_role_group(conn, t.tenant.id, role)
            role_groups.add_member(conn, built_in, group.id, "group")
        else:
            custom = role_groups.create_role_group(
                conn,
                tenant_id=t.tenant.id,
                name=f"custom-{tag}",
                description="",
                roles=[role],
                scope=None,
                now=now,
                known_roles=ROLE_NAMES,
            )
            role_groups.add_member(conn, custom, user.id, "user")


def _password(browser: Browser, t: Org, person: Person) -> httpx.Response:
    form = {"username": person.username, "password": person.password}
    return browser.submit(f"/t/{t.name}/login", form)


def _mfa_state(t: Org, person: Person) -> str:
    with t.server.authority.store.begin() as conn:
        return users.require_user(conn, t.tenant.id, person.username).mfa_state


@pytest.mark.parametrize("how", HOW)
def test_a_role_holder_with_mfa_disabled_registers_a_factor_before_any_token(
    t: Org, how: str
) -> None:
    sam = t.password_only
    grant(t, sam, how)
    assert _mfa_state(t, sam) == "disabled"
    # the terminal: no code for the password alone; registration happens in a browser
    refused = start(t, sam, secrets.token_urlsafe(48), resource=t.audience("directory"))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "redirect_to_web"
    # the device grant's pages: the password leads to registration, not to the approval
    begun = device_code_request(t, resource=t.audience("directory"))
    browser = Browser(t.server.base_url)
    browser.get(f"/t/{t.name}/device?user_code={begun['user_code']}")
    browser.submit(f"/t/{t.name}/device", {"user_code": begun["user_code"]})
    page = browser.submit(
        f"/t/{t.name}/login", {"username": sam.username, "password": sam.password}
    )
    assert "/login/enroll" in str(page.url), page.text[:300]
    assert poll_token(t, begun["device_code"]).json()["error"] == "authorization_pending"
    secret_text = re.search(r'id="secret">([A-Z2-7]+)<', page.text)
    assert secret_text is not None
    secret = totp.base32_to_secret(secret_text.group(1))
    browser.submit(f"/t/{t.name}/login/enroll", {"code": totp.code_at(secret, t.server.now())})
    confirm = browser.get(f"/t/{t.name}/login/continue")
    assert "/device/confirm" in str(confirm.url)
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})
    t.server.advance(5)
    tokens = poll_token(t, begun["device_code"]).json()
    assert claims_of(tokens["access_token"])["amr"] == ["pwd", "otp", "mfa"]
    assert claims_of(tokens["access_token"])["acr"] == TWO_FACTORS
    assert run(t, tokens["access_token"], "Get-User", {}).status_code == 200
    # the per-user state is what the administrator set; A8 binds whatever it says
    assert _mfa_state(t, sam) == "disabled"


def test_a_role_holder_with_a_factor_is_asked_for_it_on_every_path(t: Org) -> None:
    sam = register_factor(t, t.password_only)
    grant(t, sam, "directly")
    verifier = secrets.token_urlsafe(48)
    first = start(t, sam, verifier, resource=t.audience("directory"))
    assert first.status_code == 403 and first.json()["error"] == "insufficient_authorization"
    # the authorization code flow's pages
    browser = Browser(t.server.base_url)
    page = browser.get(authorize_url(t, verifier=verifier))
    page = browser.submit(
        f"/t/{t.name}/login", {"username": sam.username, "password": sam.password}
    )
    assert "/login/mfa" in str(page.url), page.text[:300]


def test_a_role_granted_after_a_password_only_sign_in_opens_no_service(t: Org) -> None:
    sam = t.password_only
    tokens = device_sign_in(t, sam, resource=t.audience("directory"))
    assert claims_of(tokens["access_token"])["amr"] == ["pwd"]
    before = run(t, tokens["access_token"], "Get-User", {})
    assert before.status_code == 403  # no role yet: simply not allowed
    grant(t, sam, "in a custom role group")
    # the command plane reads roles at each command: RFC 9470 asks for two factors
    after = run(t, tokens["access_token"], "Get-User", {})
    assert after.status_code == 401, after.text
    challenge = after.headers["www-authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert f'acr_values="{TWO_FACTORS}"' in challenge
    assert after.json()["status"] == 401
    # the token endpoint mints no service token from that sign-in (Entra: invalid_grant)
    for service in ("directory", "mail"):
        renewed = refresh(t, tokens["refresh_token"], resource=t.audience(service))
        assert renewed.status_code == 400, renewed.text
        assert renewed.json()["error"] == "invalid_grant"
    # the terminal's step-up of that sign-in sends the account to register a factor
    refused = step_up(t, tokens["auth_session"], secrets.token_urlsafe(48))
    assert refused.status_code == 403 and refused.json()["error"] == "redirect_to_web"


def _code_from(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text[:300]
    query: dict[str, Any] = parse_qs(urlsplit(response.headers["location"]).query)
    return str(query["code"][0])


def test_a_browser_sign_in_made_before_the_role_is_stepped_up(t: Org) -> None:
    sam = t.password_only
    browser = Browser(t.server.base_url)
    verifier = secrets.token_urlsafe(48)
    # no role and no factor yet: the password alone (MFA disabled)
    page = browser.get(authorize_url(t, verifier=verifier))
    page = browser.submit(
        f"/t/{t.name}/login", {"username": sam.username, "password": sam.password}
    )
    first = redeem(t, _code_from(page), verifier).json()
    assert claims_of(first["access_token"])["amr"] == ["pwd"]
    register_factor(t, sam)
    grant(t, sam, "through a group")
    # the authorization endpoint: the same browser is asked for the second factor
    verifier = secrets.token_urlsafe(48)
    page = browser.get(authorize_url(t, verifier=verifier, resource=t.audience("directory")))
    assert "/login/mfa" in str(page.url), page.text[:300]
    page = browser.submit(f"/t/{t.name}/login/mfa", {"code": sam.code(t.server)})
    second = redeem(t, _code_from(page), verifier).json()
    assert claims_of(second["access_token"])["acr"] == TWO_FACTORS
    assert run(t, second["access_token"], "Get-User", {}).status_code == 200


def test_the_device_pages_step_up_a_password_only_browser_sign_in(t: Org) -> None:
    sam = t.password_only
    browser = Browser(t.server.base_url)
    page = browser.get(authorize_url(t, verifier=secrets.token_urlsafe(48)))
    _password(browser, t, sam)
    register_factor(t, sam)
    grant(t, sam, "directly")
    begun = device_code_request(t, resource=t.audience("directory"))
    browser.get(f"/t/{t.name}/device?user_code={begun['user_code']}")
    page = browser.submit(f"/t/{t.name}/device", {"user_code": begun["user_code"]})
    assert "/login/mfa" in str(page.url), page.text[:300]
    page = browser.submit(f"/t/{t.name}/login/mfa", {"code": sam.code(t.server)})
    assert "/device/confirm" in str(page.url), page.text[:300]
    browser.submit(f"/t/{t.name}/device/confirm", {"action": "approve"})
    t.server.advance(5)
    tokens = poll_token(t, begun["device_code"]).json()
    assert claims_of(tokens["access_token"])["acr"] == TWO_FACTORS


def test_without_a_role_the_mfa_disabled_state_still_means_password_only(t: Org) -> None:
    tokens = device_sign_in(t, t.password_only, resource=t.audience("mail"))
    assert claims_of(tokens["access_token"])["amr"] == ["pwd"]
    verifier = secrets.token_urlsafe(48)
    answer = start(t, t.password_only, verifier, resource=t.audience("mail"))
    assert answer.status_code == 200 and "authorization_code" in answer.json()


def test_the_client_meets_the_challenge_of_a_role_granted_after_its_sign_in(
    t: Org, tmp_path: Path
) -> None:
    sam = register_factor(t, t.password_only)
    player = Player(t, sam)
    conn = bastion.connect(
        t.server.base_url, t.name, method="terminal", prompt=player, config_dir=tmp_path
    )
    with pytest.raises(ClientError) as refused:  # no role yet
        conn.directory.get_management_role()
    assert refused.value.status == 403
    grant(t, sam, "directly")
    # the plane's RFC 9470 challenge: the terminal asks for the second factor only
    assert conn.directory.get_management_role()
    assert [q.split(" ")[0] for q in player.asked] == ["User", "Password", "One-time"]
    player.close()
