"""Reading a tenant's audit log straight from the server's store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bastion.store.schema import audit_events
from tests.support.flows import Org


def events_of(t: Org, kind: str) -> list[Any]:
    """The tenant's audit records of type ``kind``, oldest first."""
    with t.server.authority.store.begin() as conn:
        return list(
            conn.execute(
                select(audit_events)
                .where(audit_events.c.tenant_id == t.tenant.id, audit_events.c.type == kind)
                .order_by(audit_events.c.seq)
            ).all()
        )
