"""Group commit for the audit records of read commands.

A read changes nothing, so its audit record has no change to commit with; but it must be
committed before the answer leaves (a read whose record is lost did not happen, L5). Each
commit is an fsync, and one fsync per read would cap reads at the disk's sync rate. So the
records of reads served at the same moment are appended together, in one transaction:

- a thread with a record queues it as a unit of work in the store's writer queue
  (:mod:`bastion.store.group_commit`), shared with the token endpoint's grants, and waits;
- the queue's writer thread appends every queued record in one transaction, commits, and
  then answers each waiting thread;
- records queued while a batch is being written go in the next one.

A thread returns only after its record is committed, or raises the error that stopped the
batch (then every record of that batch is reported lost: the reads answer 503). Writes do
not use this: their record commits in their own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.audit import events
from bastion.audit.events import AuditUnavailable
from bastion.store.group_commit import GroupCommit


@dataclass
class AuditReads:
    """Audit records of reads, appended through the store's writer queue."""

    writes: GroupCommit

    def record(self, **fields: Any) -> None:
        """Like ``events.record``, in a transaction shared with concurrent callers; returns
        once the record is committed."""
        try:
            self.writes.run(lambda conn: events.record(conn, **fields))
        except Exception as exc:
            raise AuditUnavailable(
                "The audit log cannot be written, so the answer is withheld.",
                hint="Try again later; an administrator should check the database.",
            ) from exc
