"""Issuing tokens: JWT access tokens (RFC 9068), ID tokens, rotating refresh tokens.

Refresh tokens are opaque, random (256 bits) and stored only as keyed hashes. Each use
returns a new one and retires the one presented; presenting a retired one again revokes
every token of its family and records a security event (RFC 9700 section 4.14.2). One
exception keeps a lost response from costing the sign-in: the immediately previous token,
presented again within :data:`REFRESH_GRACE_SECONDS` while its successor is still unused,
gets a fresh successor of its own instead of tripping reuse detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import Connection, insert, select, update

from bastion.audit import events
from bastion.authority.clients import Client
from bastion.authority.sessions import SignInSession
from bastion.directory.tenants import Tenant
from bastion.directory.users import User
from bastion.errors import InvalidGrant
from bastion.secrets_at_rest import Keyring, random_token
from bastion.store.schema import refresh_tokens

REFRESH_GRACE_SECONDS = 10
_RT_PURPOSE = "refresh-token"


def sign(key: ECKey, typ: str, claims: dict[str, Any]) -> str:
    header = {"alg": "ES256", "typ": typ, "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=["ES256"])


@dataclass(frozen=True)
class Subject:
    """Everything about the signed-in person that goes into a token."""

    tenant: Tenant
    issuer: str
    user: User
    roles: list[str]
    session: SignInSession
    client: Client


def access_token(
    key: ECKey, subject: Subject, *, audience: str, scope: str, now: float
) -> tuple[str, int]:
    lifetime = subject.tenant.policy.access_token_lifetime
    issued = int(now)
    claims = {
        "iss": subject.issuer,
        "sub": subject.user.id,
        "aud": audience,
        "tid": subject.tenant.id,
        "client_id": subject.client.client_id,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": random_token(16),
        "auth_time": int(subject.session.auth_time),
        "amr": list(subject.session.amr),
        "acr": subject.session.acr,
        "sid": subject.session.id,
        "scope": scope,
        "roles": subject.roles,
        "preferred_username": subject.user.upn,
    }
    return sign(key, "at+jwt", claims), lifetime


def id_token(
    key: ECKey, subject: Subject, *, scopes: tuple[str, ...], nonce: str | None, now: float
) -> str:
    issued = int(now)
    claims: dict[str, Any] = {
        "iss": subject.issuer,
        "sub": subject.user.id,
        "aud": subject.client.client_id,
        "tid": subject.tenant.id,
        "iat": issued,
        "exp": issued + subject.tenant.policy.access_token_lifetime,
        "auth_time": int(subject.session.auth_time),
        "amr": list(subject.session.amr),
        "acr": subject.session.acr,
        "sid": subject.session.id,
    }
    if nonce:
        claims["nonce"] = nonce
    if "profile" in scopes:
        claims["preferred_username"] = subject.user.upn
        claims["name"] = subject.user.display_name
    if "email" in scopes:
        claims["email"] = subject.user.upn
    return sign(key, "JWT", claims)


def refresh_token_hash(keyring: Keyring, raw: str) -> str:
    return keyring.lookup_hash(_RT_PURPOSE, raw)


def mint_refresh_token(
    conn: Connection,
    keyring: Keyring,
    *,
    subject: Subject,
    family_id: str,
    scopes: tuple[str, ...],
    resource: str | None,
    now: float,
) -> tuple[str, str]:
    """Store a new refresh token; returns (raw token, its hash)."""
    raw = random_token(32)
    token_hash = refresh_token_hash(keyring, raw)
    conn.execute(
        insert(refresh_tokens).values(
            token_hash=token_hash,
            tenant_id=subject.tenant.id,
            family_id=family_id,
            session_id=subject.session.id,
            client_id=subject.client.client_id,
            scopes=list(scopes),
            resource=resource,
            created_at=now,
            used_at=None,
            successor_hash=None,
            revoked_at=None,
        )
    )
    return raw, token_hash


@dataclass(frozen=True)
class RedeemedRefreshToken:
    token_hash: str
    family_id: str
    session_id: str
    scopes: tuple[str, ...]
    resource: str | None


_SIGN_IN_AGAIN = "Sign in again."


def redeem_refresh_token(
    conn: Connection, keyring: Keyring, *, tenant: Tenant, client: Client, raw: str, now: float
) -> RedeemedRefreshToken:
    """Check a presented refresh token and retire it. The caller mints the successor."""
    token_hash = refresh_token_hash(keyring, raw)
    row = conn.execute(
        select(refresh_tokens).where(
            refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.tenant_id == tenant.id
        )
    ).first()
    if row is None or row.client_id != client.client_id:
        raise InvalidGrant("The refresh token is not valid.", hint=_SIGN_IN_AGAIN)
    if row.revoked_at is not None:
        raise InvalidGrant("The refresh token was revoked.", hint=_SIGN_IN_AGAIN)
    redeemed = RedeemedRefreshToken(
        token_hash=row.token_hash,
        family_id=row.family_id,
        session_id=row.session_id,
        scopes=tuple(row.scopes),
        resource=row.resource,
    )
    if row.used_at is None:
        claimed = conn.execute(
            update(refresh_tokens)
            .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.used_at.is_(None))
            .values(used_at=now)
        )
        if claimed.rowcount == 1:
            return redeemed
        row = conn.execute(
            select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
        ).first()
        assert row is not None
    if _within_grace(conn, row, now):
        return redeemed
    revoke_family(conn, row.family_id, now)
    events.record(
        conn,
        tenant_id=tenant.id,
        type="token.refresh_reuse",
        outcome="denied",
        now=now,
        client_id=client.client_id,
        family=row.family_id,
        session_id=row.session_id,
        token=token_hash,
    )
    raise InvalidGrant(
        "This refresh token was already used, so every token of this sign-in was revoked.",
        hint=_SIGN_IN_AGAIN,
        keep_changes=True,
    )


def _within_grace(conn: Connection, row: Any, now: float) -> bool:
    if row.used_at is None or now - row.used_at > REFRESH_GRACE_SECONDS:
        return False
    if row.successor_hash is None:
        return False
    successor = conn.execute(
        select(refresh_tokens.c.used_at, refresh_tokens.c.revoked_at).where(
            refresh_tokens.c.token_hash == row.successor_hash
        )
    ).first()
    return successor is not None and successor.used_at is None and successor.revoked_at is None


def link_successor(conn: Connection, token_hash: str, successor_hash: str) -> None:
    conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.successor_hash.is_(None))
        .values(successor_hash=successor_hash)
    )


def revoke_family(conn: Connection, family_id: str, now: float) -> None:
    conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
