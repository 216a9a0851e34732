"""The tenant hash chain behind the audit log (L4), and its signed checkpoints.

Each tenant's records form one chain: record ``seq`` n holds ``prev_hash``, the ``hash`` of
record n - 1 (64 zeros for n = 1), and its own ``hash``, SHA-256 over the canonical JSON
(sorted keys, no whitespace, ASCII) of its fields and ``prev_hash``. An edit changes a hash,
a deletion leaves a gap in ``seq``, an insertion or a reordering breaks a link.

Anyone can recompute SHA-256, so every ``CHECKPOINT_EVERY`` records a checkpoint row holds an
HMAC-SHA-256 of (tenant, seq, hash) under a key derived from the master key. A rewrite of the
chain up to a checkpoint, or a cut after one, cannot produce a matching signature.

The chain head (``audit_heads``) is the tenant's last ``seq`` and ``hash``, signed at every
append with an HMAC under a key derived from the master key (one HMAC over the head per
record, in the UPDATE that moves the head anyway). Without the key, nobody can rewrite the
records after the last checkpoint or cut the end of the chain and leave a head that
verifies. An append that finds a head whose signature does not verify (it did not write
that head itself) first chains a ``audit.head_unverified`` record naming it, so the new
signed head can never bless a changed tail: verify reports that record.

Appending locks the head row on PostgreSQL until the transaction ends (SQLite serializes
writers anyway): the compare-and-set UPDATE takes the lock, or ``SELECT ... FOR UPDATE``
when this process's remembered head is stale. Concurrent transactions thus append one after
another, and a rolled-back transaction leaves no trace.

Checkpoints need the key, and ``record()`` has many callers that have no keyring at hand.
So the key is registered once per store with :func:`configure`, which
``ServerContext.open`` calls (docs/decisions/0008-audit-chain.md). Appending through a store
that was never configured raises: the audit log fails closed rather than writing records no
checkpoint will ever cover.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bastion.core.secrets_at_rest import Keyring
from bastion.store.engine import Store
from bastion.store.prepared import Prepared
from bastion.store.schema import audit_checkpoints, audit_events, audit_heads

#: a signed checkpoint is written every this many records of a tenant
CHECKPOINT_EVERY = 100
#: ``prev_hash`` of a tenant's first record
GENESIS = "0" * 64
#: the keyring purpose of the checkpoint key
CHECKPOINT_KEY = "audit-checkpoint"
#: the keyring purpose of the key that signs the chain head at every append
HEAD_KEY = "audit-head"
#: the record an append chains before its own when the head it continues is not signed
HEAD_UNVERIFIED = "audit.head_unverified"
#: the version of the canonical form; a new form would be a new number
FORMAT = 1

#: the record fields covered by ``hash``, as stored in ``audit_events``
CHAINED_FIELDS = (
    "tenant_id",
    "seq",
    "time",
    "type",
    "actor_id",
    "actor_name",
    "client_id",
    "source",
    "request_id",
    "outcome",
    "data",
)


def canonical(value: Any) -> bytes:
    """JSON with sorted keys, no whitespace and only ASCII: one byte string per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def record_hash(fields: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 (hex) of a record: ``fields`` holds at least :data:`CHAINED_FIELDS`.

    ``time`` is hashed as a float and ``data`` as the JSON it is stored as, so the hash of a
    record read back from either database equals the hash computed when it was written.
    """
    body = {
        "v": FORMAT,
        "tenant": fields["tenant_id"],
        "seq": int(fields["seq"]),
        "time": float(fields["time"]),
        "type": fields["type"],
        "actor_id": fields["actor_id"],
        "actor_name": fields["actor_name"],
        "client_id": fields["client_id"],
        "source": fields["source"],
        "request_id": fields["request_id"],
        "outcome": fields["outcome"],
        "data": fields["data"],
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical(body)).hexdigest()


def checkpoint_signature(keyring: Keyring, tenant_id: str, seq: int, hash_: str) -> str:
    """HMAC-SHA-256 (hex) of a checkpoint under the ``audit-checkpoint`` key."""
    message = canonical(["bastion-audit-checkpoint", FORMAT, tenant_id, int(seq), hash_])
    return hmac.new(keyring.key(CHECKPOINT_KEY), message, hashlib.sha256).hexdigest()


def checkpoint_valid(keyring: Keyring, tenant_id: str, seq: int, hash_: str, sig: str) -> bool:
    return hmac.compare_digest(checkpoint_signature(keyring, tenant_id, seq, hash_), sig)


def head_signature(keyring: Keyring, tenant_id: str, seq: int, hash_: str) -> str:
    """HMAC-SHA-256 (hex) of a chain head (or of a head exported as an anchor).

    Computed at every append, so the message is the canonical JSON of
    ``["bastion-audit-head", 1, tenant_id, seq, hash]`` written out directly rather than
    through :func:`canonical` (whose ``json.dumps`` would cost more than the HMAC).
    """
    message = f'["bastion-audit-head",{FORMAT},{json.dumps(tenant_id)},{int(seq)},"{hash_}"]'
    return hmac.digest(keyring.key(HEAD_KEY), message.encode(), "sha256").hex()


def head_valid(keyring: Keyring, tenant_id: str, seq: int, hash_: str, sig: str | None) -> bool:
    """A head is valid if signed with the key; an empty chain (seq 0) needs no signature."""
    if int(seq) == 0 and hash_ == GENESIS:
        return True
    return sig is not None and hmac.compare_digest(
        head_signature(keyring, tenant_id, seq, hash_), sig
    )


# -- configuration: one keyring per store -----------------------------------------------------


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str
    checkpoint_seq: int


@dataclass
class ChainState:
    """What appending needs besides the record: the checkpoint key, and a hint."""

    keyring: Keyring
    #: the head each tenant had after this process's last append. Only a hint: every append
    #: checks it against the row (compare-and-set), so a stale entry costs one more read.
    heads: dict[str, Head] = field(default_factory=dict)


#: the execution option of a store's connections that carries its :class:`ChainState`
_OPTION = "bastion_audit_chain"


def configure(store: Store, keyring: Keyring) -> None:
    """Sign ``store``'s checkpoints and heads with ``keyring`` (``ServerContext.open`` calls
    it). The state rides on the store's connections as an execution option, so every
    transaction of that store finds it and nothing is kept at module level: one process may
    hold several stores with different master keys (the test suite holds one per backend).
    """
    # In place: an ``execution_options()`` copy of the engine would dispatch every event of
    # every statement through a joined listener chain, a tenth of a token grant's CPU.
    store.engine.update_execution_options(**{_OPTION: ChainState(keyring)})


def _state(conn: Connection) -> ChainState:
    state = conn.get_execution_options().get(_OPTION)
    if not isinstance(state, ChainState):
        raise RuntimeError(
            "the audit log has no checkpoint key for this database; call "
            "bastion.audit.chain.configure(store, keyring) first (ServerContext.open does)"
        )
    return state


# -- appending --------------------------------------------------------------------------------

_LOCK_HEAD = (
    select(
        audit_heads.c.seq,
        audit_heads.c.hash,
        audit_heads.c.checkpoint_seq,
        audit_heads.c.signature,
    )
    .where(audit_heads.c.tenant_id == bindparam("tenant"))
    .with_for_update()
)

# Compare-and-set: moves the head only if it is still what this process last saw. On
# PostgreSQL the UPDATE takes the row lock; a concurrent appender's UPDATE waits for it and
# then finds the row changed (0 rows), so it re-reads the head under the lock.
_ADVANCE_HEAD = (
    update(audit_heads)
    .where(
        audit_heads.c.tenant_id == bindparam("tenant"),
        audit_heads.c.seq == bindparam("old_seq"),
        audit_heads.c.hash == bindparam("old_hash"),
        audit_heads.c.checkpoint_seq == bindparam("old_checkpoint"),
    )
    .values(
        seq=bindparam("new_seq"),
        hash=bindparam("new_hash"),
        checkpoint_seq=bindparam("new_checkpoint"),
        signature=bindparam("new_signature"),
    )
)

# SQLite: every command's record runs both, so they go through the driver (``Prepared``).
_ADVANCE_HEAD_BY_DRIVER = Prepared(_ADVANCE_HEAD)
_INSERT_EVENT = Prepared(
    insert(audit_events).values(
        {c.name: bindparam(f"ev_{c.name}", type_=c.type) for c in audit_events.c if c.name != "id"}
    ),
    json_parameters=frozenset({"ev_data"}),
)

# PostgreSQL: both in one statement, one round trip. The INSERT selects from the UPDATE's
# RETURNING, so it adds the record only if the head moved.
_MOVED = _ADVANCE_HEAD.returning(audit_heads.c.seq).cte("moved")
_EVENT_COLUMNS = [c for c in audit_events.c if c.name != "id"]
_ADVANCE_AND_INSERT = (
    insert(audit_events)
    .from_select(
        [c.name for c in _EVENT_COLUMNS],
        select(*(bindparam(f"ev_{c.name}", type_=c.type) for c in _EVENT_COLUMNS)).select_from(
            _MOVED
        ),
    )
    .add_cte(_MOVED, nest_here=True)
    # SQLAlchemy keeps the rowcount of UPDATE and DELETE only, unless asked
    .execution_options(preserve_rowcount=True)
)

_NEW_HEAD = {
    "postgresql": postgresql.insert(audit_heads).on_conflict_do_nothing(
        index_elements=[audit_heads.c.tenant_id]
    ),
    "sqlite": sqlite.insert(audit_heads).on_conflict_do_nothing(
        index_elements=[audit_heads.c.tenant_id]
    ),
}

# A checkpoint row already at that seq (left behind by a truncation) is kept as evidence for
# verify; the insert does nothing rather than failing the caller's transaction.
_NEW_CHECKPOINT = {
    "postgresql": postgresql.insert(audit_checkpoints).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(audit_checkpoints).on_conflict_do_nothing(),
}


def _lock_head(conn: Connection, tenant_id: str) -> tuple[Head, str | None]:
    """The tenant's head and its signature, locked until the transaction ends; created on
    first use."""
    row = conn.execute(_LOCK_HEAD, {"tenant": tenant_id}).first()
    if row is None:
        # Two first appends may race: one insert wins, the other does nothing, and both
        # then lock the one row.
        conn.execute(_NEW_HEAD[conn.dialect.name], _head_from_chain(conn, tenant_id))
        row = conn.execute(_LOCK_HEAD, {"tenant": tenant_id}).one()
    return Head(int(row.seq), row.hash, int(row.checkpoint_seq)), row.signature


def _head_from_chain(conn: Connection, tenant_id: str) -> dict[str, Any]:
    """A new head row: empty for a new tenant, else the end of the chain as it stands.

    The head only repeats what the chain holds, so a head row that was deleted is rebuilt
    rather than restarting at seq 1 (which the unique ``(tenant_id, seq)`` would refuse,
    stopping every sign-in of the tenant). Verify still reports a missing head until then.
    """
    last = conn.execute(
        select(audit_events.c.seq, audit_events.c.hash)
        .where(audit_events.c.tenant_id == tenant_id)
        .order_by(audit_events.c.seq.desc())
        .limit(1)
    ).first()
    if last is None:
        return {
            "tenant_id": tenant_id,
            "seq": 0,
            "hash": GENESIS,
            "checkpoint_seq": 0,
            "signature": None,
        }
    checkpoint = conn.execute(
        select(func.max(audit_checkpoints.c.seq)).where(
            audit_checkpoints.c.tenant_id == tenant_id, audit_checkpoints.c.seq <= last.seq
        )
    ).scalar()
    return {
        "tenant_id": tenant_id,
        "seq": int(last.seq),
        "hash": last.hash,
        "checkpoint_seq": int(checkpoint or 0),
        # unsigned: the next append chains an audit.head_unverified record before its own
        "signature": None,
    }


def _advance_and_insert(conn: Connection, cas: dict[str, Any], event: dict[str, Any]) -> bool:
    """Move the head from ``old_*`` to ``new_*`` and insert ``event``; False if it had moved."""
    if conn.dialect.name == "postgresql":
        params = {**cas, **{f"ev_{name}": value for name, value in event.items()}}
        return conn.execute(_ADVANCE_AND_INSERT, params).rowcount == 1
    if _ADVANCE_HEAD_BY_DRIVER.count(conn, cas) != 1:
        return False
    _INSERT_EVENT.run(conn, {f"ev_{name}": value for name, value in event.items()})
    return True


def append(conn: Connection, fields: dict[str, Any]) -> int:
    """Add one record (``fields``: :data:`CHAINED_FIELDS` but ``seq``) to its tenant's chain.

    Runs in the caller's transaction, so the record commits or rolls back with the change it
    describes (L5). Returns the record's ``seq``.
    """
    state = _state(conn)
    tenant_id: str = fields["tenant_id"]
    hint = state.heads.get(tenant_id)
    # The head this process wrote last is trusted as it is: the compare-and-set moves it
    # only if the row still holds exactly that head.
    head = _try_append(conn, state, hint, fields) if hint is not None else None
    if head is None:
        locked, signature = _lock_head(conn, tenant_id)
        if not head_valid(state.keyring, tenant_id, locked.seq, locked.hash, signature):
            locked = _appended(conn, state, locked, _unverified(fields, locked, signature))
        head = _appended(conn, state, locked, fields)
    state.heads[tenant_id] = head
    return head.seq


def _unverified(fields: dict[str, Any], head: Head, signature: str | None) -> dict[str, Any]:
    """The record chained before an append that continues a head it cannot trust."""
    return {
        "tenant_id": fields["tenant_id"],
        "time": fields["time"],
        "type": HEAD_UNVERIFIED,
        "actor_id": None,
        "actor_name": None,
        "client_id": None,
        "source": fields.get("source"),
        "request_id": fields.get("request_id"),
        "outcome": "failure",
        "data": {
            "head_seq": head.seq,
            "head_hash": head.hash,
            "signature": "missing" if signature is None else "invalid",
        },
    }


def _appended(conn: Connection, state: ChainState, head: Head, fields: dict[str, Any]) -> Head:
    """Append after ``head``, which this transaction has locked."""
    moved = _try_append(conn, state, head, fields)
    if moved is None:
        raise RuntimeError("the audit chain head changed while it was locked")
    return moved


def _try_append(
    conn: Connection, state: ChainState, head: Head, fields: dict[str, Any]
) -> Head | None:
    """Append after ``head`` if the row still holds it (None if it moved); the new head is
    signed in the same UPDATE, and a checkpoint written when one is due."""
    tenant_id: str = fields["tenant_id"]
    seq = head.seq + 1
    row = {**fields, "seq": seq}
    digest = record_hash(row, head.hash)
    checkpoint = seq - head.checkpoint_seq >= CHECKPOINT_EVERY
    new_checkpoint = seq if checkpoint else head.checkpoint_seq
    cas = {
        "tenant": tenant_id,
        "old_seq": head.seq,
        "old_hash": head.hash,
        "old_checkpoint": head.checkpoint_seq,
        "new_seq": seq,
        "new_hash": digest,
        "new_checkpoint": new_checkpoint,
        "new_signature": head_signature(state.keyring, tenant_id, seq, digest),
    }
    if not _advance_and_insert(conn, cas, {**row, "prev_hash": head.hash, "hash": digest}):
        return None
    if checkpoint:
        conn.execute(
            _NEW_CHECKPOINT[conn.dialect.name],
            {
                "tenant_id": tenant_id,
                "seq": seq,
                "hash": digest,
                "signature": checkpoint_signature(state.keyring, tenant_id, seq, digest),
                "created_at": float(fields["time"]),
            },
        )
    return Head(seq, digest, new_checkpoint)
