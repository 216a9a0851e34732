"""The store's writer queue (``bastion.store.group_commit``): units of work queued together
commit in one transaction, each answer only after that commit, a unit's failure is its own,
and a lost transaction fails every unit in it."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from bastion.core.config import Settings
from bastion.core.errors import InvalidGrant, StoreUnavailable
from bastion.server.context import ServerContext
from bastion.store.group_commit import GroupCommit

request_name: contextvars.ContextVar[str] = contextvars.ContextVar("request_name", default="")


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[ServerContext]:
    opened = ServerContext.open(Settings(data_dir=tmp_path))
    with opened.store.begin() as conn:
        conn.execute(text("CREATE TABLE scratch (name TEXT PRIMARY KEY)"))
    yield opened
    opened.close()


def _names(auth: ServerContext) -> set[str]:
    with auth.store.read() as conn:
        return {row[0] for row in conn.execute(text("SELECT name FROM scratch"))}


def _insert(name: str) -> Callable[[Connection], str]:
    def work(conn: Connection) -> str:
        conn.execute(text("INSERT INTO scratch (name) VALUES (:n)"), {"n": name})
        return f"{name} done in {request_name.get()}"

    return work


def _queued_together(auth: ServerContext, works: list[Callable[[Connection], Any]]) -> list[Any]:
    """Run each unit from its own thread while the write lock is held elsewhere, release it
    once every unit is queued, and return each thread's result or exception."""
    writes: GroupCommit = auth.writes
    results: list[Any] = [None] * len(works)

    def call(i: int) -> None:
        request_name.set(f"request {i}")
        try:
            results[i] = writes.run(works[i])
        except BaseException as exc:  # reported to the test
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(works))]
    with auth.store.begin():
        for thread in threads:
            thread.start()
        for _ in range(10_000):
            if writes.waiting == len(works):
                break
            threading.Event().wait(0.001)
        assert writes.waiting == len(works)
    for thread in threads:
        thread.join()
    return results


def test_units_queued_together_commit_in_one_transaction(auth: ServerContext) -> None:
    before = auth.writes.batches
    results = _queued_together(auth, [_insert(f"n{i}") for i in range(12)])
    assert auth.writes.batches == before + 1
    # each unit ran in the context of the thread that queued it, not the writer's
    assert results == [f"n{i} done in request {i}" for i in range(12)]
    assert _names(auth) == {f"n{i}" for i in range(12)}


def test_a_failing_unit_is_rolled_back_alone(auth: ServerContext) -> None:
    def refused(conn: Connection) -> None:
        conn.execute(text("INSERT INTO scratch (name) VALUES ('refused')"))
        raise InvalidGrant("no")

    def crashed(conn: Connection) -> None:
        conn.execute(text("INSERT INTO scratch (name) VALUES ('crashed')"))
        raise RuntimeError("bug")

    results = _queued_together(auth, [_insert("a"), refused, crashed, _insert("b")])
    assert isinstance(results[1], InvalidGrant)
    assert isinstance(results[2], RuntimeError)
    assert _names(auth) == {"a", "b"}


def test_a_refusal_that_keeps_its_changes_keeps_them(auth: ServerContext) -> None:
    def revoked(conn: Connection) -> None:
        conn.execute(text("INSERT INTO scratch (name) VALUES ('revocation')"))
        raise InvalidGrant("reused", keep_changes=True)

    results = _queued_together(auth, [revoked, _insert("other")])
    assert isinstance(results[0], InvalidGrant)
    assert _names(auth) == {"revocation", "other"}


def test_a_lost_transaction_fails_every_unit_in_it(auth: ServerContext) -> None:
    def breaks_the_connection(conn: Connection) -> None:
        conn.invalidate()

    def kept_refusal(conn: Connection) -> None:
        conn.execute(text("INSERT INTO scratch (name) VALUES ('kept')"))
        raise InvalidGrant("reused", keep_changes=True)

    results = _queued_together(
        auth, [_insert("first"), kept_refusal, breaks_the_connection, _insert("after")]
    )
    # nothing of the batch was committed, and no caller is told otherwise
    assert all(isinstance(r, StoreUnavailable) for r in results), results
    assert _names(auth) == set()
    # the next unit has a transaction of its own and succeeds
    assert auth.writes.run(_insert("next")).startswith("next done")
    assert _names(auth) == {"next"}


def test_a_long_queue_is_written_in_batches_of_at_most_max_batch(auth: ServerContext) -> None:
    auth.writes.max_batch = 5
    before = auth.writes.batches
    results = _queued_together(auth, [_insert(f"m{i}") for i in range(12)])
    assert not [r for r in results if isinstance(r, BaseException)]
    assert auth.writes.batches == before + 3
    assert len(_names(auth)) == 12
