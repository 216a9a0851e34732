"""Recovery never bypasses an enrolled factor (A10): after an administrator resets the
password of a user with an authenticator app, signing in with the new password still ends at
the factor prompt, on the sign-in pages and at the authorization challenge endpoint, and
never at a session or a code."""

from __future__ import annotations

import secrets

import httpx
import pytest

from bastion.authority.grants.pkce_verification import s256
from bastion.server.bootstrap import new_user
from tests.support.browser import Browser
from tests.support.flows import Org, Person, register_factor
from tests.support.plane import Tokens, result


def totp_user(t: Org, mfa_state: str) -> Person:
    auth = t.server.authority
    name = f"kim-{secrets.token_hex(3)}@{t.name}"
    with auth.store.begin() as conn:
        new_user(
            auth,
            conn,
            t.tenant,
            upn=name,
            display_name="Kim",
            password="pw-" + secrets.token_urlsafe(12),
            mfa_state=mfa_state,
        )
    return register_factor(t, Person(name, "unused"))


@pytest.mark.parametrize("mfa_state", ["disabled", "enabled", "enforced"])
def test_a_password_reset_still_ends_at_the_factor_prompt(t: Org, mfa_state: str) -> None:
    kim = totp_user(t, mfa_state)
    admin = Tokens(t, t.admin)
    new_password = "reset-" + secrets.token_urlsafe(12)
    result(admin.run("directory", "Set-User", {"identity": kim.username, "password": new_password}))

    # the sign-in pages: the new password leads to the code prompt, and no further
    browser = Browser(t.server.base_url)
    browser.get(f"/t/{t.name}/login")
    after = browser.submit(
        f"/t/{t.name}/login", {"username": kim.username, "password": new_password}
    )
    assert str(after.url).endswith("/login/mfa"), after.url
    assert "/callback" not in str(after.url) and "code=" not in str(after.url)
    # nothing this browser holds opens a session: a code request sends it back to sign in
    authorize = browser.get(
        f"/t/{t.name}/oauth2/authorize?client_id=bastion-cli&response_type=code"
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A53117%2Fcallback&scope=openid"
        f"&code_challenge={s256('v' * 43)}&code_challenge_method=S256&state=s",
        follow=False,
    )
    assert authorize.status_code == 303
    assert "/login" in authorize.headers["location"]
    assert "code=" not in authorize.headers["location"]

    # the authorization challenge endpoint: the factor is asked for, no code is given
    verifier = secrets.token_urlsafe(48)
    first = httpx.post(
        f"{t.issuer}/oauth2/authorize-challenge",
        data={
            "client_id": "bastion-cli",
            "username": kim.username,
            "password": new_password,
            "scope": "openid offline_access",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert first.status_code == 403, first.text
    body = first.json()
    assert body["error"] == "insufficient_authorization" and body["required"] == "otp"
    assert "authorization_code" not in body
    # and the factor still works with the new password
    second = httpx.post(
        f"{t.issuer}/oauth2/authorize-challenge",
        data={
            "client_id": "bastion-cli",
            "auth_session": body["auth_session"],
            "otp": kim.code(t.server),
        },
    )
    assert second.status_code == 200 and "authorization_code" in second.json()
