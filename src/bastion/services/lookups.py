"""What several services' commands share: naming a directory user, and visible text."""

from __future__ import annotations

from bastion.core.errors import NotFound, UsageError
from bastion.core.text import escape_control, has_control
from bastion.directory import users
from bastion.plane.command_context import CommandContext


def find_user(
    ctx: CommandContext, identity: str, parameter: str, *, hint: str = "Get-User lists users."
) -> users.User:
    """The tenant's user named by ``identity`` (an id or a user principal name), or a 404
    naming the parameter."""
    found = users.lookup(ctx.conn, ctx.tenant.id, identity)
    if found is None:
        raise NotFound(
            f"no user '{escape_control(identity)}' in this tenant.",
            hint=hint,
            parameter=parameter,
        )
    return found


def visible(value: str, parameter: str) -> str:
    """``value`` stripped, which must be visible text; otherwise a 400 naming the parameter."""
    text = value.strip()
    if not text or has_control(text):
        raise UsageError(
            f"parameter '{parameter}': must be visible text.",
            hint="Use letters, digits, spaces and punctuation; no control characters.",
            parameter=parameter,
        )
    return text
