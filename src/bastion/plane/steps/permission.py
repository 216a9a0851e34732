"""Authorize (R1): the caller's role groups must grant the command and the names of the
parameters sent; a grant limited to a scope allows only a command that keeps to one.
Each refusal is a 403 (``Forbidden``), recorded in the audit log as denied."""

from __future__ import annotations

from bastion.plane import access
from bastion.plane.call import Call
from bastion.plane.command_errors import Forbidden


def authorize(call: Call) -> None:
    """Authorization looks only at the command and the names of the parameters sent, so a
    caller without the role learns nothing about what the command would accept."""
    spec, caller = call.spec, call.caller
    used = set(call.raw)
    call.allowed = access.authorize(caller.grants, spec, used, caller.tenant.id, call.roles)
    if call.allowed is None:
        raise Forbidden(
            f"your roles do not allow {spec.name}"
            + (f" with {', '.join(sorted(used))}" if used else "")
            + ".",
            hint="Ask an administrator for a role that grants it.",
            command=spec.name,
        )


def keep_to_scope(call: Call) -> None:
    """A command on objects of the whole tenant needs a grant without a scope."""
    spec = call.spec
    if not call.scope.unrestricted and not spec.scoped:
        raise Forbidden(
            f"{spec.name} acts on objects of the whole tenant, and your role groups allow it "
            "only within a scope.",
            hint="Ask an administrator for a role group without a scope that grants it.",
            command=spec.name,
        )
