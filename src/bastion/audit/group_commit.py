"""Group commit for the audit records of read commands.

A read changes nothing, so its audit record has no change to commit with; but it must be
committed before the answer leaves (a read whose record is lost did not happen, L5). Each
commit is an fsync, and one fsync per read would cap reads at the disk's sync rate. So the
records of reads served at the same moment are appended together, in one transaction:

- a thread with a record queues it and waits;
- if no thread is writing, it becomes the writer: it takes every queued record, appends
  them in one transaction, commits, and wakes the threads whose records it wrote;
- records queued while a batch is being written go in the next batch.

A thread returns only after its record is committed, or raises the error that stopped the
batch (then every record of that batch is reported lost: the reads answer 503). Writes do
not use this: their record commits in their own transaction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from bastion.audit import events
from bastion.audit.events import AuditUnavailable, RequestContext, current_request
from bastion.store.engine import Store

#: the most records in one transaction; a longer queue is written in several
MAX_BATCH = 500


@dataclass
class _Pending:
    fields: dict[str, Any]
    context: RequestContext | None
    done: bool = False
    error: BaseException | None = None


@dataclass
class GroupCommit:
    store: Store
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _queue: list[_Pending] = field(default_factory=list)
    _writing: bool = False

    def record(self, **fields: Any) -> None:
        """Like ``events.record``, in a transaction shared with concurrent callers; returns
        once the record is committed."""
        mine = _Pending(fields, current_request.get())
        with self._lock:
            self._queue.append(mine)
            while not mine.done:
                if self._writing:
                    self._lock.wait()
                    continue
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                self._writing = True
                self._lock.release()
                try:
                    self._write(batch)
                finally:
                    self._lock.acquire()
                    self._writing = False
                    self._lock.notify_all()
        if mine.error is not None:
            raise AuditUnavailable(
                "The audit log cannot be written, so the answer is withheld.",
                hint="Try again later; an administrator should check the database.",
            ) from mine.error

    def _write(self, batch: list[_Pending]) -> None:
        failure: BaseException | None = RuntimeError("the batch was interrupted")
        try:
            with self.store.begin() as conn:
                for item in batch:
                    events.record(conn, context=item.context, **item.fields)
            failure = None
        except Exception as exc:  # every record of the batch is lost: tell each caller
            failure = exc
        finally:
            for item in batch:
                item.error = failure
                item.done = True
