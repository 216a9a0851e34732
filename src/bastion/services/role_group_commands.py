"""Role group commands of the directory service: who holds which roles, in which scope.

Changing a role group's membership is sensitive (a recent second factor); reading role
groups is not. Only someone who holds every role a role group grants, in its scope, may
create it, remove it or change its members (privilege tiers, ``bastion.plane.tiers``).
Built-in role groups cannot be removed, and the last user in Global Administrator cannot
be taken out: a tenant never locks itself out of administration.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from bastion.core.errors import Conflict, NotFound, UsageError
from bastion.directory import applications, groups, role_groups, users
from bastion.directory.role_groups import MemberKind, RoleGroup, ScopeFilter
from bastion.plane.command_context import CommandContext
from bastion.plane.service import Commands
from bastion.plane.tiers import grants_of_group, require_grantable

#: the directory service's commands for role groups (``bastion.services.directory`` includes them)
commands = Commands()

RoleGroupIdentity = Annotated[
    str, Field(min_length=1, max_length=256, description="The role group's id or name.")
]
MemberIdentity = Annotated[
    str,
    Field(
        min_length=1,
        max_length=320,
        description="A user (id or user principal name), a group (id or name) or an "
        "application (appId or display name).",
    ),
]
GLOBAL_ADMINISTRATOR = "Global Administrator"


class ScopeOut(BaseModel):
    department: str | None = None
    groupId: str | None = None
    groupName: str | None = None


class RoleGroupMemberOut(BaseModel):
    id: str
    kind: Literal["user", "group", "app"]
    name: str


class RoleGroupOut(BaseModel):
    id: str
    name: str
    description: str
    roles: list[str]
    scope: ScopeOut | None
    builtIn: bool
    members: list[RoleGroupMemberOut]


def _scope_out(ctx: CommandContext, scope: ScopeFilter | None) -> ScopeOut | None:
    if scope is None:
        return None
    if scope.department is not None:
        return ScopeOut(department=scope.department)
    group = groups.find_group(ctx.conn, ctx.tenant.id, scope.group_id or "")
    return ScopeOut(groupId=scope.group_id, groupName=group.name if group else None)


def _member_name(ctx: CommandContext, member: role_groups.Member) -> str:
    if member.kind == "user":
        user = users.lookup(ctx.conn, ctx.tenant.id, member.id)
        return user.upn if user else ""
    if member.kind == "app":
        app = applications.by_id(ctx.conn, ctx.tenant.id, member.id)
        return app.display_name if app else ""
    group = groups.find_group(ctx.conn, ctx.tenant.id, member.id)
    return group.name if group else ""


def _out(ctx: CommandContext, group: RoleGroup) -> RoleGroupOut:
    return RoleGroupOut(
        id=group.id,
        name=group.name,
        description=group.description,
        roles=list(group.roles),
        scope=_scope_out(ctx, group.scope),
        builtIn=group.built_in,
        members=[
            RoleGroupMemberOut(id=m.id, kind=m.kind, name=_member_name(ctx, m))
            for m in role_groups.members_of(ctx.conn, group)
        ],
    )


@commands.command("Get-RoleGroup")
def get_role_group(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None, Field(max_length=256, description="Only this role group: an id or name.")
    ] = None,
) -> list[RoleGroupOut]:
    """Role groups with their roles, scope and members (users, groups and applications)."""
    if identity is not None:
        return [_out(ctx, role_groups.require_role_group(ctx.conn, ctx.tenant.id, identity))]
    return [_out(ctx, group) for group in role_groups.list_role_groups(ctx.conn, ctx.tenant.id)]


@commands.command("New-RoleGroup", sensitive=True)
def new_role_group(
    ctx: CommandContext,
    *,
    name: Annotated[str, Field(min_length=1, max_length=256, description="The group's name.")],
    roles: Annotated[
        list[str],
        Field(min_length=1, max_length=16, description="Built-in role names it grants."),
    ],
    description: Annotated[str, Field(max_length=1024, description="What it is for.")] = "",
    scope_department: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=128,
            description="Limit it to objects of users in this department.",
        ),
    ] = None,
    scope_group: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=256,
            description="Limit it to objects of members of this group (id or name).",
        ),
    ] = None,
) -> RoleGroupOut:
    """Create a role group granting built-in roles, optionally limited to a scope: the
    objects of one department's users, or of one group's members."""
    if scope_department is not None and scope_group is not None:
        raise UsageError(
            "a role group has one scope: a department or a group, not both.",
            parameter="scope_group",
        )
    scope: ScopeFilter | None = None
    if scope_department is not None:
        scope = ScopeFilter(department=users.check_department(scope_department))
    elif scope_group is not None:
        scope = ScopeFilter(group_id=groups.require_group(ctx.conn, ctx.tenant.id, scope_group).id)
    created = role_groups.create_role_group(
        ctx.conn,
        tenant_id=ctx.tenant.id,
        name=name,
        description=description,
        roles=roles,
        scope=scope,
        now=ctx.now,
        known_roles=tuple(ctx.roles),
    )
    # after the names are checked (an unknown role is a 400); a refusal rolls it back
    require_grantable(
        ctx.caller.grants,
        grants_of_group(created.roles, created.scope, created.name),
        f"role group {created.name}",
    )
    return _out(ctx, created)


@commands.command("Remove-RoleGroup", sensitive=True)
def remove_role_group(ctx: CommandContext, *, identity: RoleGroupIdentity) -> RoleGroupOut:
    """Delete a role group that is not built in; its members lose the roles it granted."""
    group = _changeable(ctx, identity)
    removed = _out(ctx, group)
    role_groups.delete_role_group(ctx.conn, group)
    return removed


def _changeable(ctx: CommandContext, identity: str) -> RoleGroup:
    group = role_groups.require_role_group(ctx.conn, ctx.tenant.id, identity)
    require_grantable(
        ctx.caller.grants,
        grants_of_group(group.roles, group.scope, group.name),
        f"role group {group.name}",
    )
    return group


def _principal(ctx: CommandContext, member: str) -> tuple[str, MemberKind]:
    user = users.lookup(ctx.conn, ctx.tenant.id, member)
    if user is not None:
        return user.id, "user"
    group = groups.find_group(ctx.conn, ctx.tenant.id, member)
    if group is not None:
        return group.id, "group"
    app = applications.find_application(ctx.conn, ctx.tenant.id, member)
    if app is not None:
        return app.id, "app"
    raise NotFound(
        f"no user, group or application '{member}' in this tenant.",
        hint="Get-User, Get-Group and Get-Application list them.",
    )


@commands.command("Add-RoleGroupMember", sensitive=True)
def add_role_group_member(
    ctx: CommandContext, *, identity: RoleGroupIdentity, member: MemberIdentity
) -> RoleGroupOut:
    """Add a user, a group or an application to a role group; they hold its roles from
    their next command."""
    group = _changeable(ctx, identity)
    member_id, kind = _principal(ctx, member)
    role_groups.add_member(ctx.conn, group, member_id, kind)
    return _out(ctx, group)


@commands.command("Remove-RoleGroupMember", sensitive=True)
def remove_role_group_member(
    ctx: CommandContext, *, identity: RoleGroupIdentity, member: MemberIdentity
) -> RoleGroupOut:
    """Take a user, a group or an application out of a role group; it takes effect on their
    next command."""
    group = _changeable(ctx, identity)
    member_id, kind = _principal(ctx, member)
    if (
        group.built_in
        and group.name == GLOBAL_ADMINISTRATOR
        and kind == "user"
        and role_groups.direct_user_members(ctx.conn, group) == 1
        and any(m.id == member_id for m in role_groups.members_of(ctx.conn, group))
    ):
        raise Conflict(
            f"{member} is the last user in {GLOBAL_ADMINISTRATOR}; removing them would leave "
            "the tenant with no administrator.",
            hint="Add another administrator first.",
        )
    if not role_groups.remove_member(ctx.conn, group, member_id):
        raise NotFound(f"{member} is not a member of {group.name}.")
    return _out(ctx, group)
