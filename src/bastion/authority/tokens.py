"""Issuing tokens: JWT access tokens (RFC 9068), ID tokens, rotating refresh tokens.

Refresh tokens are opaque, random (256 bits) and stored only as keyed hashes. Each use
returns a new one and retires the one presented; presenting a retired one again revokes
every token of its family and records a security event (RFC 9700 section 4.14.2). One
exception keeps a lost response from costing the sign-in: the immediately previous token,
presented again within :data:`REFRESH_GRACE_SECONDS` while its successor is still unused,
gets *the same* successor again, never a branch of its own (docs/decisions/0020). So that it
can be returned twice without being stored, a successor is derived from the token it
replaces with a key only the server holds (HMAC-SHA-256 under a purpose-bound key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import JSON, Connection, bindparam, insert, select, update

from bastion.audit import events
from bastion.authority.clients import Client
from bastion.authority.sign_in_sessions import SignInSession
from bastion.core.errors import InvalidGrant
from bastion.core.secrets_at_rest import Keyring, random_token
from bastion.directory.tenants import Tenant
from bastion.directory.users import User
from bastion.store.prepared import Prepared
from bastion.store.schema import refresh_tokens

REFRESH_GRACE_SECONDS = 10
_RT_PURPOSE = "refresh-token"
_SUCCESSOR_PURPOSE = "refresh-token-successor"


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


def new_refresh_token(keyring: Keyring) -> tuple[str, str]:
    """A fresh refresh token and its keyed hash, before it is stored."""
    raw = random_token(32)
    return raw, refresh_token_hash(keyring, raw)


def successor_of(keyring: Keyring, raw: str) -> tuple[str, str]:
    """The refresh token that replaces ``raw``, and its keyed hash.

    Derived rather than random, so that every presentation of ``raw`` within the grace
    window is answered with the same successor: a pseudorandom function of a 256-bit secret
    token, as unguessable as a random one to anyone without the server's master key."""
    digest = hmac.new(keyring.key(_SUCCESSOR_PURPOSE), raw.encode(), hashlib.sha256).digest()
    successor = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return successor, refresh_token_hash(keyring, successor)


_INSERT_STATEMENT = insert(refresh_tokens).values(
    token_hash=bindparam("v_token_hash"),
    tenant_id=bindparam("v_tenant_id"),
    family_id=bindparam("v_family_id"),
    session_id=bindparam("v_session_id"),
    client_id=bindparam("v_client_id"),
    scopes=bindparam("v_scopes", type_=JSON),
    resource=bindparam("v_resource"),
    created_at=bindparam("v_now"),
    used_at=None,
    successor_hash=None,
    revoked_at=None,
)
#: every grant that hands out a refresh token runs it: through the driver (``Prepared``)
_INSERT = Prepared(_INSERT_STATEMENT, json_parameters=frozenset({"v_scopes"}))


def store_refresh_token(
    conn: Connection,
    *,
    token_hash: str,
    subject: Subject,
    family_id: str,
    scopes: tuple[str, ...],
    resource: str | None,
    now: float,
) -> None:
    _INSERT.run(
        conn,
        {
            "v_token_hash": token_hash,
            "v_tenant_id": subject.tenant.id,
            "v_family_id": family_id,
            "v_session_id": subject.session.id,
            "v_client_id": subject.client.client_id,
            "v_scopes": list(scopes),
            "v_resource": resource,
            "v_now": now,
        },
    )


@dataclass(frozen=True)
class RedeemedRefreshToken:
    token_hash: str
    family_id: str
    session_id: str
    scopes: tuple[str, ...]
    resource: str | None
    #: the successor (token, keyed hash) to hand out
    successor: tuple[str, str]
    #: whether the successor is already stored (a retry within the grace window)
    successor_stored: bool


_SIGN_IN_AGAIN = "Sign in again."

#: The common case in one statement: retire the presented token and name its successor.
_CLAIM_STATEMENT = (
    update(refresh_tokens)
    .where(
        refresh_tokens.c.token_hash == bindparam("presented"),
        refresh_tokens.c.tenant_id == bindparam("b_tenant"),
        refresh_tokens.c.client_id == bindparam("b_client"),
        refresh_tokens.c.used_at.is_(None),
        refresh_tokens.c.revoked_at.is_(None),
    )
    .values(used_at=bindparam("b_now"), successor_hash=bindparam("b_successor"))
    .returning(
        refresh_tokens.c.family_id,
        refresh_tokens.c.session_id,
        refresh_tokens.c.scopes,
        refresh_tokens.c.resource,
    )
)
_CLAIM = Prepared(_CLAIM_STATEMENT, json_columns=frozenset({"scopes"}))


def redeem_refresh_token(
    conn: Connection,
    keyring: Keyring,
    *,
    tenant: Tenant,
    client: Client,
    raw: str,
    now: float,
) -> RedeemedRefreshToken:
    """Check a presented refresh token and retire it in favour of its successor.

    Concurrent presentations of one token serialize on its row: the claim below is an
    UPDATE of that row, which PostgreSQL makes wait for another transaction that changed it
    and SQLite runs one writer at a time. Exactly one presentation claims the token and
    stores the successor; every other one finds the token used, and within the grace window
    gets the stored successor again, never a new row (the successor's hash is the table's
    primary key, so a second one could not be stored either)."""
    token_hash = refresh_token_hash(keyring, raw)
    successor = successor_of(keyring, raw)
    claimed = next(
        iter(
            _CLAIM.rows(
                conn,
                {
                    "presented": token_hash,
                    "b_tenant": tenant.id,
                    "b_client": client.client_id,
                    "b_now": now,
                    "b_successor": successor[1],
                },
            )
        ),
        None,
    )
    if claimed is not None:
        return RedeemedRefreshToken(
            token_hash,
            claimed.family_id,
            claimed.session_id,
            tuple(claimed.scopes),
            claimed.resource,
            successor,
            successor_stored=False,
        )
    row = conn.execute(
        select(refresh_tokens).where(
            refresh_tokens.c.token_hash == token_hash, refresh_tokens.c.tenant_id == tenant.id
        )
    ).first()
    if row is None or row.client_id != client.client_id:
        raise InvalidGrant("The refresh token is not valid.", hint=_SIGN_IN_AGAIN)
    if row.revoked_at is not None:
        raise InvalidGrant("The refresh token was revoked.", hint=_SIGN_IN_AGAIN)
    if _within_grace(conn, row, successor[1], now):
        return RedeemedRefreshToken(
            row.token_hash,
            row.family_id,
            row.session_id,
            tuple(row.scopes),
            row.resource,
            successor,
            successor_stored=True,
        )
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


def _within_grace(conn: Connection, row: Any, successor_hash: str, now: float) -> bool:
    """A retry of the token just rotated: used at most the grace window ago, and its
    successor (the one derived from it, stored) not yet used or revoked."""
    if row.used_at is None or now - row.used_at > REFRESH_GRACE_SECONDS:
        return False
    # A token rotated before successors were derived has another successor: no grace.
    if row.successor_hash != successor_hash:
        return False
    successor = conn.execute(
        select(refresh_tokens.c.used_at, refresh_tokens.c.revoked_at).where(
            refresh_tokens.c.token_hash == successor_hash
        )
    ).first()
    return successor is not None and successor.used_at is None and successor.revoked_at is None


def revoke_family(conn: Connection, family_id: str, now: float) -> None:
    conn.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
