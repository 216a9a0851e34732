"""Privilege tiers: who may change whose account, and who may hand out which role.

Entra's "who can reset whose password", applied to every role (docs/decisions/0017):

- The account of a user who holds a role (directly, through a group, or in a custom role
  group) can be changed (password, MFA state or methods, enabled, name, department,
  removal) only by someone who holds every role that user holds. Otherwise a Helpdesk user
  could reset the Global Administrator's password and sign in as them.
- An application that holds a role (in a role group) can have its certificates, federated
  credentials, networks or other settings changed, or be removed, only by someone who holds
  every role it holds: a new certificate is a way to sign in as it.
- A change of who holds a role (a role group's members, a group that is a member of a role
  group, a new role group) is allowed only to someone who holds every role it concerns: a
  role-group change never grants a role its author does not hold.

"Holds" is exact about scopes: a grant of role R limited to a scope covers the same role R
limited to the same scope, and nothing wider. An unscoped grant covers R in every scope, and
Global Administrator covers every role (it can run every command); so an unscoped Global
Administrator may do all of this, and a Global Administrator limited to a scope may do it
for grants limited to that same scope.
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.directory.role_groups import Grant, ScopeFilter
from bastion.plane.command_errors import Forbidden

GLOBAL_ADMINISTRATOR = "Global Administrator"


def covers(held: Grant, needed: Grant) -> bool:
    """Whether holding ``held`` gives at least the rights of ``needed``."""
    same_role = held.role in (needed.role, GLOBAL_ADMINISTRATOR)
    return same_role and (held.scope is None or held.scope == needed.scope)


def uncovered(held: Iterable[Grant], needed: Iterable[Grant]) -> list[str]:
    """The roles of ``needed`` that no grant of ``held`` covers, in order, once each."""
    mine = tuple(held)
    missing: list[str] = []
    for grant in needed:
        if not any(covers(h, grant) for h in mine) and grant.role not in missing:
            missing.append(grant.role)
    return missing


def grants_of_group(roles: Iterable[str], scope: ScopeFilter | None, name: str) -> list[Grant]:
    """The grants a role group gives each of its members."""
    return [Grant(role=role, role_group=name, scope=scope) for role in roles]


def require_outranks(held: Iterable[Grant], target: Iterable[Grant], who: str) -> None:
    """Refuse (403, audited by the plane) a change to the account of ``who`` unless the
    caller's grants cover every grant ``who`` holds."""
    missing = uncovered(held, target)
    if missing:
        raise Forbidden(
            f"{who} holds {_names(missing)}, which you do not hold: only someone who holds "
            f"every role they hold, or a {GLOBAL_ADMINISTRATOR}, can change their account.",
            hint=f"Ask a {GLOBAL_ADMINISTRATOR}.",
            reason="privilege_tier",
        )


def require_outranks_application(
    held: Iterable[Grant], target: Iterable[Grant], display_name: str
) -> None:
    """Refuse (403, audited by the plane) a change to the application ``display_name``, its
    credentials or its networks, unless the caller's grants cover every grant it holds."""
    missing = uncovered(held, target)
    if missing:
        raise Forbidden(
            f"the application {display_name} holds {_names(missing)}, which you do not hold: "
            "only someone who holds every role it holds, or a "
            f"{GLOBAL_ADMINISTRATOR}, can change it, its credentials or its networks.",
            hint=f"Ask a {GLOBAL_ADMINISTRATOR}.",
            reason="privilege_tier",
        )


def require_grantable(held: Iterable[Grant], granted: Iterable[Grant], what: str) -> None:
    """Refuse (403, audited by the plane) a change to who holds the roles of ``what``
    unless the caller's grants cover every one of them."""
    missing = uncovered(held, granted)
    if missing:
        raise Forbidden(
            f"{what} concerns {_names(missing)}, which you do not hold: a role group change "
            "can only concern roles you hold yourself.",
            hint=f"Ask a {GLOBAL_ADMINISTRATOR}.",
            reason="privilege_tier",
        )


def _names(roles: list[str]) -> str:
    if len(roles) == 1:
        return f"the role {roles[0]}"
    return "the roles " + ", ".join(roles[:-1]) + " and " + roles[-1]
