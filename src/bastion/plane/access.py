"""Deciding whether a caller may run a command, and on which objects (R1).

A command is allowed when at least one role the caller holds has an entry covering it and
every parameter used. The objects it may touch are the union of the scopes of the role
groups that allowed it; one unscoped role group covering the command lifts every limit.
Nothing covers: denied.
"""

from __future__ import annotations

from bastion.directory.role_groups import Grant, ScopeFilter
from bastion.plane.declare import CommandSpec
from bastion.plane.roles import Roles
from bastion.plane.scope import EVERYTHING, Scope


def authorize(
    grants: tuple[Grant, ...], spec: CommandSpec, used: set[str], tenant_id: str, roles: Roles
) -> Scope | None:
    """The scope the command may act in, or None when no grant of one of ``roles`` (the
    server's roles) allows it."""
    scopes: list[ScopeFilter] = []
    allowed = False
    for grant in grants:
        if not any(entry.covers(spec, used) for entry in roles.get(grant.role, ())):
            continue
        if grant.scope is None:
            return EVERYTHING
        allowed = True
        if grant.scope not in scopes:
            scopes.append(grant.scope)
    return Scope(filters=tuple(scopes), tenant_id=tenant_id) if allowed else None
