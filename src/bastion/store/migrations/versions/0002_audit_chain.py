"""audit chain: seq, prev_hash and hash on audit_events; audit_heads; audit_checkpoints

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:00:00

Hand-written. Records that exist at the upgrade are chained here, per tenant in ``id``
order (the order they were written), and each tenant that has any gets its head. No
checkpoint can be signed here (a migration has no master key): a tenant's first checkpoint
comes with its first record after the upgrade, and covers the records chained here through
the hash links (docs/decisions/0008-audit-chain.md).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

GENESIS = "0" * 64
BATCH = 1000

# The chain format 1, frozen here as it was when this migration was written, so that later
# changes to bastion.audit.chain cannot change what this migration computes. A unit test
# checks that it still agrees with bastion.audit.chain.record_hash.


def _record_hash(row: Any, seq: int, prev_hash: str) -> str:
    body = {
        "v": 1,
        "tenant": row.tenant_id,
        "seq": seq,
        "time": float(row.time),
        "type": row.type,
        "actor_id": row.actor_id,
        "actor_name": row.actor_name,
        "client_id": row.client_id,
        "source": row.source,
        "request_id": row.request_id,
        "outcome": row.outcome,
        "data": row.data,
        "prev_hash": prev_hash,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer),
    sa.column("tenant_id", sa.String),
    sa.column("time", sa.Float),
    sa.column("type", sa.String),
    sa.column("actor_id", sa.String),
    sa.column("actor_name", sa.String),
    sa.column("client_id", sa.String),
    sa.column("source", sa.String),
    sa.column("request_id", sa.String),
    sa.column("outcome", sa.String),
    sa.column("data", sa.JSON),
    sa.column("seq", sa.BigInteger),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)

_heads = sa.table(
    "audit_heads",
    sa.column("tenant_id", sa.String),
    sa.column("seq", sa.BigInteger),
    sa.column("hash", sa.String),
    sa.column("checkpoint_seq", sa.BigInteger),
)


def _build_chains(conn: sa.Connection) -> None:
    """Give every existing record its seq, prev_hash and hash, a batch at a time."""
    heads: dict[str, tuple[int, str]] = {}
    set_chain = (
        sa.update(_events)
        .where(_events.c.id == sa.bindparam("_id"))
        .values(
            seq=sa.bindparam("_seq"),
            prev_hash=sa.bindparam("_prev"),
            hash=sa.bindparam("_hash"),
        )
    )
    last_id = 0
    while True:
        rows = conn.execute(
            sa.select(_events).where(_events.c.id > last_id).order_by(_events.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        updates = []
        for row in rows:
            seq, prev = heads.get(row.tenant_id, (0, GENESIS))
            digest = _record_hash(row, seq + 1, prev)
            heads[row.tenant_id] = (seq + 1, digest)
            updates.append({"_id": row.id, "_seq": seq + 1, "_prev": prev, "_hash": digest})
        conn.execute(set_chain, updates)
        last_id = rows[-1].id
    if heads:
        conn.execute(
            sa.insert(_heads),
            [
                {"tenant_id": t, "seq": seq, "hash": digest, "checkpoint_seq": 0}
                for t, (seq, digest) in heads.items()
            ],
        )


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    op.create_table(
        "audit_heads",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("checkpoint_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_heads_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_audit_heads")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_audit_checkpoints_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name=op.f("pk_audit_checkpoints")),
    )

    _build_chains(op.get_bind())

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(
            batch_op.f("ix_audit_events_tenant_id_seq"), ["tenant_id", "seq"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_tenant_id_seq"))
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_heads")
