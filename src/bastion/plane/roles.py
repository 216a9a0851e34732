"""Built-in roles: which commands each may run. Anything not granted is denied (R1).

A role is a set of entries, each a service, a command name (``*`` for every command of the
service) and, optionally, the parameters it may use. Role groups with object scopes come on
top of this.
"""

from __future__ import annotations

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


def _readers(service: str) -> RoleEntry:
    return RoleEntry(service, "Get-*")


BUILT_IN: dict[str, tuple[RoleEntry, ...]] = {
    "Global Administrator": (RoleEntry("*", "*"),),
    "Mail Recipients Administrator": (RoleEntry("mail", "*"), _readers("directory")),
    "Helpdesk": (
        _readers("directory"),
        RoleEntry("directory", "Set-UserMfa"),
        RoleEntry("directory", "Enable-User"),
        RoleEntry("directory", "Disable-User"),
        RoleEntry("directory", "Set-User", frozenset({"identity", "password"})),
    ),
    "Sites Administrator": (RoleEntry("sites", "*"), _readers("directory")),
    "Chat Administrator": (RoleEntry("chat", "*"), _readers("directory")),
    "Audit Reader": (
        RoleEntry("directory", "Search-AuditLog"),
        RoleEntry("directory", "Export-AuditLog"),
    ),
    "Read-Only Reporting": tuple(_readers(s) for s in ("directory", "mail", "sites", "chat")),
}
