"""An administrator's credential change ends every sign-in of the user at once (S5, S6).

A password reset, a factor reset, a disable, a removal and ``Revoke-UserSession`` end the
user's sessions and refresh-token families, and the command plane refuses the user's access
tokens from the next command on, not when they expire (docs/decisions/0020).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx
import pytest

from bastion.authority.sign_in_sessions import create_session, end_sign_ins, ended_sign_in
from bastion.server.bootstrap import new_user
from bastion.store.schema import users
from tests.support.flows import Org, Person, device_sign_in, make_tenant, refresh
from tests.support.plane import Tokens, result, run


def sign_in(t: Org, person: Person) -> dict[str, Any]:
    return device_sign_in(t, person, resource=t.audience("directory"))


def authenticated(t: Org, access_token: str) -> bool:
    """Whether the command plane accepts the token as a caller's (it may still refuse the
    command itself: the users here hold no role, so they get 403, not 401)."""
    answer = run(t, access_token, "Get-User", {})
    if answer.status_code == 401:
        assert answer.json()["title"] == "Invalid token", answer.text
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
        return False
    return True


def ended(t: Org, tokens: dict[str, Any]) -> bool:
    """Whether both the refresh token and the access token of a sign-in are refused."""
    refreshed = refresh(t, tokens["refresh_token"])
    refused = refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    return refused and not authenticated(t, tokens["access_token"])


NEW_PASSWORD = "a-new-password-" + secrets.token_urlsafe(8)

CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "password reset": ("Set-User", {"password": NEW_PASSWORD}),
    "factor reset": ("Set-UserMfa", {"state": "disabled", "reset_methods": True}),
    "disable": ("Disable-User", {}),
    "removal": ("Remove-User", {}),
    "revoke": ("Revoke-UserSession", {}),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_admin_change_ends_every_sign_in_and_access_token_at_once(t: Org, change: str) -> None:
    admin = Tokens(t, t.admin)
    user = t.password_only
    first, second = sign_in(t, user), sign_in(t, user)
    assert authenticated(t, first["access_token"])
    name, params = CHANGES[change]
    result(admin.run("directory", name, {"identity": user.username, **params}))
    # At once: no clock moved, the access tokens have most of their 15 minutes left.
    assert ended(t, first) and ended(t, second)
    t.server.advance(60)
    assert not authenticated(t, first["access_token"])
    # The administrator's own sign-in is untouched.
    assert admin.run("directory", "Get-User", {}).status_code == 200
    if change in ("disable", "removal"):
        return
    # A new sign-in right after the change works.
    again = Person(user.username, NEW_PASSWORD if change == "password reset" else user.password)
    fresh = sign_in(t, again)
    assert authenticated(t, fresh["access_token"])
    assert refresh(t, fresh["refresh_token"]).status_code == 200


def test_operator_resets_from_the_command_line_end_sign_ins(t: Org) -> None:
    user = t.password_only
    tokens = sign_in(t, user)
    t.server.cli(
        "user",
        "set-password",
        "--tenant",
        t.name,
        user.username,
        "--password-stdin",
        input=NEW_PASSWORD + "\n",
    )
    assert ended(t, tokens)
    tokens = sign_in(t, Person(user.username, NEW_PASSWORD))
    t.server.cli("user", "set-mfa", "--tenant", t.name, user.username, "disabled", "--reset")
    assert ended(t, tokens)


def test_revoke_every_users_sessions_of_the_tenant(t: Org) -> None:
    admin = Tokens(t, t.admin)
    other = make_tenant(t.server)
    user_tokens = sign_in(t, t.password_only)
    elsewhere = sign_in(other, other.password_only)
    done = result(admin.run("directory", "Revoke-UserSession", {"all_users": True}))
    assert done == {"usersAffected": 3, "sessionsEnded": 2}
    assert ended(t, user_tokens)
    # The caller's own sign-in ended too: every sign-in of the tenant.
    assert not authenticated(t, admin("directory"))
    # Another tenant is untouched.
    assert authenticated(other, elsewhere["access_token"])
    assert refresh(other, elsewhere["refresh_token"]).status_code == 200


def test_revoke_user_session_needs_exactly_one_target(t: Org) -> None:
    admin = Tokens(t, t.admin)
    user_tokens = sign_in(t, t.password_only)
    for params in ({}, {"identity": t.password_only.username, "all_users": True}):
        answer = admin.run("directory", "Revoke-UserSession", params)
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert "identity" in answer.json()["detail"]
    missing = admin.run("directory", "Revoke-UserSession", {"identity": f"nobody@{t.name}"})
    assert missing.status_code == 404
    # Nothing was ended by the refusals.
    assert authenticated(t, user_tokens["access_token"])
    assert refresh(t, user_tokens["refresh_token"]).status_code == 200


def test_a_user_without_a_role_cannot_end_sessions(t: Org) -> None:
    tokens = sign_in(t, t.password_only)
    answer = run(t, tokens["access_token"], "Revoke-UserSession", {"all_users": True})
    assert answer.status_code == 403
    assert refresh(t, tokens["refresh_token"]).status_code == 200


def test_the_comparison_at_the_same_second_uses_the_sessions_exact_time(t: Org) -> None:
    """Access tokens carry whole seconds: a token of a sign-in from just before the change
    and one from a new sign-in just after it can have the same ``iat``. The decision is made
    on the sign-in session's own time, kept with sub-second precision."""
    auth = t.server.authority
    change = 1_900_000_000.5
    with auth.store.begin() as conn:
        user = new_user(
            auth,
            conn,
            t.tenant,
            upn=f"same-second@{t.name}",
            display_name=None,
            password=None,
            mfa_state="disabled",
        )

        def session_at(when: float) -> str:
            made = create_session(
                conn, tenant_id=t.tenant.id, user_id=user.id, amr=["pwd"], now=when
            )
            return made.id

        def standing(sid: str, iat: float) -> bool:
            found = ended_sign_in(
                conn, tenant_id=t.tenant.id, user_id=user.id, session_id=sid, issued_at=iat
            )
            return found is None

        before = session_at(change - 0.3)
        end_sign_ins(conn, users.c.id == user.id, change)
        # A sign-in that raced the change (created after it ended the sessions, but
        # authenticated before it): older than the change, so refused.
        raced = session_at(change - 0.1)
        after = session_at(change + 0.2)
        at_the_instant = session_at(change)  # a frozen clock: the same instant
        second = int(change)
        assert not standing(before, second)
        assert not standing(raced, second)
        assert standing(after, second)
        assert standing(at_the_instant, second)
        # A token without a session is judged by its whole-second iat: refused up to the
        # second after the change.
        assert not standing("", second)
        assert standing("", second + 1)


def test_introspection_agrees_with_the_command_plane(t: Org) -> None:
    admin = Tokens(t, t.admin)
    tokens = sign_in(t, t.password_only)
    result(admin.run("directory", "Revoke-UserSession", {"identity": t.password_only.username}))
    client_id = "intro-" + secrets.token_hex(3)
    out = t.server.cli(
        "client", "create", "--tenant", t.name, client_id, "--name", client_id, "--confidential"
    ).stdout
    answer = httpx.post(
        f"{t.issuer}/oauth2/introspect",
        data={"token": tokens["access_token"]},
        auth=(client_id, json.loads(out)["client_secret"]),
    )
    assert answer.json() == {"active": False}
