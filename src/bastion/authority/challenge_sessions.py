"""``auth_session`` values of the authorization challenge endpoint.

OAuth 2.0 for First-Party Applications (draft-ietf-oauth-first-party-apps §5.3.1) ties the
requests of one terminal sign-in together with an opaque ``auth_session``, the analogue of a
browser's cookie. Bastion's come in two kinds, told apart by their stage:

``challenge``
    ties the second-factor request to what came before: the password (the user who gave
    it), or for a step-up the sign-in session being stepped up; and the client, the PKCE
    challenge, scopes, resource and nonce of the first request, which the code is finally
    issued for. Lives :data:`LIFETIME` seconds and is spent by the request that presents it;
    a wrong code is answered with a new value that keeps the first one's expiry, so retries
    never lengthen the sign-in.
``signed_in``
    the ``auth_session`` of a token response (draft §6.1) to a first-party client: it names
    the sign-in session, so that a step-up (RFC 9470) asks only for the second factor. It
    opens nothing by itself: presented alone it only starts a ``challenge`` for that
    session. It lives as long as the session (absolute end; an ended, idle or revoked
    session makes it worthless at once) and only while the refresh token family it came
    with is not revoked, so signing out the client ends it too. A step-up it started that
    succeeds removes it: the new token response carries the next one.

Every value carries 256 bits from the CSPRNG and is stored only as a keyed hash, as the
browser's cookies are and in the same table (``web_sessions``), under a hash purpose of its
own: a cookie can never be presented as an auth session, nor the reverse. Each is bound to
its tenant and client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from bastion.authority.parts import Authority
from bastion.core.secrets_at_rest import random_token
from bastion.store.schema import refresh_tokens, web_sessions

LIFETIME = 300
STAGE = "challenge"
#: the stage of an auth_session given with tokens, naming a sign-in session
SIGNED_IN = "signed_in"
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
    """A sign-in under way: after the password, or a step-up of ``session_id``."""

    key: str
    tenant_id: str
    user_id: str
    request: SignInRequest
    expires_at: float
    #: for a step-up: the sign-in session it refreshes, and the key of the ``signed_in``
    #: auth_session that started it
    session_id: str | None = None
    handle: str | None = None


@dataclass(frozen=True)
class Handle:
    """The ``signed_in`` auth_session of a token response."""

    key: str
    tenant_id: str
    user_id: str
    session_id: str
    client_id: str
    family_id: str
    expires_at: float


def _store(
    auth: Authority,
    conn: Connection,
    *,
    stage: str,
    tenant_id: str,
    user_id: str,
    session_id: str | None,
    data: dict[str, Any],
    expires_at: float,
    now: float,
) -> str:
    """Keep a new value of ``stage`` (its keyed hash only); returns the value."""
    value = random_token(32)
    conn.execute(
        insert(web_sessions).values(
            cookie_hash=auth.keyring.lookup_hash(_PURPOSE, value),
            tenant_id=tenant_id,
            stage=stage,
            user_id=user_id,
            session_id=session_id,
            continuation={"kind": stage, **data},
            pending_secret=None,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return value


def _live(
    auth: Authority, conn: Connection, stage: str, tenant_id: str, value: str, now: float
) -> tuple[str, Any, dict[str, Any]] | None:
    """(key, row, data) of the unexpired value of ``stage`` in this tenant, or None."""
    if not value or len(value) > _MAX_LENGTH:
        return None
    key = auth.keyring.lookup_hash(_PURPOSE, value)
    row = conn.execute(
        select(web_sessions).where(
            web_sessions.c.cookie_hash == key,
            web_sessions.c.tenant_id == tenant_id,
            web_sessions.c.stage == stage,
        )
    ).first()
    if row is None or now > row.expires_at or row.user_id is None:
        return None
    data: dict[str, Any] = row.continuation or {}
    if data.get("kind") != stage:
        return None
    return key, row, data


def issue(
    auth: Authority,
    conn: Connection,
    *,
    tenant_id: str,
    user_id: str,
    request: SignInRequest,
    expires_at: float,
    now: float,
    session_id: str | None = None,
    handle: str | None = None,
) -> str:
    """Store a new auth session; returns its value (given to the client, never stored)."""
    return _store(
        auth,
        conn,
        stage=STAGE,
        tenant_id=tenant_id,
        user_id=user_id,
        session_id=session_id,
        data={
            "client_id": request.client_id,
            "code_challenge": request.code_challenge,
            "scopes": list(request.scopes),
            "resource": request.resource,
            "nonce": request.nonce,
            "handle": handle,
        },
        expires_at=expires_at,
        now=now,
    )


def find(
    auth: Authority, conn: Connection, tenant_id: str, value: str, now: float
) -> AuthSession | None:
    """The live auth session of this tenant with this value, or None."""
    found = _live(auth, conn, STAGE, tenant_id, value, now)
    if found is None:
        return None
    key, row, data = found
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
        session_id=row.session_id,
        handle=data.get("handle"),
    )


def spend(conn: Connection, session: AuthSession) -> bool:
    """Single use: true only for the one request that deletes it (also when two race)."""
    result = conn.execute(
        delete(web_sessions).where(
            web_sessions.c.cookie_hash == session.key, web_sessions.c.stage == STAGE
        )
    )
    return result.rowcount == 1


def issue_handle(
    auth: Authority,
    conn: Connection,
    *,
    tenant_id: str,
    user_id: str,
    session_id: str,
    client_id: str,
    family_id: str,
    expires_at: float,
    now: float,
) -> str:
    """Store the auth_session of a token response; returns its value (never stored)."""
    return _store(
        auth,
        conn,
        stage=SIGNED_IN,
        tenant_id=tenant_id,
        user_id=user_id,
        session_id=session_id,
        data={"client_id": client_id, "family_id": family_id},
        expires_at=expires_at,
        now=now,
    )


def find_handle(
    auth: Authority, conn: Connection, tenant_id: str, value: str, now: float
) -> Handle | None:
    """The live ``signed_in`` auth session of this tenant with this value, or None (also
    when the refresh token family it came with has been revoked). The caller checks that
    its sign-in session is still alive."""
    found = _live(auth, conn, SIGNED_IN, tenant_id, value, now)
    if found is None:
        return None
    key, row, data = found
    if row.session_id is None or not data.get("family_id"):
        return None
    live = conn.execute(
        select(refresh_tokens.c.token_hash)
        .where(
            refresh_tokens.c.family_id == data["family_id"],
            refresh_tokens.c.session_id == row.session_id,
            refresh_tokens.c.revoked_at.is_(None),
        )
        .limit(1)
    ).first()
    if live is None:
        return None
    return Handle(
        key=key,
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        session_id=row.session_id,
        client_id=str(data.get("client_id", "")),
        family_id=str(data["family_id"]),
        expires_at=row.expires_at,
    )


def drop_handle(conn: Connection, key: str) -> None:
    """Remove a ``signed_in`` auth session (its step-up is done; a new one was issued)."""
    conn.execute(
        delete(web_sessions).where(
            web_sessions.c.cookie_hash == key, web_sessions.c.stage == SIGNED_IN
        )
    )
