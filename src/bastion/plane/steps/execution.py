"""Run and audit: the command, its audit record and its idempotency record commit in one
transaction; no audit record, no change (503). A read runs in its snapshot and its record
is committed with those of concurrent reads before it is answered (decision 0012).

A listing asked for one object by its identity that finds none is a 404; a write that
loses a race for the same object is a 409, unless it is a retry whose twin won."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from bastion.audit.events import current_request
from bastion.core.errors import Conflict, NotFound
from bastion.core.text import escape_control
from bastion.plane import idempotency
from bastion.plane import listings as paging
from bastion.plane.answers import Answer, json_bytes
from bastion.plane.call import Call
from bastion.plane.command_context import CommandContext
from bastion.plane.declare import CommandSpec

#: a listing page's audit record names at most this many of its objects
MAX_TARGETS = 100


def run_and_audit(call: Call) -> None:
    try:
        call.answer = _execute(call)
    except (IntegrityError, Conflict) as exc:
        # An identical request with the same Idempotency-Key may have won the race: this
        # one's change rolled back, either on a unique index or, when the winner committed
        # between this one's key check and its body's own check (READ COMMITTED), on the
        # body's "already exists". Answer with the winner's result.
        previous = _winners_answer(call)
        if previous is not None:
            call.answer = previous
            return
        if isinstance(exc, Conflict):
            raise
        raise Conflict(
            "another change to the same object happened at the same moment.",
            hint="Read the object again, then retry.",
        ) from exc


def _winners_answer(call: Call) -> Answer | None:
    if call.replay is None:
        return None
    with call.auth.store.begin() as conn:
        previous = call.replay.stored(conn, call.caller)
    return Answer.stored(previous) if previous is not None else None


def _execute(call: Call) -> Answer:
    """Run the command, its audit record and its idempotency record in one transaction."""
    replay, params = call.replay, call.params
    if call.snapshot is not None:
        answer = _run_body(call, call.snapshot)
        call.auth.audit_reads.record(
            **call.audit_fields(params, outcome="success", error=None, targets=answer.targets)
        )
        return answer
    with call.auth.store.begin() as conn:
        if replay is not None:
            previous = replay.stored(conn, call.caller)
            if previous is not None:
                call.audit(conn, params, outcome="replayed", error=None)
                return Answer.stored(previous)
        answer = _run_body(call, conn)
        call.audit(conn, params, outcome="success", error=None, targets=answer.targets)
        if replay is not None:
            idempotency.remember(
                conn,
                tenant_id=call.caller.tenant.id,
                subject=call.caller.subject,
                key=replay.key,
                command=replay.command,
                params_digest=replay.digest,
                response=json.loads(answer.content),
                now=call.now,
            )
    return answer


def _run_body(call: Call, conn: Connection) -> Answer:
    """The command itself, and its answer: one page for a listing."""
    spec = call.spec
    ctx_request = current_request.get()
    ctx = CommandContext(
        conn=conn,
        caller=call.caller,
        now=call.now,
        request_id=ctx_request.request_id if ctx_request else None,
        hasher=call.auth.hasher,
        scope=call.scope,
        roles=call.roles,
        prepared=call.prepared,
    )
    result = spec.func(ctx, **call.arguments)
    if spec.page is None:
        return Answer(
            b'{"result":' + spec.output.dump_json(result) + b"}",
            _ids(result if isinstance(result, list) else [result]),
        )
    page = paging.read_page(conn, result, call.after, call.page_size)
    if not page.items and call.after is None:
        _require_found(spec, call.arguments)
    next_cursor = (
        paging.encode_cursor(call.auth.keyring, _binding(call), page.last_key)
        if page.last_key is not None
        else None
    )
    # the first page also says how many objects the listing holds
    counted = call.count and call.after is None
    total = b',"total":' + json_bytes(paging.count(conn, result)) if counted else b""
    # One call serializes the whole page: per-item conversion was most of a page's cost.
    return Answer(
        b'{"items":'
        + spec.page.dump_json(page.items)
        + b',"next":'
        + json_bytes(next_cursor)
        + total
        + b"}",
        _ids(page.items[:MAX_TARGETS]),
    )


def _binding(call: Call) -> paging.CursorBinding:
    if call.binding is None:
        raise RuntimeError("the cursor's binding is not known yet: a step runs out of order.")
    return call.binding


def _require_found(spec: CommandSpec, arguments: dict[str, Any]) -> None:
    """A listing asked for one object by name (``Get-Mailbox -Identity alice``) that names
    nothing answers 404, as a command that gets one object does: an empty list would let a
    script take "no such mailbox" for success. Objects outside the caller's scope are not
    listed either, so they are not found in the same words (R2)."""
    name = spec.identifies
    value = arguments.get(name) if name is not None else None
    if value is None:
        return
    fields = spec.parameters.model_fields
    others = [k for k, v in arguments.items() if k != name and v != fields[k].default]
    shown = escape_control(str(value))
    raise NotFound(
        f"no {spec.noun} '{shown}' in this tenant"
        + (f" matches {', '.join(others)}." if others else "."),
        hint=f"{spec.name} without {name} lists them.",
        parameter=name,
    )


def _ids(objects: list[Any]) -> list[str]:
    """The ids of the objects a command answered with (read, created, changed or removed);
    a listing page names at most ``MAX_TARGETS`` of its objects."""
    found = []
    for item in objects[:MAX_TARGETS]:
        value = item.get("id") if isinstance(item, dict) else getattr(item, "id", None)
        if isinstance(value, str):
            found.append(value)
    return found
