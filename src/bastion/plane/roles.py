"""Built-in roles: which commands each may run. Anything not granted is denied (R1).

A role is a set of entries, each a service, a command name (``*`` for every command of the
service) and, optionally, the parameters it may use. Each service declares its own roles;
the server's roles are derived from its list of services (``bastion.plane.service.
built_in_roles``): Global Administrator, every service's roles, and Read-Only Reporting.
Role groups with object scopes come on top of this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bastion.plane.declare import CommandSpec


@dataclass(frozen=True)
class RoleEntry:
    service: str
    command: str  # a Verb-Noun name, "Get-*" for every reader, or "*"
    parameters: frozenset[str] | None = None  # None: every parameter

    def covers(self, spec: CommandSpec, used: set[str]) -> bool:
        if self.service not in ("*", spec.service):
            return False
        if self.command == "*":
            pass
        elif self.command.endswith("-*"):
            if not spec.name.startswith(self.command[:-1]):
                return False
        elif self.command != spec.name:
            return False
        return self.parameters is None or used <= self.parameters


def readers(service: str) -> RoleEntry:
    """Every ``Get-`` command of ``service``."""
    return RoleEntry(service, "Get-*")


#: a role's name, and the entries it grants
Roles = Mapping[str, tuple[RoleEntry, ...]]

GLOBAL_ADMINISTRATOR = "Global Administrator"
READ_ONLY_REPORTING = "Read-Only Reporting"
