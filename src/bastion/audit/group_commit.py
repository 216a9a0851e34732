"""Group commit for the audit records of read commands.

A read changes nothing, so its audit record has no change to commit with; but it must be
committed before the answer leaves (a read whose record is lost did not happen, L5). Each
commit is an fsync, and one fsync per read would cap reads at the disk's sync rate. So the
records of reads served at the same moment are appended together, in one transaction:

- a thread with a record queues it; if no thread is writing, it becomes the writer,
  otherwise it waits;
- the writer takes every queued record (its own among them), appends them in one
  transaction, commits, wakes the threads whose records it wrote, and hands the writing to
  the first thread still waiting, whose record is in the next batch;
- so each thread writes at most one batch, and records queued while a batch is being
  written go in the next one.

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
    #: set when the record is committed (or lost), or when this thread is to write next
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    lead: bool = False
    error: BaseException | None = None


@dataclass
class GroupCommit:
    store: Store
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _queue: list[_Pending] = field(default_factory=list)
    _writing: bool = False

    def record(self, **fields: Any) -> None:
        """Like ``events.record``, in a transaction shared with concurrent callers; returns
        once the record is committed."""
        mine = _Pending(fields, current_request.get())
        with self._lock:
            self._queue.append(mine)
            mine.lead = not self._writing
            self._writing = True
        while not mine.done:
            if not mine.lead:
                mine.wake.wait()
                mine.wake.clear()
                continue
            # This thread writes the next batch (its own record is in it, as it waited in
            # line), then hands the writing to the first thread still waiting, if any.
            with self._lock:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self._write(batch)
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._writing = False
            mine.lead = False
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
                item.wake.set()
