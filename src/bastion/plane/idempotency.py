"""``Idempotency-Key``: a retried write returns the first result instead of applying twice.

The key is scoped to the caller (tenant and subject). The stored answer is written in the
command's own transaction, so either both the change and the answer exist or neither does.
Two identical requests racing both run; the loser's insert of the key fails, its transaction
(and so its change) rolls back, and it answers with the winner's stored result. A key reused
with another command or other parameters is refused. Keys are kept :data:`RETENTION` seconds.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from bastion.core.errors import Conflict, UsageError
from bastion.store.schema import idempotency_keys

HEADER = "idempotency-key"
RETENTION = 24 * 3600
MAX_KEY = 255


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise UsageError(
            f"Idempotency-Key must be 1-{MAX_KEY} printable characters.",
            hint="Use a random UUID per logical write.",
        )
    return key


def digest(parameters: dict[str, Any]) -> str:
    text = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def stored(
    conn: Connection, *, tenant_id: str, subject: str, key: str, command: str, params_digest: str
) -> dict[str, Any] | None:
    """The answer kept for this key, if any; refuses a key reused for another request."""
    row = conn.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.tenant_id == tenant_id,
            idempotency_keys.c.subject == subject,
            idempotency_keys.c.key == key,
        )
    ).first()
    if row is None:
        return None
    if row.command != command or row.parameters_digest != params_digest:
        raise Conflict(
            "this Idempotency-Key was already used for another request.",
            hint="Use a new key for each different write.",
        )
    answer: dict[str, Any] = row.response
    return answer


def remember(
    conn: Connection,
    *,
    tenant_id: str,
    subject: str,
    key: str,
    command: str,
    params_digest: str,
    response: dict[str, Any],
    now: float,
) -> None:
    conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < now - RETENTION))
    conn.execute(
        insert(idempotency_keys).values(
            tenant_id=tenant_id,
            subject=subject,
            key=key,
            command=command,
            parameters_digest=params_digest,
            response=response,
            created_at=now,
        )
    )
