"""Appending audit records for sign-in and security events.

Each record is structured (JSON in ``data``), so a value a user typed, with CR, LF or any
control character, can never split or forge a record. Secrets never appear: tokens and
codes only as keyed hashes. The request context (request id, source address, user agent)
is set once per request by the web layer and read here.

Every record joins its tenant's hash chain (``bastion.audit.chain``, L4) in the caller's
transaction: the record and the change it describes commit together or not at all (L5).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from bastion.audit import chain
from bastion.core.errors import StoreUnavailable
from bastion.core.text import escape_all, escape_control


@dataclass(frozen=True)
class RequestContext:
    request_id: str | None = None
    source: str | None = None
    user_agent: str | None = None


_NO_REQUEST = RequestContext()

current_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "bastion_request", default=None
)


def record(
    conn: Connection,
    *,
    tenant_id: str,
    type: str,
    outcome: str,
    now: float,
    actor_id: str | None = None,
    actor_name: str | None = None,
    client_id: str | None = None,
    context: RequestContext | None = None,
    **data: Any,
) -> None:
    """Append one record in ``conn``'s transaction. ``context`` is the request it belongs
    to; by default the one being served by this thread."""
    ctx = context or current_request.get() or _NO_REQUEST
    if ctx.user_agent:
        data.setdefault("user_agent", ctx.user_agent[:512])
    entry = {
        "tenant_id": tenant_id,
        # stored as a float; hashed as the value read back will be
        "time": float(now),
        "type": type,
        "actor_id": actor_id,
        "actor_name": escape_control(actor_name) if actor_name else None,
        "client_id": escape_control(client_id) if client_id else None,
        "source": ctx.source,
        "request_id": ctx.request_id,
        "outcome": outcome,
        "data": escape_all(data),
    }
    try:
        chain.append(conn, entry)
    except SQLAlchemyError as exc:
        # L5, fail closed: without its record, the action it describes must not happen.
        # The caller's transaction rolls back as this error leaves it.
        raise AuditUnavailable(
            "The audit log cannot be written, so nothing was changed.",
            hint="Try again later; an administrator should check the database.",
        ) from exc


class AuditUnavailable(StoreUnavailable):
    problem = "audit-unavailable"
    title = "Audit log unavailable"
