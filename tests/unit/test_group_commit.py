"""Group commit: many threads, each returns only once its own record is committed; a failed
batch fails every caller in it, and the next batch is written again."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bastion.audit.events import AuditUnavailable
from bastion.audit.verify import snapshot, verify
from bastion.core.config import Settings
from bastion.server.bootstrap import new_tenant
from bastion.server.context import ServerContext
from bastion.store.schema import audit_events


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[ServerContext]:
    opened = ServerContext.open(Settings(data_dir=tmp_path))
    yield opened
    opened.close()


def _count(auth: ServerContext, tenant_id: str) -> int:
    with auth.store.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(audit_events)
                .where(audit_events.c.tenant_id == tenant_id)
            ).scalar_one()
        )


def test_every_caller_returns_after_its_own_record_is_committed(auth: ServerContext) -> None:
    with auth.store.begin() as conn:
        tenant = new_tenant(auth, conn, name="gc", display_name="gc").id
    before = _count(auth, tenant)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(50):
                auth.audit_reads.record(
                    tenant_id=tenant, type="command", outcome="success", now=1.0, n=n, i=i
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert _count(auth, tenant) == before + 16 * 50
    with snapshot(auth.store) as conn:
        assert verify(conn, auth.keyring, tenant).ok


def test_a_batch_that_cannot_be_written_fails_its_callers_and_the_next_one_succeeds(
    auth: ServerContext,
) -> None:
    with auth.store.begin() as conn:
        tenant = new_tenant(auth, conn, name="gc", display_name="gc").id
        conn.execute(
            text(
                "CREATE TRIGGER block_audit BEFORE INSERT ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit storage unavailable'); END"
            )
        )
    with pytest.raises(AuditUnavailable):
        auth.audit_reads.record(tenant_id=tenant, type="command", outcome="success", now=1.0)
    with auth.store.begin() as conn:
        conn.execute(text("DROP TRIGGER block_audit"))
    before = _count(auth, tenant)
    auth.audit_reads.record(tenant_id=tenant, type="command", outcome="success", now=1.0)
    assert _count(auth, tenant) == before + 1
