"""The audit chain on a bare store, on SQLite and PostgreSQL: concurrent appends, rollbacks,
an unconfigured engine, and the upgrade that chains records written before it (0002)."""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import JSON, column, delete, insert, select, table

from bastion.audit import chain, events
from bastion.audit.verify import snapshot, verify
from bastion.core.secrets_at_rest import Keyring
from bastion.store.engine import MIGRATIONS_DIR, Store, make_engine, open_store
from bastion.store.schema import audit_checkpoints, audit_events, audit_heads, tenants
from tests.support.server import create_postgres_database

KEYRING = Keyring(os.urandom(32))

OLD_EVENTS = table(
    "audit_events",
    *(
        column(name)
        for name in ("tenant_id", "time", "type", "actor_id", "actor_name", "client_id")
    ),
    *(column(name) for name in ("source", "request_id", "outcome")),
    column("data", JSON),
)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> str:
    if backend == "postgresql":
        return create_postgres_database()
    return f"sqlite:///{tmp_path / 'bastion.db'}"


def open_configured(url: str) -> Store:
    store = open_store(url, keyring=KEYRING)  # the upgrade to 0011 signs existing heads
    chain.configure(store, KEYRING)
    return store


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = open_configured(database_url)
    yield store
    store.dispose()


def add_tenant(store: Store, tenant_id: str) -> str:
    with store.begin() as conn:
        conn.execute(
            insert(tenants).values(
                id=tenant_id, name=tenant_id, display_name=tenant_id, policy={}, created_at=0.0
            )
        )
    return tenant_id


def seqs(store: Store, tenant_id: str) -> list[int]:
    with store.begin() as conn:
        return list(
            conn.execute(
                select(audit_events.c.seq)
                .where(audit_events.c.tenant_id == tenant_id)
                .order_by(audit_events.c.id)
            ).scalars()
        )


def check(store: Store, tenant_id: str, records: int) -> None:
    with snapshot(store) as conn:
        report = verify(conn, KEYRING, tenant_id)
    assert report.ok, report.problem
    assert report.records == records
    assert report.checkpoints == records // chain.CHECKPOINT_EVERY


def test_concurrent_transactions_append_in_order(store: Store, database_url: str) -> None:
    """Two threads on one store and one on a second store (another process's view, with
    its own cached head) append while holding their transactions open; some roll back."""
    tenant = add_tenant(store, "t-concurrent")
    other = open_configured(database_url)
    per_thread = 60
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def work(target: Store, name: str) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                try:
                    with target.begin() as conn:
                        events.record(
                            conn,
                            tenant_id=tenant,
                            type="test.concurrent",
                            outcome="success",
                            now=time.time(),
                            thread=name,
                            i=i,
                        )
                        if i % 3 == 0:  # two records in one transaction
                            events.record(
                                conn,
                                tenant_id=tenant,
                                type="test.concurrent",
                                outcome="success",
                                now=time.time(),
                                thread=name,
                                i=i,
                                second=True,
                            )
                        time.sleep(0.001)  # hold the head while the others wait
                        if i % 10 == 9:
                            raise KeyError("roll back")
                except KeyError:
                    pass
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(s, n))
        for s, n in ((store, "a"), (store, "b"), (other, "c"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.dispose()
    assert not errors, errors

    committed = 3 * sum((2 if i % 3 == 0 else 1) for i in range(per_thread) if i % 10 != 9)
    got = seqs(store, tenant)
    assert sorted(got) == list(range(1, committed + 1))
    assert got == sorted(got)  # ids follow seq: appends were serialized
    check(store, tenant, committed)


def test_an_engine_without_a_key_refuses_to_record(database_url: str) -> None:
    store = open_store(database_url)
    try:
        tenant = add_tenant(store, "t-nokey")
        with pytest.raises(RuntimeError, match="no checkpoint key"), store.begin() as conn:
            events.record(conn, tenant_id=tenant, type="x", outcome="success", now=1.0)
        assert seqs(store, tenant) == []
    finally:
        store.dispose()


def test_records_written_before_the_upgrade_are_chained(database_url: str) -> None:
    """Records from schema 0001 get seq, prev_hash and hash from migration 0002, which
    computes them with its own frozen copy of the format: verify recomputes them with
    bastion.audit.chain and must agree."""
    engine = make_engine(database_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with engine.begin() as conn:
        for tenant in ("t-old-a", "t-old-b"):
            conn.execute(
                insert(tenants).values(
                    id=tenant, name=tenant, display_name="x", policy={}, created_at=0.0
                )
            )
        # 0001's audit_events, without the chain columns
        conn.execute(
            insert(OLD_EVENTS),
            [
                {
                    "tenant_id": "t-old-a" if i % 5 else "t-old-b",
                    "time": 1_700_000_000 + i / 3,
                    "type": "sign_in.success",
                    "actor_id": "u1",
                    "actor_name": "ann@x",
                    "client_id": None,
                    "source": "127.0.0.1",
                    "request_id": "req",
                    "outcome": "success",
                    "data": {"i": i, "amr": ["pwd"], "x": 0.1, "name": "café"},
                }
                for i in range(260)
            ],
        )
    engine.dispose()

    store = open_configured(database_url)  # upgrades to head
    try:
        with store.begin() as conn:
            heads = {
                r.tenant_id: (r.seq, r.checkpoint_seq)
                for r in conn.execute(select(audit_heads)).all()
            }
        assert heads == {"t-old-a": (208, 0), "t-old-b": (52, 0)}
        # no checkpoint could be signed by the migration: 52 records are fine, 208 are not
        check(store, "t-old-b", 52)
        with snapshot(store) as conn:
            report = verify(conn, KEYRING, "t-old-a")
        assert report.problem is not None and report.problem.kind == "truncated"
        assert "no signed checkpoint covers seq 1 to 208" in report.problem.description
        # the first record after the upgrade signs a checkpoint over all of them
        with store.begin() as conn:
            events.record(conn, tenant_id="t-old-a", type="x", outcome="success", now=2e9)
            cps = conn.execute(select(audit_checkpoints.c.seq)).scalars().all()
        assert cps == [209]
        with snapshot(store) as conn:
            report = verify(conn, KEYRING, "t-old-a")
        assert report.ok and report.records == 209 and report.checkpoints == 1
    finally:
        store.dispose()


def test_the_migration_hashes_as_the_chain_does() -> None:
    migration = importlib.import_module("bastion.store.migrations.versions.0002_audit_chain")

    class Row:
        tenant_id = "t"
        time = 1.5
        type = "a"
        actor_id = None
        actor_name = "n\\u000a"
        client_id = "c"
        source = None
        request_id = "r"
        outcome = "success"
        data = {"b": [1, 2.5, None], "a": "é", "z": {"y": True}}

    fields = {name: getattr(Row, name) for name in chain.CHAINED_FIELDS if name != "seq"}
    assert migration._record_hash(Row, 7, "ab" * 32) == chain.record_hash(
        {**fields, "seq": 7}, "ab" * 32
    )


def test_the_migration_signs_heads_as_the_chain_does() -> None:
    migration = importlib.import_module(
        "bastion.store.migrations.versions.0011_audit_head_signature"
    )
    signed = migration._signature(KEYRING.key(chain.HEAD_KEY), "t", 7, "ab" * 32)
    assert signed == chain.head_signature(KEYRING, "t", 7, "ab" * 32)
    assert chain.head_valid(KEYRING, "t", 7, "ab" * 32, signed)
    assert not chain.head_valid(KEYRING, "t", 8, "ab" * 32, signed)
    assert chain.head_valid(KEYRING, "t", 0, chain.GENESIS, None)  # an empty chain


def test_a_deleted_head_is_reported_then_rebuilt_from_the_chain(store: Store) -> None:
    tenant = add_tenant(store, "t-head")

    def write(count: int) -> None:
        with store.begin() as conn:
            for i in range(count):
                events.record(conn, tenant_id=tenant, type="x", outcome="success", now=1.0, i=i)

    write(150)
    with store.begin() as conn:
        conn.execute(delete(audit_heads).where(audit_heads.c.tenant_id == tenant))
    with snapshot(store) as conn:
        report = verify(conn, KEYRING, tenant)
    assert report.problem is not None and report.problem.kind == "head"
    # The next append rebuilds the head from the chain and continues it, but first chains a
    # record saying the head it found was unsigned: verify reports it from then on.
    write(60)
    assert seqs(store, tenant) == list(range(1, 212))
    with snapshot(store) as conn:
        report = verify(conn, KEYRING, tenant)
    assert report.problem is not None and report.problem.kind == "head"
    assert report.problem.seq == 151
    assert "(seq 150) had no signature" in report.problem.description
