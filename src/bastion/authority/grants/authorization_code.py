"""The authorization code grant, RFC 6749 section 4.1, with PKCE (RFC 7636).

A code is bound to its client, redirect URI (none for a code from the authorization
challenge endpoint) and PKCE challenge, lives at most
:data:`CODE_LIFETIME` seconds and is redeemed once. A second redemption revokes the sign-in
session the code came from, and with it every token issued from the code (RFC 6749 §4.1.2,
RFC 9700 §4.5).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from bastion.audit import events
from bastion.authority.clients import GRANT_AUTHORIZATION_CODE
from bastion.authority.grants import pkce_verification as pkce
from bastion.authority.grants.grant import Grant, TokenRequest
from bastion.authority.grants.issue import load_subject, token_response
from bastion.authority.parts import Authority
from bastion.authority.resources import ScopeRequest, parse_scope_request
from bastion.authority.sign_in_sessions import revoke_session
from bastion.core.errors import InvalidGrant
from bastion.core.secrets_at_rest import random_token
from bastion.directory.tenants import Tenant
from bastion.store.schema import authorization_codes

CODE_LIFETIME = 600
#: the redirect URI stored with a code from the authorization challenge endpoint, which has
#: none: its token request sends no ``redirect_uri`` (draft-ietf-oauth-first-party-apps §6).
#: Never a registrable redirect URI (only https and loopback http are).
NO_REDIRECT_URI = "urn:bastion:authorization-challenge"
_PURPOSE = "authorization-code"


def issue_code(
    auth: Authority,
    conn: Connection,
    *,
    tenant: Tenant,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    session_id: str,
    scopes: tuple[str, ...],
    resource: str | None,
    nonce: str | None,
    now: float,
) -> str:
    code = random_token(32)
    conn.execute(
        insert(authorization_codes).values(
            code_hash=auth.keyring.lookup_hash(_PURPOSE, code),
            tenant_id=tenant.id,
            client_id=client_id,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            session_id=session_id,
            scopes=list(scopes),
            resource=resource,
            nonce=nonce,
            expires_at=now + CODE_LIFETIME,
            used_at=None,
            family_id=None,
        )
    )
    return code


class AuthorizationCodeGrant(Grant):
    """Section 4.1.3: redeem a code for tokens, once, with its PKCE verifier."""

    grant_type = GRANT_AUTHORIZATION_CODE
    parameters = frozenset({"code", "redirect_uri", "code_verifier", "resource"})
    refusal = "This client may not use the authorization code grant."

    def handle(self, request: TokenRequest) -> dict[str, Any]:
        row, family_id = _redeem(request)
        resources = request.resources or ([row.resource] if row.resource else [])
        requested = parse_scope_request(" ".join(row.scopes), resources, request.audiences)
        return token_response(
            request,
            subject=load_subject(request, row.session_id),
            scopes=ScopeRequest(oidc_scopes=tuple(row.scopes), audience=requested.audience),
            family_id=family_id,
            nonce=row.nonce,
            signed_in=True,
        )


def _redeem(request: TokenRequest) -> tuple[Row[Any], str]:
    """The code's row, checked and marked used, and the token family it starts."""
    conn, tenant, client, now = request.conn, request.tenant, request.client, request.now
    code_hash = request.auth.keyring.lookup_hash(_PURPOSE, request.text("code"))
    row = conn.execute(
        select(authorization_codes).where(
            authorization_codes.c.code_hash == code_hash,
            authorization_codes.c.tenant_id == tenant.id,
        )
    ).first()
    if row is None:
        raise InvalidGrant("The authorization code is not valid.")
    if row.used_at is not None:
        revoke_session(conn, row.session_id, now)
        events.record(
            conn,
            tenant_id=tenant.id,
            type="token.code_reuse",
            outcome="denied",
            now=now,
            client_id=client.client_id,
            session_id=row.session_id,
            code=code_hash,
        )
        raise InvalidGrant(
            "The authorization code was already used; every token issued from it is revoked.",
            keep_changes=True,
        )
    if now > row.expires_at:
        raise InvalidGrant("The authorization code has expired.", hint="Sign in again.")
    if row.client_id != client.client_id:
        raise InvalidGrant("The authorization code was issued to another client.")
    _check_redirect_uri(request.form.get("redirect_uri"), row.redirect_uri)
    try:
        pkce.verify(request.form.get("code_verifier"), row.code_challenge)
    except InvalidGrant as exc:
        exc.keep_changes = True
        events.record(
            conn,
            tenant_id=tenant.id,
            type="token.pkce_failure",
            outcome="denied",
            now=now,
            client_id=client.client_id,
            session_id=row.session_id,
        )
        raise
    family_id = random_token(24)
    conn.execute(
        update(authorization_codes)
        .where(authorization_codes.c.code_hash == code_hash)
        .values(used_at=now, family_id=family_id)
    )
    return row, family_id


def _check_redirect_uri(sent: str | None, stored: str) -> None:
    """Section 4.1.3: the same ``redirect_uri`` as the authorization request, or none for
    a code from the challenge endpoint."""
    if stored == NO_REDIRECT_URI:
        if sent is not None:
            raise InvalidGrant(
                "This code came from the authorization challenge endpoint: send no redirect_uri."
            )
    elif sent != stored:
        raise InvalidGrant("redirect_uri differs from the one in the authorization request.")
