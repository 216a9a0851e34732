"""What every grant ends with: the subject checked, then a token response built."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from bastion.authority import challenge_sessions
from bastion.authority.clients import GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN
from bastion.authority.grants.grant import TokenRequest
from bastion.authority.resources import ScopeRequest
from bastion.authority.sign_in_sessions import (
    ACR_TWO_FACTORS,
    lasts_until,
    require_alive,
    session_from_row,
    touch,
)
from bastion.authority.tokens import (
    Subject,
    access_token,
    id_token,
    new_refresh_token,
    store_refresh_token,
)
from bastion.core.errors import InvalidGrant
from bastion.directory.role_groups import role_names_of
from bastion.directory.users import User
from bastion.store.prepared import Prepared
from bastion.store.schema import sessions, users

#: The session and its user in one statement: this runs on every token request.
_SUBJECT = Prepared(
    select(
        sessions,
        users.c.upn,
        users.c.display_name,
        users.c.enabled,
        users.c.mfa_state,
        users.c.password_failures,
        users.c.recovery_failures,
    )
    .join(users, users.c.id == sessions.c.user_id)
    .where(sessions.c.id == bindparam("sid"), sessions.c.tenant_id == bindparam("tenant_id")),
    json_columns=frozenset({"amr"}),
    boolean_columns=frozenset({"enabled"}),
)


def load_subject(request: TokenRequest, session_id: str) -> Subject:
    """The session must be alive and its user enabled; otherwise ``invalid_grant``. The
    session counts as used now (its idle timeout starts again)."""
    conn, tenant, now = request.conn, request.tenant, request.now
    row = next(iter(_SUBJECT.rows(conn, {"sid": session_id, "tenant_id": tenant.id})), None)
    if row is None:
        raise InvalidGrant("The sign-in no longer exists.", hint="Sign in again.")
    session = session_from_row(row)
    require_alive(session, tenant.policy, now)
    if not row.enabled:
        raise InvalidGrant("The account is disabled.", hint="Ask an administrator to enable it.")
    user = User(
        id=row.user_id,
        tenant_id=row.tenant_id,
        upn=row.upn,
        display_name=row.display_name,
        enabled=row.enabled,
        mfa_state=row.mfa_state,
        password_hash=None,  # never needed to issue a token
        password_failures=row.password_failures,
        recovery_failures=row.recovery_failures,
    )
    roles = role_names_of(conn, user.id)
    touch(conn, session_id, now)
    return Subject(
        tenant=tenant,
        issuer=request.issuer,
        user=user,
        roles=roles,
        session=session,
        client=request.client,
    )


def token_response(
    request: TokenRequest,
    *,
    subject: Subject,
    scopes: ScopeRequest,
    family_id: str,
    nonce: str | None = None,
    next_refresh_token: tuple[str, str] | None = None,
    next_stored: bool = False,
    granted_scopes: tuple[str, ...] | None = None,
    signed_in: bool = False,
) -> dict[str, Any]:
    """RFC 6749 section 5.1, with an ID token when ``openid`` was asked for.

    With a refresh token comes ``refresh_token_expires_in`` (as Microsoft Entra names it):
    the seconds until the sign-in session ends if it is not used again, its absolute end or
    its idle timeout, whichever is sooner. When ``signed_in`` (a sign-in just completed:
    a code or a device code redeemed), a first-party client that may use the authorization
    challenge endpoint also gets an ``auth_session`` (first-party apps draft §6.1) for
    stepping this sign-in up later with the second factor alone.

    ``next_refresh_token`` is the (token, hash) a refresh already named as the successor;
    ``next_stored`` says it is stored already (a retry within the grace window gets the
    successor the first presentation got).
    """
    auth, conn, now = request.auth, request.conn, request.now
    if scopes.audience is not None and subject.roles and subject.session.acr != ACR_TWO_FACTORS:
        # A8: a role holder's password-only sign-in (the role granted after it) opens no
        # service; Entra answers a refresh like this with invalid_grant too.
        raise InvalidGrant(
            "Your account holds an administrative role, so its services need a sign-in "
            "with a second factor.",
            hint="Sign in again; you will be asked for your second factor.",
        )
    key = auth.keys.active_key(conn, subject.tenant.id)
    audience = scopes.audience or subject.issuer
    scope = scopes.response_scope()
    token, lifetime = access_token(key, subject, audience=audience, scope=scope, now=now)
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": scope,
    }
    if subject.client.allows_grant(GRANT_REFRESH_TOKEN):
        raw, token_hash = next_refresh_token or new_refresh_token(auth.keyring)
        if not next_stored:
            store_refresh_token(
                conn,
                token_hash=token_hash,
                subject=subject,
                family_id=family_id,
                scopes=granted_scopes if granted_scopes is not None else scopes.oidc_scopes,
                resource=scopes.audience,
                now=now,
            )
        body["refresh_token"] = raw
        ends = lasts_until(subject.session, subject.tenant.policy, now)
        body["refresh_token_expires_in"] = max(0, int(ends - now))
        if (
            signed_in
            and subject.client.first_party
            and subject.client.allows_grant(GRANT_AUTHORIZATION_CODE)
        ):
            body["auth_session"] = challenge_sessions.issue_handle(
                auth,
                conn,
                tenant_id=subject.tenant.id,
                user_id=subject.user.id,
                session_id=subject.session.id,
                client_id=subject.client.client_id,
                family_id=family_id,
                expires_at=subject.session.created_at + subject.tenant.policy.session_lifetime,
                now=now,
            )
    if "openid" in scopes.oidc_scopes:
        body["id_token"] = id_token(key, subject, scopes=scopes.oidc_scopes, nonce=nonce, now=now)
    return body
