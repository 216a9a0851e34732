"""Group commit: units of work from concurrent threads share one transaction and one fsync.

On SQLite with ``synchronous=FULL`` every commit is an fsync, and writers take turns on one
lock, so one transaction per request caps writes at the disk's sync rate and queues every
writer behind the one syncing. PostgreSQL solves the same problem in its WAL by letting
one flush cover every commit that arrived meanwhile; this does it one level up:

- a caller queues a unit of work (a function of a connection) and waits for its future:
  a thread with :meth:`GroupCommit.run`, a coroutine with :meth:`GroupCommit.arun` (which
  keeps the event loop free and spares the request a worker thread of its own);
- a writer thread opens a transaction, takes every queued unit (those queued while it
  waited for the write lock too), runs each in a savepoint of its own, commits once, then
  settles each unit's future with its result or error. One writer thread per process: on
  SQLite there is one write lock anyway; on PostgreSQL, more processes (``--workers``)
  overlap their batches' round trips better than more writers in one process do (two
  processes with one writer each did 1,067 refresh grants/s, with two writers 831, with
  four 715; ``docs/performance.md``);
- so a caller gets its answer only once its unit's changes are durable; units queued while
  a batch is being written form the next one.

A unit that raises is rolled back to its savepoint, alone: the others in the batch are
unaffected (a :class:`~bastion.core.errors.BastionError` marked ``keep_changes`` keeps its
changes, as :meth:`Store.begin` does). If the batch's transaction itself fails, every unit
in it reports :class:`~bastion.core.errors.StoreUnavailable` (or its own error).

Units run one after another on one connection, in queue order, each seeing the changes of
the units before it: two presentations of one refresh token in one batch are two
presentations in sequence, exactly as without batching. A unit runs in the context (the
``contextvars``) of the thread that queued it, so what it records is attributed to its own
request, not to the writer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from bastion.core.errors import BastionError, StoreUnavailable
from bastion.store.engine import Store

T = TypeVar("T")

#: the most units in one transaction; a longer queue is written in several
MAX_BATCH = 256
#: the name of each unit's savepoint (one at a time on a connection, so one name)
_SAVEPOINT = "bastion_unit"


@dataclass
class _Unit(Generic[T]):
    work: Callable[[Connection], T]
    context: contextvars.Context
    #: a thread's unit (:meth:`GroupCommit.run`) is settled through this future
    future: Future[T] = field(default_factory=Future)
    #: a coroutine's unit (:meth:`GroupCommit.arun`) through this one, on its event loop
    waiter: asyncio.Future[T] | None = None
    result: T | None = None
    error: BaseException | None = None


@dataclass
class GroupCommit:
    """One writer queue per store: every unit of work given to :meth:`run` or :meth:`arun`
    is committed in a transaction shared with the units queued at the same moment."""

    store: Store
    max_batch: int = MAX_BATCH
    #: transactions written and units run, for tests and benchmarks
    batches: int = 0
    units: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _queued: threading.Condition = field(init=False)
    _queue: list[_Unit[Any]] = field(default_factory=list)
    _writer: threading.Thread | None = None
    _closed: bool = False

    def __post_init__(self) -> None:
        self._queued = threading.Condition(self._lock)

    def submit(self, work: Callable[[Connection], T]) -> Future[T]:
        """Queue ``work(conn)``; its future is settled once the batch it joined is committed
        (with its result) or lost (with the error)."""
        return self._queue_unit(_Unit(work, contextvars.copy_context())).future

    def _queue_unit(self, unit: _Unit[T]) -> _Unit[T]:
        if threading.current_thread() is self._writer:
            raise RuntimeError("a unit of work cannot wait for another: it would wait forever")
        with self._queued:
            if self._closed:
                raise StoreUnavailable("The server is stopping.", hint="Try again in a moment.")
            self._queue.append(unit)
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._serve, name="bastion-group-commit", daemon=True
                )
                self._writer.start()
            self._queued.notify()
        return unit

    def run(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in a shared transaction; its result once committed, or its error."""
        return self.submit(work).result()

    async def arun(self, work: Callable[[Connection], T]) -> T:
        """:meth:`run` for a coroutine: the event loop serves others meanwhile. The units of
        one loop in a batch are settled by one call into the loop, not one each (each call
        from another thread wakes the loop through a pipe)."""
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue_unit(_Unit(work, contextvars.copy_context(), waiter=waiter))
        return await waiter

    @property
    def waiting(self) -> int:
        """Units queued and not yet taken into a batch."""
        with self._lock:
            return len(self._queue)

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._queued:
            self._closed = True
            self._queued.notify()
            writer = self._writer
        if writer is not None:
            writer.join()

    def _serve(self) -> None:
        while True:
            with self._queued:
                while not self._queue and not self._closed:
                    self._queued.wait()
                if not self._queue:
                    return
            self._write_next()

    def _take(self) -> list[_Unit[Any]]:
        """The next batch; a unit whose caller gave up waiting (a request cancelled when its
        client went away) is dropped before it runs, and cannot be cancelled once taken."""
        with self._lock:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
        return [unit for unit in batch if _still_awaited(unit)]

    def _write_next(self) -> None:
        """One batch: the units queued once the transaction holds the write lock, so that
        every unit that arrived while the lock was awaited joins it."""
        batch: list[_Unit[Any]] = []
        failure: BaseException | None = None
        try:
            with self.store.begin() as conn:
                batch = self._take()
                for unit in batch:
                    _run_in_savepoint(conn, unit)
        except BaseException as exc:  # the transaction is lost: no unit's changes survive
            failure = exc
            batch = batch or self._take()
        self.batches += 1
        self.units += len(batch)
        awaited: dict[asyncio.AbstractEventLoop, list[_Unit[Any]]] = {}
        for unit in batch:
            if failure is not None and (unit.error is None or _kept(unit.error)):
                unit.error = _lost(failure)
            if unit.waiter is not None:
                awaited.setdefault(unit.waiter.get_loop(), []).append(unit)
            elif unit.error is not None:
                unit.future.set_exception(unit.error)
            else:
                unit.future.set_result(unit.result)
        for loop, units in awaited.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, units)


def _still_awaited(unit: _Unit[Any]) -> bool:
    """Whether the unit's caller still waits; once taken, a thread's unit can no longer be
    cancelled. A coroutine cancelled meanwhile (its client went away) drops its unit."""
    if unit.waiter is not None:
        return not unit.waiter.cancelled()
    return unit.future.set_running_or_notify_cancel()


def _settle(units: list[_Unit[Any]]) -> None:
    """On the units' event loop: each waiting coroutine gets its result or error."""
    for unit in units:
        if unit.waiter is None or unit.waiter.done():  # cancelled while the batch ran
            continue
        if unit.error is not None:
            unit.waiter.set_exception(unit.error)
        else:
            unit.waiter.set_result(unit.result)


def _run_in_savepoint(conn: Connection, unit: _Unit[Any]) -> None:
    # The savepoint is the driver's own statement: through SQLAlchemy's nested transaction
    # it costs some 50 microseconds, a twentieth of a whole token grant, for two statements
    # that take 2. SQLAlchemy's transaction is unaffected: a savepoint neither begins nor
    # ends it, and both SQLite and PostgreSQL accept this syntax.
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        unit.result = unit.context.run(unit.work, conn)
    except BastionError as exc:
        unit.error = exc
        if not exc.keep_changes:
            driver.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    except Exception as exc:  # the unit's own failure; the batch goes on
        unit.error = exc
        driver.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
    driver.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")


def _kept(error: BaseException | None) -> bool:
    """A refusal whose changes were to be kept (a revocation, a counted failure): if the
    batch is lost, so are they, and the caller must not believe otherwise."""
    return isinstance(error, BastionError) and error.keep_changes


def _lost(failure: BaseException) -> BaseException:
    if isinstance(failure, StoreUnavailable):
        return failure
    error = StoreUnavailable("The database is unavailable.", hint="Try again in a moment.")
    error.__cause__ = failure
    return error
