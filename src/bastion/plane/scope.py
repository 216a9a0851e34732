"""Which objects a command may touch: the scopes of the role groups that allowed it.

Every object a service keeps either belongs to a directory user (a user, their mailbox, a
site they own, their chat policy assignment) or to the tenant as a whole (a shared or room
mailbox, a policy). A scope is a filter on directory users: the users of a department, or
the members of a group. A command allowed only through scoped role groups may touch the
objects of the users in any of those scopes, and no tenant-wide object (deny by default).

Commands ask in one of two ways: listings add :meth:`Scope.users_clause` to their query, so
objects out of scope are never read; single-object commands call :meth:`Scope.require`
with the object's user before reading it out or changing it, which refuses with a 403 that
the plane audits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, false, or_, select

from bastion.directory.role_groups import ScopeFilter
from bastion.plane.command_errors import Forbidden
from bastion.store.schema import group_members, users


@dataclass(frozen=True)
class Scope:
    #: None: every object of the tenant; otherwise the union of these filters
    filters: tuple[ScopeFilter, ...] | None
    #: the caller's tenant (scoped lookups use the users' (tenant, department) index)
    tenant_id: str = ""

    @property
    def unrestricted(self) -> bool:
        return self.filters is None

    def users_clause(self, user_id: ColumnElement[str | None]) -> ColumnElement[bool] | None:
        """A WHERE clause keeping rows whose user (``user_id``) is in scope; None if all are."""
        if self.filters is None:
            return None
        parts: list[ColumnElement[bool]] = []
        for f in self.filters:
            if f.department is not None:
                parts.append(
                    user_id.in_(
                        select(users.c.id).where(
                            users.c.tenant_id == self.tenant_id,
                            users.c.department == f.department,
                        )
                    )
                )
            else:
                parts.append(
                    user_id.in_(
                        select(group_members.c.user_id).where(
                            group_members.c.group_id == f.group_id
                        )
                    )
                )
        return or_(*parts) if parts else false()

    def contains(self, conn: Connection, user_id: str | None) -> bool:
        if self.filters is None:
            return True
        if user_id is None:
            return False
        clause = self.users_clause(users.c.id)
        assert clause is not None
        return (
            conn.execute(select(users.c.id).where(users.c.id == user_id, clause)).first()
            is not None
        )

    def require(self, conn: Connection, user_id: str | None, what: str) -> None:
        """Refuse (403) unless ``what``, of user ``user_id`` (None: the tenant), is in scope."""
        if not self.contains(conn, user_id):
            raise Forbidden(
                f"{what} is outside the scope of your role groups.",
                hint="Ask an administrator for a role group whose scope includes it.",
                reason="out_of_scope",
            )

    def require_department(self, department: str, what: str) -> None:
        """For objects being created: their user's department must be in a department scope."""
        if self.filters is None:
            return
        if not any(f.department == department for f in self.filters if f.department is not None):
            raise Forbidden(
                f"{what} would be outside the scope of your role groups.",
                hint="Ask an administrator for a role group whose scope includes it.",
                reason="out_of_scope",
            )


EVERYTHING = Scope(filters=None)
