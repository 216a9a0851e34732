"""Checking a tenant's audit chain: ``bastion audit verify`` (L4).

:func:`verify` walks the chain in ``seq`` order, a batch at a time (never the whole table in
memory), and stops at the first problem, naming the record and what is wrong with it:

- an edited record: its content no longer gives its ``hash``;
- a deleted record: a gap in ``seq``;
- an inserted record: a ``seq`` twice, two records claiming the same predecessor, a record
  beyond the head, or a record outside the chain;
- a reordering: a ``prev_hash`` that does not link to the record before;
- truncation: the head, a checkpoint or the caller's anchor names a ``seq`` the chain no
  longer reaches, or more than ``CHECKPOINT_EVERY`` records follow the last checkpoint;
- a forged or altered checkpoint: a bad signature, or a hash the chain does not have there;
- a changed end of the chain: the head's signature (renewed at every append) does not
  verify, or an ``audit.head_unverified`` record says an append found it so.

What it cannot see, inside the database alone: someone who restores an older copy of the
database, or cuts the chain back to an older head together with that head's signature,
copied when it was current. An ``anchor`` (a head exported earlier and kept elsewhere) shows
both; docs/decisions/0008-audit-chain.md says more.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, create_engine, event, func, or_, select
from sqlalchemy.pool import NullPool

from bastion.audit.chain import (
    CHECKPOINT_EVERY,
    GENESIS,
    HEAD_UNVERIFIED,
    checkpoint_valid,
    head_valid,
    record_hash,
)
from bastion.core.secrets_at_rest import Keyring
from bastion.store.engine import Store, is_sqlite
from bastion.store.schema import audit_checkpoints, audit_events, audit_heads

BATCH = 1000


@dataclass(frozen=True)
class Problem:
    #: edited | deleted | inserted | reordered | truncated | checkpoint | head
    kind: str
    #: the ``seq`` the problem is at (the first missing one for a deletion)
    seq: int | None
    #: the ``audit_events.id`` of the record named, if there is one
    record_id: int | None
    description: str

    def __str__(self) -> str:
        where = []
        if self.seq is not None:
            where.append(f"seq {self.seq}")
        if self.record_id is not None:
            where.append(f"record id {self.record_id}")
        return f"{', '.join(where)}: {self.description}" if where else self.description


@dataclass(frozen=True)
class VerifyReport:
    tenant_id: str
    #: records walked (up to the problem, if any)
    records: int
    #: checkpoints whose signature and hash were checked
    checkpoints: int
    #: ``seq`` and ``hash`` of the last record walked: an anchor for a later verify
    last_seq: int
    last_hash: str
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Walk:
    """The state of one verification, so each check reads as one step."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.records = 0
        self.checkpoints = 0
        self.last_seq = 0
        self.last_hash = GENESIS

    def report(self, problem: Problem | None = None) -> VerifyReport:
        return VerifyReport(
            self.tenant_id, self.records, self.checkpoints, self.last_seq, self.last_hash, problem
        )


def _checkpoints(conn: Connection, tenant_id: str) -> Iterator[Any]:
    """The tenant's checkpoints in ``seq`` order, in keyset batches."""
    after: int | None = None
    while True:
        query = (
            select(audit_checkpoints)
            .where(audit_checkpoints.c.tenant_id == tenant_id)
            .order_by(audit_checkpoints.c.seq)
            .limit(BATCH)
        )
        if after is not None:
            query = query.where(audit_checkpoints.c.seq > after)
        rows = conn.execute(query).all()
        yield from rows
        if len(rows) < BATCH:
            return
        after = int(rows[-1].seq)


def verify(
    conn: Connection,
    keyring: Keyring,
    tenant_id: str,
    *,
    anchor: tuple[int, str] | None = None,
) -> VerifyReport:
    """Check the tenant's chain, checkpoints and head; the report names the first problem.

    Run it in one transaction (a snapshot, see :func:`snapshot`) so appends made meanwhile
    do not look like tampering. ``anchor`` is a ``(seq, hash)`` from an earlier report: the
    chain must still hold that record.
    """
    walk = _Walk(tenant_id)
    ev = audit_events.c

    outside = conn.execute(
        select(func.min(ev.id)).where(
            ev.tenant_id == tenant_id,
            or_(ev.seq.is_(None), ev.prev_hash.is_(None), ev.hash.is_(None)),
        )
    ).scalar()
    if outside is not None:
        return walk.report(
            Problem("inserted", None, int(outside), "the record has no place in the chain")
        )

    head = conn.execute(select(audit_heads).where(audit_heads.c.tenant_id == tenant_id)).first()
    checkpoints = _checkpoints(conn, tenant_id)
    rows = conn.execute(
        select(audit_events)
        .where(ev.tenant_id == tenant_id)
        .order_by(ev.seq, ev.id)
        .execution_options(yield_per=BATCH)
    )
    try:
        return _walk_rows(walk, rows, head, checkpoints, keyring, anchor)
    finally:
        rows.close()


def _walk_rows(
    walk: _Walk,
    rows: Any,
    head: Any,
    checkpoints: Iterator[Any],
    keyring: Keyring,
    anchor: tuple[int, str] | None,
) -> VerifyReport:
    tenant_id = walk.tenant_id
    pending = next(checkpoints, None)
    latest_checkpoint = 0

    def check_checkpoint(cp: Any, record: Any | None) -> Problem | None:
        seq = int(cp.seq)
        if not checkpoint_valid(keyring, tenant_id, seq, cp.hash, cp.signature):
            return Problem(
                "checkpoint",
                seq,
                None,
                "the checkpoint's signature is not valid: it was forged or altered",
            )
        if record is None:
            return Problem(
                "truncated",
                seq,
                None,
                f"a signed checkpoint names seq {seq}, but the chain ends at seq "
                f"{walk.last_seq}: records after it were deleted",
            )
        if cp.hash != record.hash:
            return Problem(
                "checkpoint",
                seq,
                int(record.id),
                "the record's hash differs from the one its signed checkpoint holds: this "
                "record or records before it were rewritten",
            )
        return None

    prev: Any | None = None
    for row in rows:
        seq = int(row.seq)
        expected = walk.last_seq + 1
        if seq < expected:
            assert prev is not None
            return walk.report(
                Problem(
                    "inserted",
                    seq,
                    int(row.id),
                    f"seq {seq} appears twice (record ids {prev.id} and {row.id}): "
                    "a record was inserted",
                )
            )
        if seq > expected:
            missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected} to {seq - 1}"
            return walk.report(
                Problem(
                    "deleted",
                    expected,
                    None,
                    f"{missing} missing: the chain jumps from seq {walk.last_seq} to seq {seq} "
                    f"(record id {row.id}); records were deleted",
                )
            )
        if head is None:
            return walk.report(
                Problem(
                    "head",
                    None,
                    None,
                    "the tenant has audit records but no chain head: it was deleted",
                )
            )
        if seq > int(head.seq):
            return walk.report(
                Problem(
                    "inserted",
                    seq,
                    int(row.id),
                    f"the record lies beyond the end of the chain (the head is at seq "
                    f"{head.seq}): it was added outside Bastion, or the head was moved back",
                )
            )
        if row.prev_hash != walk.last_hash:
            if prev is not None and row.prev_hash == prev.prev_hash:
                text = (
                    f"records seq {seq - 1} (id {prev.id}) and seq {seq} (id {row.id}) both "
                    f"follow seq {seq - 2}: one of them was inserted"
                )
                kind = "inserted"
            else:
                text = (
                    f"the record does not link to seq {walk.last_seq}: records were reordered, "
                    "or one before it was replaced"
                )
                kind = "reordered"
            return walk.report(Problem(kind, seq, int(row.id), text))
        if record_hash(row._mapping, row.prev_hash) != row.hash:
            return walk.report(
                Problem(
                    "edited",
                    seq,
                    int(row.id),
                    "the record was edited: its content does not give its hash",
                )
            )
        while pending is not None and int(pending.seq) <= seq:
            problem = check_checkpoint(pending, row if int(pending.seq) == seq else None)
            if problem is not None:
                return walk.report(problem)
            walk.checkpoints += 1
            latest_checkpoint = int(pending.seq)
            pending = next(checkpoints, None)
        if row.type == HEAD_UNVERIFIED:
            data = row.data if isinstance(row.data, dict) else {}
            return walk.report(
                Problem(
                    "head",
                    seq,
                    int(row.id),
                    f"when this record was appended, the head it continued (seq "
                    f"{data.get('head_seq')}) had "
                    f"{'no' if data.get('signature') == 'missing' else 'an invalid'} "
                    "signature: the end of the chain before it was changed outside Bastion",
                )
            )
        if anchor is not None and anchor[0] == seq and anchor[1] != row.hash:
            return walk.report(
                Problem(
                    "edited",
                    seq,
                    int(row.id),
                    "the record's hash differs from the anchor kept from an earlier verify: "
                    "the chain up to here was rewritten",
                )
            )
        walk.records += 1
        walk.last_seq = seq
        walk.last_hash = row.hash
        prev = row

    if pending is not None:
        return walk.report(check_checkpoint(pending, None))
    if head is not None and int(head.seq) != walk.last_seq:
        return walk.report(
            Problem(
                "truncated",
                walk.last_seq + 1,
                None,
                f"the head names seq {head.seq}, but the chain ends at seq {walk.last_seq}: "
                "the last records were deleted",
            )
        )
    if head is not None and head.hash != walk.last_hash:
        return walk.report(
            Problem(
                "head",
                walk.last_seq,
                prev.id if prev is not None else None,
                "the head's hash is not the last record's: the end of the chain was replaced",
            )
        )
    if anchor is not None and anchor[0] > walk.last_seq:
        return walk.report(
            Problem(
                "truncated",
                anchor[0],
                None,
                f"the anchor names seq {anchor[0]}, but the chain ends at seq {walk.last_seq}: "
                "the last records were deleted",
            )
        )
    if head is not None and not head_valid(
        keyring, tenant_id, int(head.seq), head.hash, head.signature
    ):
        state = "carries no signature" if head.signature is None else "has an invalid signature"
        return walk.report(
            Problem(
                "head",
                walk.last_seq,
                prev.id if prev is not None else None,
                f"the head (seq {head.seq}) {state}: the end of the chain was rewritten or cut "
                "outside Bastion (or the upgrade to schema 0011 ran without the master key)",
            )
        )
    if walk.last_seq - latest_checkpoint >= CHECKPOINT_EVERY:
        first = latest_checkpoint + 1
        return walk.report(
            Problem(
                "truncated",
                latest_checkpoint + CHECKPOINT_EVERY,
                None,
                f"no signed checkpoint covers seq {first} to {walk.last_seq} (one is written "
                f"every {CHECKPOINT_EVERY} records): checkpoints were deleted. (A chain built "
                "by the upgrade to schema 0002 gets its first one with its next record.)",
            )
        )
    return walk.report()


@contextmanager
def snapshot(store: Store) -> Iterator[Connection]:
    """A read-only transaction on one consistent state of the database, for :func:`verify`.

    ``Store.begin()`` would do, but on SQLite it takes the write lock (``BEGIN IMMEDIATE``)
    and would hold up every sign-in while a long chain is checked. This opens a separate,
    read-only SQLite connection with a plain (deferred) ``BEGIN``: in WAL mode, a reader
    sees one snapshot and blocks no writer. On PostgreSQL it is a ``REPEATABLE READ``,
    ``READ ONLY`` transaction.
    """
    if not is_sqlite(store.engine):
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                yield conn
        return
    engine = create_engine(
        store.engine.url, poolclass=NullPool, connect_args={"check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    finally:
        engine.dispose()
