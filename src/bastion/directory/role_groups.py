"""Role groups: who holds which roles, optionally limited to a scope (tables and queries).

A role group grants one or more built-in roles to its members: users, and groups of users
(a group's members hold the roles for as long as they are in the group). A scope limits the
objects a role group's members may touch to those of some directory users: the users of one
department, or the members of one group. Every tenant has one built-in role group per
built-in role, named after it, with no scope.

Grants are read at each command, never taken from a token: removing someone from a role
group, or from a group that is a member of one, takes effect on their next command (R3).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, delete, func, insert, or_, select

from bastion.core.errors import Conflict, NotFound, UsageError
from bastion.core.ids import new_id
from bastion.core.text import has_control
from bastion.store.prepared import Prepared
from bastion.store.schema import group_members, role_group_members, role_groups

#: ``app``: an application (``bastion.directory.applications``), which holds only the roles
#: of the role groups it is a direct member of
MemberKind = Literal["user", "group", "app"]


@dataclass(frozen=True)
class ScopeFilter:
    """The directory users whose objects a scoped role group may touch."""

    department: str | None = None
    group_id: str | None = None

    def to_json(self) -> dict[str, str]:
        if self.department is not None:
            return {"department": self.department}
        assert self.group_id is not None
        return {"group": self.group_id}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ScopeFilter | None:
        if not data:
            return None
        if "department" in data:
            return cls(department=str(data["department"]))
        return cls(group_id=str(data["group"]))


@dataclass(frozen=True)
class RoleGroup:
    id: str
    tenant_id: str
    name: str
    description: str
    roles: tuple[str, ...]
    scope: ScopeFilter | None
    built_in: bool


@dataclass(frozen=True)
class Grant:
    """One role held through one role group."""

    role: str
    role_group: str
    scope: ScopeFilter | None


def _to_role_group(row: Any) -> RoleGroup:
    return RoleGroup(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        description=row.description,
        roles=tuple(row.roles),
        scope=ScopeFilter.from_json(row.scope),
        built_in=bool(row.built_in),
    )


def ensure_built_in(conn: Connection, tenant_id: str, now: float, roles: Iterable[str]) -> None:
    """Give a tenant a built-in role group for each of ``roles`` (the server's built-in
    roles; those it already has are left alone)."""
    have = set(
        conn.execute(
            select(role_groups.c.name).where(
                role_groups.c.tenant_id == tenant_id, role_groups.c.built_in.is_(True)
            )
        ).scalars()
    )
    missing = [role for role in roles if role not in have]
    if missing:
        conn.execute(
            insert(role_groups),
            [
                {
                    "id": new_id(),
                    "tenant_id": tenant_id,
                    "name": role,
                    "description": f"Everyone with the {role} role.",
                    "roles": [role],
                    "scope": None,
                    "built_in": True,
                    "created_at": now,
                }
                for role in missing
            ],
        )


def find_role_group(conn: Connection, tenant_id: str, identity: str) -> RoleGroup | None:
    if has_control(identity):
        return None
    row = conn.execute(
        select(role_groups).where(
            role_groups.c.tenant_id == tenant_id,
            (role_groups.c.id == identity) | (role_groups.c.name == identity),
        )
    ).first()
    return _to_role_group(row) if row else None


def require_role_group(conn: Connection, tenant_id: str, identity: str) -> RoleGroup:
    found = find_role_group(conn, tenant_id, identity)
    if found is None:
        raise NotFound(
            f"no role group '{identity}' in this tenant.", hint="Get-RoleGroup lists them."
        )
    return found


def list_role_groups(conn: Connection, tenant_id: str) -> list[RoleGroup]:
    rows = conn.execute(
        select(role_groups).where(role_groups.c.tenant_id == tenant_id).order_by(role_groups.c.name)
    )
    return [_to_role_group(row) for row in rows]


def create_role_group(
    conn: Connection,
    *,
    tenant_id: str,
    name: str,
    description: str,
    roles: Iterable[str],
    scope: ScopeFilter | None,
    now: float,
    known_roles: Collection[str],
) -> RoleGroup:
    name = name.strip()
    if not name or has_control(name):
        raise UsageError("a role group name must be visible text.", parameter="name")
    chosen = tuple(dict.fromkeys(roles))
    unknown = [role for role in chosen if role not in known_roles]
    if not chosen or unknown:
        raise UsageError(
            f"unknown role {unknown[0]!r}." if unknown else "a role group needs a role.",
            hint="Roles: " + ", ".join(known_roles) + ".",
            parameter="roles",
        )
    if find_role_group(conn, tenant_id, name) is not None:
        raise Conflict(f"role group '{name}' already exists.")
    group = RoleGroup(
        id=new_id(),
        tenant_id=tenant_id,
        name=name,
        description=description,
        roles=chosen,
        scope=scope,
        built_in=False,
    )
    conn.execute(
        insert(role_groups).values(
            id=group.id,
            tenant_id=tenant_id,
            name=name,
            description=description,
            roles=list(chosen),
            scope=scope.to_json() if scope else None,
            built_in=False,
            created_at=now,
        )
    )
    return group


def delete_role_group(conn: Connection, group: RoleGroup) -> None:
    if group.built_in:
        raise Conflict(
            f"'{group.name}' is a built-in role group and cannot be removed.",
            hint="Remove its members instead.",
        )
    conn.execute(delete(role_groups).where(role_groups.c.id == group.id))


@dataclass(frozen=True)
class Member:
    id: str
    kind: MemberKind


def members_of(conn: Connection, group: RoleGroup) -> list[Member]:
    rows = conn.execute(
        select(role_group_members.c.member_id, role_group_members.c.member_kind)
        .where(role_group_members.c.role_group_id == group.id)
        .order_by(role_group_members.c.member_kind, role_group_members.c.member_id)
    )
    return [Member(row.member_id, row.member_kind) for row in rows]


def add_member(conn: Connection, group: RoleGroup, member_id: str, kind: MemberKind) -> bool:
    """False when it already was a member."""
    exists = conn.execute(
        select(role_group_members.c.member_id).where(
            role_group_members.c.role_group_id == group.id,
            role_group_members.c.member_id == member_id,
        )
    ).first()
    if exists:
        return False
    conn.execute(
        insert(role_group_members).values(
            tenant_id=group.tenant_id, role_group_id=group.id, member_id=member_id, member_kind=kind
        )
    )
    return True


def remove_member(conn: Connection, group: RoleGroup, member_id: str) -> bool:
    result = conn.execute(
        delete(role_group_members).where(
            role_group_members.c.role_group_id == group.id,
            role_group_members.c.member_id == member_id,
        )
    )
    return result.rowcount == 1


def forget_principal(conn: Connection, member_id: str) -> None:
    """A removed user, group or application leaves every role group."""
    conn.execute(delete(role_group_members).where(role_group_members.c.member_id == member_id))


def add_to_built_in(
    conn: Connection,
    tenant_id: str,
    user_id: str,
    role: str,
    now: float,
    known_roles: Collection[str],
) -> None:
    """Give a user one of the server's built-in roles through its built-in role group."""
    if role not in known_roles:
        raise UsageError(f"unknown role {role!r}.", hint="Roles: " + ", ".join(known_roles) + ".")
    ensure_built_in(conn, tenant_id, now, known_roles)
    group = require_role_group(conn, tenant_id, role)
    add_member(conn, group, user_id, "user")


#: Every role group a user is in, directly or through a group: run on every command.
_GRANTS_STATEMENT = (
    select(role_groups.c.name, role_groups.c.roles, role_groups.c.scope)
    .join(role_group_members, role_group_members.c.role_group_id == role_groups.c.id)
    .where(
        or_(
            role_group_members.c.member_id == bindparam("user_id"),
            role_group_members.c.member_id.in_(
                select(group_members.c.group_id).where(
                    group_members.c.user_id == bindparam("user_id")
                )
            ),
        )
    )
)


#: through the driver (``Prepared``): every token grant and every command runs it
_GRANTS = Prepared(_GRANTS_STATEMENT, json_columns=frozenset({"roles", "scope"}))


def grants_of(conn: Connection, user_id: str) -> tuple[Grant, ...]:
    # A user in a role group directly and through a group matches twice; once is enough.
    rows = {row.name: row for row in _GRANTS.rows(conn, {"user_id": user_id})}
    return tuple(
        Grant(role=role, role_group=name, scope=ScopeFilter.from_json(row.scope))
        for name, row in sorted(rows.items())
        for role in row.roles
    )


def grants_of_application(conn: Connection, application_id: str) -> tuple[Grant, ...]:
    """The grants of an application: those of the role groups it is a direct member of (an
    application is never a member of a group). Read at each command, as a user's are."""
    return grants_through_group(conn, application_id)


#: through the driver (``Prepared``): every application's grant and command runs it
_GRANTS_THROUGH = Prepared(
    select(role_groups.c.name, role_groups.c.roles, role_groups.c.scope)
    .join(role_group_members, role_group_members.c.role_group_id == role_groups.c.id)
    .where(role_group_members.c.member_id == bindparam("b_member"))
    .order_by(role_groups.c.name),
    json_columns=frozenset({"roles", "scope"}),
)


def grants_through_group(conn: Connection, group_id: str) -> tuple[Grant, ...]:
    """The grants a group's members hold through it: those of the role groups it is in."""
    rows = _GRANTS_THROUGH.rows(conn, {"b_member": group_id})
    return tuple(
        Grant(role=role, role_group=row.name, scope=ScopeFilter.from_json(row.scope))
        for row in rows
        for role in row.roles
    )


def holds_any_role(conn: Connection, user_id: str) -> bool:
    """Whether a user is in any role group, directly or through a group."""
    return conn.execute(_GRANTS_STATEMENT.limit(1), {"user_id": user_id}).first() is not None


def role_names_of(conn: Connection, user_id: str) -> list[str]:
    """The distinct roles a user holds, scoped or not (the ``roles`` claim, informational)."""
    return sorted({grant.role for grant in grants_of(conn, user_id)})


def direct_user_members(conn: Connection, group: RoleGroup) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(role_group_members)
            .where(
                role_group_members.c.role_group_id == group.id,
                role_group_members.c.member_kind == "user",
            )
        ).scalar_one()
    )
