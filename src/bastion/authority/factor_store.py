"""Stored second factors: TOTP seeds (sealed) and recovery codes (hashed)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from bastion.authority.factors import recovery
from bastion.authority.passwords import PasswordHasher
from bastion.core.ids import new_id
from bastion.core.secrets_at_rest import Keyring
from bastion.store.schema import factors, recovery_codes

_SEED_PURPOSE = "totp-seed"


@dataclass(frozen=True)
class TotpFactor:
    id: str
    secret: bytes
    last_step: int | None
    failures: int


def seal_seed(keyring: Keyring, seed: bytes, associated: str) -> bytes:
    return keyring.seal(_SEED_PURPOSE, seed, associated.encode())


def open_seed(keyring: Keyring, sealed: bytes, associated: str) -> bytes:
    return keyring.open(_SEED_PURPOSE, sealed, associated.encode())


def find_totp(conn: Connection, keyring: Keyring, user_id: str) -> TotpFactor | None:
    row = conn.execute(
        select(factors).where(
            factors.c.user_id == user_id, factors.c.kind == "totp", factors.c.confirmed.is_(True)
        )
    ).first()
    if row is None:
        return None
    return TotpFactor(
        id=row.id,
        secret=open_seed(keyring, row.secret_sealed, row.id),
        last_step=row.last_step,
        failures=row.failures,
    )


def has_factor(conn: Connection, user_id: str) -> bool:
    return (
        conn.execute(
            select(factors.c.id).where(factors.c.user_id == user_id, factors.c.confirmed.is_(True))
        ).first()
        is not None
    )


def add_totp(
    conn: Connection,
    keyring: Keyring,
    *,
    tenant_id: str,
    user_id: str,
    secret: bytes,
    accepted_step: int | None,
    now: float,
) -> str:
    """Store a confirmed TOTP factor; the confirming step counts as used (A4)."""
    factor_id = new_id()
    conn.execute(delete(factors).where(factors.c.user_id == user_id, factors.c.kind == "totp"))
    conn.execute(
        insert(factors).values(
            id=factor_id,
            tenant_id=tenant_id,
            user_id=user_id,
            kind="totp",
            secret_sealed=seal_seed(keyring, secret, factor_id),
            confirmed=True,
            last_step=accepted_step,
            failures=0,
            created_at=now,
        )
    )
    return factor_id


def claim_step(conn: Connection, factor_id: str, step: int) -> bool:
    """Accept ``step`` once: true only if no step at or after it was accepted before.

    A single conditional UPDATE, so two racing requests (in any processes) cannot both win.
    """
    result = conn.execute(
        update(factors)
        .where(
            factors.c.id == factor_id,
            (factors.c.last_step.is_(None)) | (factors.c.last_step < step),
        )
        .values(last_step=step, failures=0)
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class PreparedCodes:
    """New recovery codes (shown once) and the (lookup, Argon2id hash) pairs to store."""

    codes: list[str]
    rows: list[tuple[str, str]]


def prepare_recovery_codes(hasher: PasswordHasher) -> PreparedCodes:
    """Ten fresh codes, hashed. Argon2 is slow on purpose: call this outside a transaction."""
    codes = recovery.generate_codes()
    rows = []
    for code in codes:
        normalized = recovery.normalize(code)
        assert normalized is not None
        lookup, full = normalized
        rows.append((lookup, hasher.hash(full)))
    return PreparedCodes(codes, rows)


def store_recovery_codes(
    conn: Connection, prepared: PreparedCodes, *, tenant_id: str, user_id: str, now: float
) -> None:
    """Replace a user's recovery codes; only their hashes are kept (A6)."""
    conn.execute(delete(recovery_codes).where(recovery_codes.c.user_id == user_id))
    for lookup, code_hash in prepared.rows:
        conn.execute(
            insert(recovery_codes).values(
                id=new_id(),
                tenant_id=tenant_id,
                user_id=user_id,
                lookup=lookup,
                code_hash=code_hash,
                used_at=None,
                created_at=now,
            )
        )


@dataclass(frozen=True)
class RecoveryCandidate:
    """The one stored code a typed code could be, found by its lookup prefix."""

    id: str | None
    code_hash: str | None
    typed: str


def find_recovery_code(conn: Connection, *, user_id: str, code: str) -> RecoveryCandidate:
    normalized = recovery.normalize(code)
    if normalized is None:
        return RecoveryCandidate(None, None, code)
    lookup, full = normalized
    row = conn.execute(
        select(recovery_codes.c.id, recovery_codes.c.code_hash).where(
            recovery_codes.c.user_id == user_id,
            recovery_codes.c.lookup == lookup,
            recovery_codes.c.used_at.is_(None),
        )
    ).first()
    return RecoveryCandidate(row.id if row else None, row.code_hash if row else None, full)


def check_recovery_hash(hasher: PasswordHasher, candidate: RecoveryCandidate) -> bool:
    """The Argon2 work, the same cost whether or not a code was found; no lock held."""
    if candidate.code_hash is None:
        hasher.verify_dummy(candidate.typed)
        return False
    return hasher.verify(candidate.code_hash, candidate.typed)


def mark_recovery_code_used(conn: Connection, code_id: str, now: float) -> bool:
    """Single use: true only for the first request to spend the code."""
    result = conn.execute(
        update(recovery_codes)
        .where(recovery_codes.c.id == code_id, recovery_codes.c.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1
