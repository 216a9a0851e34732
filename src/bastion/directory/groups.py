"""Groups of users (tables and queries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from bastion.core.errors import Conflict, NotFound, UsageError
from bastion.core.ids import new_id
from bastion.core.text import has_control
from bastion.directory import role_groups
from bastion.store.schema import group_members, groups


@dataclass(frozen=True)
class Group:
    id: str
    tenant_id: str
    name: str
    description: str


def _to_group(row: Any) -> Group:
    return Group(id=row.id, tenant_id=row.tenant_id, name=row.name, description=row.description)


def find_group(conn: Connection, tenant_id: str, identity: str) -> Group | None:
    """A group by id or by name, within one tenant."""
    if has_control(identity):
        return None
    row = conn.execute(
        select(groups).where(
            groups.c.tenant_id == tenant_id, (groups.c.id == identity) | (groups.c.name == identity)
        )
    ).first()
    return _to_group(row) if row else None


def require_group(conn: Connection, tenant_id: str, identity: str) -> Group:
    group = find_group(conn, tenant_id, identity)
    if group is None:
        raise NotFound(f"no group '{identity}' in this tenant.", hint="Get-Group lists groups.")
    return group


def create_group(
    conn: Connection, *, tenant_id: str, name: str, description: str, now: float
) -> Group:
    name = name.strip()
    if not name or has_control(name):
        raise UsageError("a group name must be visible text.")
    if find_group(conn, tenant_id, name) is not None:
        raise Conflict(f"group '{name}' already exists.")
    group_id = new_id()
    conn.execute(
        insert(groups).values(
            id=group_id, tenant_id=tenant_id, name=name, description=description, created_at=now
        )
    )
    return Group(id=group_id, tenant_id=tenant_id, name=name, description=description)


def delete_group(conn: Connection, group: Group) -> None:
    """Delete a group: its members stay in the directory, and lose the roles they held
    through it (the group leaves every role group, and scopes naming it match nobody)."""
    role_groups.forget_principal(conn, group.id)
    conn.execute(delete(groups).where(groups.c.id == group.id))


def member_count(conn: Connection, group: Group) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(group_members)
            .where(group_members.c.group_id == group.id)
        ).scalar_one()
    )


def add_member(conn: Connection, group: Group, user_id: str) -> bool:
    """False when the user already was a member."""
    exists = conn.execute(
        select(group_members.c.user_id).where(
            group_members.c.group_id == group.id, group_members.c.user_id == user_id
        )
    ).first()
    if exists:
        return False
    conn.execute(
        insert(group_members).values(tenant_id=group.tenant_id, group_id=group.id, user_id=user_id)
    )
    return True


def remove_member(conn: Connection, group: Group, user_id: str) -> bool:
    result = conn.execute(
        delete(group_members).where(
            group_members.c.group_id == group.id, group_members.c.user_id == user_id
        )
    )
    return result.rowcount == 1
