"""audit heads are signed: audit_heads.signature

Revision ID: 0011
Revises: 0005
Create Date: 2026-12-07 18:30:00

Hand-written. The heads that exist at the upgrade are signed here when Bastion runs the
upgrade itself (it passes its keyring in the Alembic config's attributes). A head left
unsigned, by an upgrade run without the key, is reported by ``bastion audit verify``, and
the next append chains an ``audit.head_unverified`` record before its own
(docs/decisions/0008-audit-chain.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

# The head signature format 1, frozen here as it was when this migration was written.


def _signature(key: bytes, tenant_id: str, seq: int, hash_: str) -> str:
    message = json.dumps(
        ["bastion-audit-head", 1, tenant_id, int(seq), hash_],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


_heads = sa.table(
    "audit_heads",
    sa.column("tenant_id", sa.String),
    sa.column("seq", sa.BigInteger),
    sa.column("hash", sa.String),
    sa.column("signature", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("audit_heads") as batch:
        batch.add_column(sa.Column("signature", sa.String(length=64), nullable=True))
    config = op.get_context().config
    keyring: Any = config.attributes.get("keyring") if config is not None else None
    if keyring is None:
        return
    key: bytes = keyring.key("audit-head")
    conn = op.get_bind()
    for row in conn.execute(sa.select(_heads.c.tenant_id, _heads.c.seq, _heads.c.hash)).all():
        conn.execute(
            _heads.update()
            .where(_heads.c.tenant_id == row.tenant_id)
            .values(signature=_signature(key, row.tenant_id, row.seq, row.hash))
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_heads") as batch:
        batch.drop_column("signature")
