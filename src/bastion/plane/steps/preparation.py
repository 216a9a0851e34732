"""What is checked and computed before the command's transaction begins: the listing's
cursor, the ``Idempotency-Key``, and slow work such as a password hash, so that no lock is
held while it runs. From here a refusal's record names the validated parameters."""

from __future__ import annotations

from bastion.plane import idempotency
from bastion.plane import listings as paging
from bastion.plane.answers import Replay
from bastion.plane.call import Call


def open_cursor(call: Call) -> None:
    """A listing's cursor is bound to the tenant, the caller, the command and its
    parameters, and signed (``bastion.plane.listings``). One that fails to check is refused
    (400) and recorded as a security event: cursors are only ever altered on purpose."""
    spec, caller = call.spec, call.caller
    call.known = call.params
    command = f"{spec.service}/{spec.name}"
    call.binding = paging.CursorBinding(caller.tenant.id, caller.subject, command, call.params)
    if not call.cursor:
        return
    try:
        call.after = paging.decode_cursor(call.auth.keyring, call.binding, call.cursor)
    except paging.BadCursor:
        call.audit_alone(
            call.params,
            outcome="denied",
            error="cursor_tampering",
            kind="security.cursor_tampering",
        )
        call.refusal_recorded = True
        raise


def check_idempotency_key(call: Call) -> None:
    """A write sent with an ``Idempotency-Key`` is answered once; a retry with the same key
    and parameters gets the first answer (``bastion.plane.idempotency``)."""
    spec, key = call.spec, call.incoming.idempotency_key
    if key is None or spec.reads_only:
        return
    call.replay = Replay(
        idempotency.check_key(key),
        f"{spec.service}/{spec.name}",
        idempotency.digest(call.params),
    )


def prepare(call: Call) -> None:
    """Slow preparation (a password hash) happens here, before any transaction holds a
    lock."""
    spec = call.spec
    if spec.prepare is not None:
        call.prepared = spec.prepare(call.auth.hasher, call.arguments)
