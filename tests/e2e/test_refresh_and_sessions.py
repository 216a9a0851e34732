"""Refresh rotation, reuse detection, session policy, revocation and introspection."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tests.support.audit_log import events_of
from tests.support.browser import Browser
from tests.support.flows import Org, device_sign_in, make_tenant, refresh
from tests.support.server import ServerProcess

pytestmark = pytest.mark.tenant(session_lifetime=8 * 3600, idle_timeout=1800)


def reuse_events(t: Org) -> int:
    return len(events_of(t, "token.refresh_reuse"))


def test_each_refresh_rotates_and_reuse_revokes_the_family(t: Org) -> None:
    rt1 = device_sign_in(t, t.password_only)["refresh_token"]
    second = refresh(t, rt1)
    assert second.status_code == 200
    rt2 = second.json()["refresh_token"]
    assert rt2 != rt1
    rt3 = refresh(t, rt2).json()["refresh_token"]
    t.server.advance(11)  # past the grace window for a lost response
    reused = refresh(t, rt1)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert "already used" in reused.json()["error_description"]
    assert refresh(t, rt3).json()["error"] == "invalid_grant"  # the family is revoked
    assert reuse_events(t) == 1


def test_a_lost_response_can_be_retried_within_the_grace_window(t: Org) -> None:
    rt1 = device_sign_in(t, t.password_only)["refresh_token"]
    rt2 = refresh(t, rt1).json()["refresh_token"]
    retry = refresh(t, rt1)  # the first response was lost
    assert retry.status_code == 200, retry.text
    assert retry.json()["refresh_token"] == rt2  # the same successor, never a branch
    assert refresh(t, rt2).status_code == 200
    # once rt2 was used, rt1 is no longer the immediately previous token
    assert refresh(t, rt1).json()["error"] == "invalid_grant"
    assert reuse_events(t) == 1


def test_idle_timeout_ends_the_sign_in(t: Org) -> None:
    rt = device_sign_in(t, t.password_only)["refresh_token"]
    t.server.advance(1700)
    fresh = refresh(t, rt)
    assert fresh.status_code == 200  # activity inside the idle timeout
    t.server.advance(1801)
    late = refresh(t, fresh.json()["refresh_token"])
    assert late.json()["error"] == "invalid_grant"
    assert "idle" in late.json()["error_description"]
    assert "Sign in again" in late.json()["error_description"]


def test_absolute_lifetime_is_not_extended_by_activity(t: Org) -> None:
    rt = device_sign_in(t, t.password_only)["refresh_token"]
    for _ in range(16):  # 16 x 29 min = 7 h 44 min of steady activity
        t.server.advance(29 * 60)
        response = refresh(t, rt)
        assert response.status_code == 200, response.text
        rt = response.json()["refresh_token"]
    t.server.advance(17 * 60)  # 8 h 1 min after sign-in
    late = refresh(t, rt)
    assert late.json()["error"] == "invalid_grant"
    assert "8 hours" in late.json()["error_description"]


def test_policy_limits_cannot_exceed_nist(server: ServerProcess) -> None:
    from bastion.core.errors import UsageError

    with pytest.raises(UsageError):
        make_tenant(server, session_lifetime=25 * 3600)
    with pytest.raises(UsageError):
        make_tenant(server, idle_timeout=2 * 3600)


def test_refresh_cannot_widen_scopes_or_name_unknown_resources(t: Org) -> None:
    rt = device_sign_in(t, t.password_only)["refresh_token"]
    wider = refresh(t, rt, scope="openid email")
    assert wider.json()["error"] == "invalid_scope"
    unknown = refresh(t, rt, resource="https://unknown.example/api")
    assert unknown.json()["error"] == "invalid_target"
    mixed = refresh(t, rt, scope=f"{t.audience('mail')}/.default {t.audience('chat')}/.default")
    assert mixed.json()["error"] == "invalid_scope"
    assert refresh(t, rt).status_code == 200  # bad requests did not spend the token


def test_disabling_a_user_revokes_their_refresh_tokens(t: Org) -> None:
    rt = device_sign_in(t, t.password_only)["refresh_token"]
    t.server.cli("user", "disable", "--tenant", t.name, t.password_only.username)
    assert refresh(t, rt).json()["error"] == "invalid_grant"


def confidential_client(t: Org, client_id: str) -> tuple[str, str]:
    out = t.server.cli(
        "client",
        "create",
        "--tenant",
        t.name,
        client_id,
        "--name",
        client_id,
        "--confidential",
        "--grant-type",
        "refresh_token",
    ).stdout
    import json

    return client_id, json.loads(out)["client_secret"]


def introspect(t: Org, creds: tuple[str, str] | None, token: str) -> httpx.Response:
    return httpx.post(
        f"{t.issuer}/oauth2/introspect", data={"token": token}, auth=creds if creds else None
    )


def test_introspection_needs_authentication_and_reports_revocation(t: Org) -> None:
    tokens = device_sign_in(t, t.password_only, resource=t.audience("mail"))
    creds = confidential_client(t, "reporting-api")
    assert introspect(t, None, tokens["access_token"]).status_code == 401
    assert introspect(t, ("reporting-api", "wrong"), tokens["access_token"]).status_code == 401
    at = introspect(t, creds, tokens["access_token"]).json()
    assert at["active"] is True and at["aud"] == t.audience("mail")
    assert introspect(t, creds, tokens["refresh_token"]).json()["active"] is True
    revoked = httpx.post(
        f"{t.issuer}/oauth2/revoke",
        data={"token": tokens["refresh_token"], "client_id": "bastion-cli"},
    )
    assert revoked.status_code == 200
    assert introspect(t, creds, tokens["refresh_token"]).json() == {"active": False}
    assert refresh(t, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    t.server.advance(t.tenant.policy.access_token_lifetime + 120)
    assert introspect(t, creds, tokens["access_token"]).json() == {"active": False}


def test_another_tenants_token_is_inactive(server: ServerProcess) -> None:
    a, b = make_tenant(server), make_tenant(server)
    tokens = device_sign_in(a, a.password_only, resource=a.audience("mail"))
    creds = confidential_client(b, "b-api")
    assert introspect(b, creds, tokens["access_token"]).json() == {"active": False}
    assert introspect(b, creds, tokens["refresh_token"]).json() == {"active": False}


def test_a_client_cannot_revoke_another_clients_token(t: Org) -> None:
    tokens = device_sign_in(t, t.password_only)
    other = confidential_client(t, "other-app")
    refused = httpx.post(
        f"{t.issuer}/oauth2/revoke", data={"token": tokens["refresh_token"]}, auth=other
    )
    assert refused.status_code == 400
    assert refresh(t, tokens["refresh_token"]).status_code == 200


def test_access_token_revocation(t: Org) -> None:
    tokens = device_sign_in(t, t.password_only, resource=t.audience("sites"))
    creds = confidential_client(t, "intro")
    httpx.post(
        f"{t.issuer}/oauth2/revoke",
        data={
            "token": tokens["access_token"],
            "token_type_hint": "access_token",
            "client_id": "bastion-cli",
        },
    )
    assert introspect(t, creds, tokens["access_token"]).json() == {"active": False}


def test_logout_ends_the_session_and_its_refresh_tokens(t: Org) -> None:
    from tests.support.flows import approve_device, device_code_request, poll_token

    start = device_code_request(t)
    browser = Browser(t.server.base_url)
    approve_device(browser, t, t.password_only, start["user_code"])
    tokens = poll_token(t, start["device_code"]).json()
    cookie = dict(browser.cookies)
    browser.get(f"/t/{t.name}/oauth2/logout")
    done = browser.submit(f"/t/{t.name}/oauth2/logout", {})
    assert done.status_code == 200 and "signed out" in done.text
    assert refresh(t, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    replay = Browser(t.server.base_url)
    replay.cookies.update(cookie)
    assert "/login" in str(replay.get(f"/t/{t.name}/login/continue").url)


def test_expired_rows_are_purged(t: Org) -> None:
    from sqlalchemy import func

    from bastion.store import housekeeping
    from bastion.store.schema import device_codes
    from tests.support.flows import device_code_request

    device_code_request(t)
    auth = t.server.authority
    with auth.store.begin() as conn:
        count = (
            select(func.count())
            .select_from(device_codes)
            .where(device_codes.c.tenant_id == t.tenant.id)
        )
        assert conn.execute(count).scalar_one() == 1
        housekeeping.purge_expired(conn, t.server.now() + 3600)
        assert conn.execute(count).scalar_one() == 0
