"""Around every command, in one place and in this order (never inside command bodies).

Each line of the table is one step in :data:`STEPS`; the order you read is the order they
run, and each takes the call's state (:class:`bastion.plane.call.Call`), adds what it
finds, or raises the error named here.

=========================  ===========================================================
find_command               404 problem details for an unknown name
check_media_type           415 for parameters sent as anything but JSON
open_snapshot              a read sees one snapshot from the token check to its last
                           row (docs/decisions/0012)
authenticate               bearer token, validated locally from the tenant's JWKS, and
                           its sign-in still standing (not ended by logout or an
                           administrator): 401 with ``WWW-Authenticate`` per RFC 6750,
                           recorded once per source and minute
require_two_factors        a role holder's token without a second factor: 401 with the
                           RFC 9470 challenge, before authorization (A8)
read_parameters            400 for a body that is not a JSON object, too large, too
                           deep, or holding unpaired surrogates
take_paging                400 for a listing's bad ``cursor``, ``page_size``, ``count``
authorize                  the caller's role groups must grant the command and the
                           names of the parameters sent: 403 (R1)
keep_to_scope              a scoped grant allows only a command that keeps to its
                           scope: 403
validate_parameters        400 problem details naming the parameter and what is allowed
step_up                    sensitive commands need a second factor younger than the
                           tenant's window: 401 with the RFC 9470 challenge
open_cursor                a cursor that fails its signature or binding: 400, recorded
                           as ``security.cursor_tampering``
check_idempotency_key      400 for a malformed ``Idempotency-Key``
prepare                    slow work (a password hash) before any lock is held
run_and_audit              the command, its audit record and its idempotency record
                           commit in one transaction; no audit record, no change (503);
                           a write retried with the same ``Idempotency-Key`` gets the
                           first answer; a listing asked for one object by its identity
                           that finds none is a 404
=========================  ===========================================================

L1: once the caller is known, every refusal and every failure leaves one audit record,
naming the parameters known when it was found (:func:`_record_refusal`); a crash is
recorded as ``internal-error``. Nothing is recorded when the store itself is unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bastion.authority.parts import Authority
from bastion.core.errors import BastionError, StoreUnavailable
from bastion.plane.answers import Answer
from bastion.plane.call import Call, Incoming
from bastion.plane.command_errors import CommandNotFound, Forbidden, StepUpRequired
from bastion.plane.declare import CommandSpec
from bastion.plane.roles import Roles
from bastion.plane.steps.assurance import require_two_factors, step_up
from bastion.plane.steps.authentication import authenticate
from bastion.plane.steps.execution import run_and_audit
from bastion.plane.steps.parameters import (
    check_media_type,
    read_parameters,
    take_paging,
    validate_parameters,
)
from bastion.plane.steps.permission import authorize, keep_to_scope
from bastion.plane.steps.preparation import check_idempotency_key, open_cursor, prepare

Step = Callable[[Call], None]


def find_command(call: Call) -> None:
    service, name = call.incoming.service, call.incoming.name
    spec = call.commands.get(service, {}).get(name)
    if spec is None:
        raise CommandNotFound(
            f"{service} has no command '{name}'.",
            hint=f"GET /api/{service}/commands lists them.",
        )
    call.found = spec


def open_snapshot(call: Call) -> None:
    """A read runs from its token check to its last row in one read-only transaction; a
    write checks its token in a read transaction of its own (``Call.reading``)."""
    if call.spec.reads_only:
        call.snapshot = call.closing.enter_context(call.auth.store.read())


STEPS: tuple[Step, ...] = (
    find_command,
    check_media_type,
    open_snapshot,
    authenticate,
    require_two_factors,
    read_parameters,
    take_paging,
    authorize,
    keep_to_scope,
    validate_parameters,
    step_up,
    open_cursor,
    check_idempotency_key,
    prepare,
    run_and_audit,
)


def run(
    auth: Authority,
    incoming: Incoming,
    commands: Mapping[str, Mapping[str, CommandSpec]],
    roles: Roles,
    *,
    started: float | None = None,
    steps: tuple[Step, ...] = STEPS,
) -> Answer:
    """Run ``incoming`` through ``steps``: the command's answer, or the first step's error."""
    call = Call.begin(auth, incoming, commands, roles, started=started)
    with call.closing:
        for step in steps:
            try:
                step(call)
            except BastionError as exc:
                _record_refusal(call, exc)
                raise
            except Exception:
                # A crash (500): its trace goes to the log (``on_crash``), its fact to the
                # audit log.
                if call.signed_in is not None:
                    call.audit_alone({}, outcome="failure", error="internal-error")
                raise
    if call.answer is None:
        raise RuntimeError("the pipeline ended without an answer.")
    return call.answer


def _record_refusal(call: Call, exc: BastionError) -> None:
    """L1: a refusal of a known caller, or a failure of its command (whose changes rolled
    back), is recorded in a transaction of its own. Before authentication there is no one
    to record it against (``authenticate`` records its own 401s)."""
    if call.signed_in is None or call.refusal_recorded or isinstance(exc, StoreUnavailable):
        return
    denied = isinstance(exc, StepUpRequired | Forbidden)
    call.audit_alone(call.known, outcome="denied" if denied else "failure", error=exc.problem)
