"""What every grant ends with: the subject checked, then a token response built."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from bastion.authority.clients import GRANT_REFRESH_TOKEN, Client
from bastion.authority.context import Authority
from bastion.authority.resources import ScopeRequest
from bastion.authority.sessions import find_session, require_alive
from bastion.authority.tokens import (
    Subject,
    access_token,
    id_token,
    link_successor,
    mint_refresh_token,
)
from bastion.directory.tenants import Tenant
from bastion.directory.users import get_user, roles_of
from bastion.errors import InvalidGrant


def load_subject(
    auth: Authority,
    conn: Connection,
    *,
    tenant: Tenant,
    issuer: str,
    client: Client,
    session_id: str,
    now: float,
) -> Subject:
    """The session must be alive and its user enabled; otherwise ``invalid_grant``."""
    session = find_session(conn, tenant.id, session_id)
    if session is None:
        raise InvalidGrant("The sign-in no longer exists.", hint="Sign in again.")
    require_alive(session, tenant.policy, now)
    user = get_user(conn, tenant.id, session.user_id)
    if not user.enabled:
        raise InvalidGrant("The account is disabled.", hint="Ask an administrator to enable it.")
    return Subject(
        tenant=tenant,
        issuer=issuer,
        user=user,
        roles=roles_of(conn, user.id),
        session=session,
        client=client,
    )


def token_response(
    auth: Authority,
    conn: Connection,
    *,
    subject: Subject,
    request: ScopeRequest,
    family_id: str,
    nonce: str | None = None,
    previous_hash: str | None = None,
    granted_scopes: tuple[str, ...] | None = None,
    now: float,
) -> dict[str, Any]:
    """RFC 6749 section 5.1, with an ID token when ``openid`` was asked for."""
    key = auth.keys.active_key(conn, subject.tenant.id)
    audience = request.audience or subject.issuer
    scope = request.response_scope()
    token, lifetime = access_token(key, subject, audience=audience, scope=scope, now=now)
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": scope,
    }
    if subject.client.allows_grant(GRANT_REFRESH_TOKEN):
        raw, new_hash = mint_refresh_token(
            conn,
            auth.keyring,
            subject=subject,
            family_id=family_id,
            scopes=granted_scopes if granted_scopes is not None else request.oidc_scopes,
            resource=request.audience,
            now=now,
        )
        if previous_hash:
            link_successor(conn, previous_hash, new_hash)
        body["refresh_token"] = raw
    if "openid" in request.oidc_scopes:
        body["id_token"] = id_token(key, subject, scopes=request.oidc_scopes, nonce=nonce, now=now)
    return body
