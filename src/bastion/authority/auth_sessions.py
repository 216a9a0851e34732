"""``auth_session`` values of the authorization challenge endpoint.

OAuth 2.0 for First-Party Applications (draft-ietf-oauth-first-party-apps §5.3.1) ties the
requests of one terminal sign-in together with an opaque ``auth_session``, the analogue of a
browser's cookie. Bastion's ties the second-factor request to the password that came before:
the user who gave it, the client, and the PKCE challenge, scopes, resource and nonce of the
first request, which the code is finally issued for.

A value carries 256 bits from the CSPRNG and is stored only as a keyed hash, as the browser's
cookies are and in the same table (``web_sessions``), under the stage ``challenge`` and a hash
purpose of its own: a cookie can never be presented as an auth session, nor the reverse. It
is bound to its tenant and client, lives :data:`LIFETIME` seconds, and is spent by the request
that presents it; a wrong code is answered with a new value that keeps the first one's expiry,
so retries never lengthen the sign-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from bastion.authority.context import Authority
from bastion.secrets_at_rest import random_token
from bastion.store.schema import web_sessions

LIFETIME = 300
STAGE = "challenge"
_PURPOSE = "auth-session"
#: longer than any value issued here (43 characters); a longer one is not looked up
_MAX_LENGTH = 128


@dataclass(frozen=True)
class SignInRequest:
    """What the first request asked for; the authorization code is issued for exactly this."""

    client_id: str
    code_challenge: str
    scopes: tuple[str, ...]
    resource: str | None
    nonce: str | None


@dataclass(frozen=True)
class AuthSession:
    key: str
    tenant_id: str
    user_id: str
    request: SignInRequest
    expires_at: float


def issue(
    auth: Authority,
    conn: Connection,
    *,
    tenant_id: str,
    user_id: str,
    request: SignInRequest,
    expires_at: float,
    now: float,
) -> str:
    """Store a new auth session; returns its value (given to the client, never stored)."""
    value = random_token(32)
    conn.execute(
        insert(web_sessions).values(
            cookie_hash=auth.keyring.lookup_hash(_PURPOSE, value),
            tenant_id=tenant_id,
            stage=STAGE,
            user_id=user_id,
            session_id=None,
            continuation={
                "kind": STAGE,
                "client_id": request.client_id,
                "code_challenge": request.code_challenge,
                "scopes": list(request.scopes),
                "resource": request.resource,
                "nonce": request.nonce,
            },
            pending_secret=None,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return value


def find(
    auth: Authority, conn: Connection, tenant_id: str, value: str, now: float
) -> AuthSession | None:
    """The live auth session of this tenant with this value, or None."""
    if not value or len(value) > _MAX_LENGTH:
        return None
    key = auth.keyring.lookup_hash(_PURPOSE, value)
    row = conn.execute(
        select(web_sessions).where(
            web_sessions.c.cookie_hash == key,
            web_sessions.c.tenant_id == tenant_id,
            web_sessions.c.stage == STAGE,
        )
    ).first()
    if row is None or now > row.expires_at or row.user_id is None:
        return None
    data: dict[str, Any] = row.continuation or {}
    if data.get("kind") != STAGE:
        return None
    return AuthSession(
        key=key,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        request=SignInRequest(
            client_id=data["client_id"],
            code_challenge=data["code_challenge"],
            scopes=tuple(data["scopes"]),
            resource=data.get("resource"),
            nonce=data.get("nonce"),
        ),
        expires_at=row.expires_at,
    )


def spend(conn: Connection, session: AuthSession) -> bool:
    """Single use: true only for the one request that deletes it (also when two race)."""
    result = conn.execute(
        delete(web_sessions).where(
            web_sessions.c.cookie_hash == session.key, web_sessions.c.stage == STAGE
        )
    )
    return result.rowcount == 1
