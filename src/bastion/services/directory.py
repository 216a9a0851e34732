"""The directory service: users, their MFA, groups, roles, role groups and applications."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from bastion.authority import credentials
from bastion.authority.passwords import PasswordHasher, check_new_password, context_words
from bastion.authority.sign_in_sessions import end_sign_ins, revoke_user_sessions
from bastion.core.errors import NotFound, UsageError
from bastion.directory import groups, names, users
from bastion.directory.role_groups import grants_of, grants_through_group
from bastion.plane import tiers
from bastion.plane.command_context import CommandContext
from bastion.plane.declare import SECRET
from bastion.plane.listings import Listing
from bastion.plane.roles import RoleEntry, readers
from bastion.plane.service import Service
from bastion.services import application_commands, audit_log, user_removal
from bastion.services import role_group_commands as role_groups
from bastion.store.schema import factors, group_members
from bastion.store.schema import groups as groups_table
from bastion.store.schema import users as users_table

directory = Service(
    "directory",
    roles={
        "Helpdesk": (
            readers("directory"),
            RoleEntry("directory", "Set-UserMfa"),
            RoleEntry("directory", "Enable-User"),
            RoleEntry("directory", "Disable-User"),
            RoleEntry("directory", "Set-User", frozenset({"identity", "password"})),
        ),
        "Audit Reader": (
            RoleEntry("directory", "Search-AuditLog"),
            RoleEntry("directory", "Export-AuditLog"),
        ),
    },
)
# The audit log's commands come first in the catalog, and role groups' last, as they
# always have: the catalog's version is a hash of it, in order.
directory.include(audit_log.commands)

Identity = Annotated[
    str,
    Field(min_length=1, max_length=320, description="The user's id or user principal name."),
]
MfaState = Literal["disabled", "enabled", "enforced"]


class User(BaseModel):
    """A directory user as every reader may see it (R5: no hash, no factor secret)."""

    id: str
    userPrincipalName: str
    displayName: str
    enabled: bool
    mfaState: MfaState
    department: str


class UserMfa(BaseModel):
    id: str
    userPrincipalName: str
    mfaState: MfaState
    methods: list[str]


def _find(ctx: CommandContext, identity: str) -> users.User:
    found = users.lookup(ctx.conn, ctx.tenant.id, identity)
    if found is None:
        raise NotFound(f"no user '{identity}' in this tenant.", hint="Get-User lists users.")
    return found


def _public(user: users.User) -> User:
    return User(
        id=user.id,
        userPrincipalName=user.upn,
        displayName=user.display_name,
        enabled=user.enabled,
        mfaState=user.mfa_state,  # type: ignore[arg-type]
        department=user.department,
    )


def _find_in_scope(ctx: CommandContext, identity: str) -> users.User:
    user = _find(ctx, identity)
    ctx.scope.require(ctx.conn, user.id, f"user {user.upn}")
    return user


def _find_changeable(ctx: CommandContext, identity: str) -> users.User:
    """A user whose account the caller may change: in scope, and holding no role the caller
    does not hold (privilege tiers, ``bastion.plane.tiers``)."""
    user = _find_in_scope(ctx, identity)
    tiers.require_outranks(ctx.caller.grants, grants_of(ctx.conn, user.id), user.upn)
    return user


Department = Annotated[
    str | None, Field(max_length=128, description="The user's department, e.g. Sales.")
]


@directory.command("Get-User", lists=True, scoped=True)
def get_user(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None,
        Field(max_length=320, description="Only this user: an id or user principal name."),
    ] = None,
    enabled: Annotated[bool | None, Field(description="Only enabled, or disabled, users.")] = None,
    department: Annotated[
        str | None, Field(max_length=128, description="Only users of this department.")
    ] = None,
) -> Listing[User]:
    """List users, in user principal name order; or one user with -Identity."""
    query = select(users_table).where(users_table.c.tenant_id == ctx.tenant.id)
    in_scope = ctx.scope.users_clause(users_table.c.id)
    if in_scope is not None:
        query = query.where(in_scope)
    if department is not None:
        query = query.where(users_table.c.department == department.strip())
    if identity is not None:
        query = query.where(
            users_table.c.upn.in_(names.lookup_forms(identity)) | (users_table.c.id == identity)
        )
    if enabled is not None:
        query = query.where(users_table.c.enabled.is_(enabled))
    return Listing(
        query=query,
        key=(users_table.c.upn, users_table.c.id),
        to_item=lambda row: User(
            id=row.id,
            userPrincipalName=row.upn,
            displayName=row.display_name,
            enabled=row.enabled,
            mfaState=row.mfa_state,
            department=row.department,
        ),
    )


def _hash_password(hasher: PasswordHasher, arguments: dict[str, Any]) -> dict[str, Any]:
    """Check and hash a new password before the transaction: Argon2id takes tens of
    milliseconds, which must not be spent holding the database's write lock."""
    password = arguments.get("password")
    if password is None:
        return {}
    check_new_password(password)  # the tenant's context words are checked in the command
    return {"password_hash": hasher.hash(password)}


def _check_context(ctx: CommandContext, password: str | None, *user_names: str) -> None:
    """Refuse a new password made from the tenant's or the user's names (A1)."""
    if password is not None:
        check_new_password(
            password, context_words(ctx.tenant.name, ctx.tenant.display_name, *user_names)
        )


@directory.command("New-User", scoped=True, prepare=_hash_password)
def new_user(
    ctx: CommandContext,
    *,
    user_principal_name: Annotated[
        str, Field(min_length=3, max_length=320, description="Sign-in name, e.g. alex@contoso.")
    ],
    display_name: Annotated[str | None, Field(max_length=256, description="Shown name.")] = None,
    password: Annotated[
        str | None,
        Field(
            min_length=8,
            max_length=1024,
            description="Initial password (8 or more characters).",
            json_schema_extra=SECRET,
        ),
    ] = None,
    mfa_state: Annotated[
        MfaState, Field(description="disabled, enabled or enforced.")
    ] = "enforced",
    department: Department = None,
) -> User:
    """Create a user. With MFA enabled or enforced, they register a factor at first sign-in."""
    ctx.scope.require_department(department or "", f"user {user_principal_name}")
    _check_context(ctx, password, user_principal_name, display_name or "")
    created = users.create_user(
        ctx.conn,
        tenant_id=ctx.tenant.id,
        upn=user_principal_name,
        display_name=display_name,
        password_hash=ctx.prepared.get("password_hash"),
        mfa_state=mfa_state,
        now=ctx.now,
        department=department or "",
    )
    return _public(created)


@directory.command("Set-User", scoped=True, prepare=_hash_password)
def set_user(
    ctx: CommandContext,
    *,
    identity: Identity,
    display_name: Annotated[str | None, Field(max_length=256, description="Shown name.")] = None,
    password: Annotated[
        str | None,
        Field(
            min_length=8, max_length=1024, description="A new password.", json_schema_extra=SECRET
        ),
    ] = None,
    department: Department = None,
    user_principal_name: Annotated[
        str | None,
        Field(min_length=3, max_length=320, description="A new sign-in name (a rename)."),
    ] = None,
) -> User:
    """Change a user's sign-in name, display name or department, or reset their password.
    A password reset ends every sign-in of the user at once; a renamed user keeps their
    sessions, roles and objects: they follow the id."""
    user = _find_changeable(ctx, identity)
    _check_context(
        ctx, password, user.upn, user.display_name, user_principal_name or "", display_name or ""
    )
    if user_principal_name is not None:
        users.rename(ctx.conn, user, user_principal_name)
    if department is not None:
        ctx.scope.require_department(department, f"user {user.upn} in {department}")
        users.set_department(ctx.conn, user, department)
    if display_name is not None:
        users.set_display_name(ctx.conn, user, display_name)
    if password is not None:  # checked and hashed by _hash_password, before the transaction
        credentials.set_password_hash(ctx.conn, user, ctx.prepared["password_hash"])
        revoke_user_sessions(ctx.conn, user.id, ctx.now)  # a reset ends every sign-in (S5)
    return _public(_find(ctx, user.id))


@directory.command("Disable-User", scoped=True)
def disable_user(ctx: CommandContext, *, identity: Identity) -> User:
    """Disable a user: they cannot sign in, and every session of theirs ends at once."""
    user = _find_changeable(ctx, identity)
    users.set_enabled(ctx.conn, user, False)
    revoke_user_sessions(ctx.conn, user.id, ctx.now)
    return _public(_find(ctx, user.id))


@directory.command("Enable-User", scoped=True)
def enable_user(ctx: CommandContext, *, identity: Identity) -> User:
    """Enable a disabled user."""
    user = _find_changeable(ctx, identity)
    users.set_enabled(ctx.conn, user, True)
    return _public(_find(ctx, user.id))


@directory.command("Get-UserMfa", scoped=True)
def get_user_mfa(ctx: CommandContext, *, identity: Identity) -> UserMfa:
    """A user's MFA state and registered methods (never a secret)."""
    user = _find_in_scope(ctx, identity)
    methods = ctx.conn.execute(
        select(factors.c.kind).where(factors.c.user_id == user.id, factors.c.confirmed.is_(True))
    ).scalars()
    return UserMfa(
        id=user.id,
        userPrincipalName=user.upn,
        mfaState=user.mfa_state,  # type: ignore[arg-type]
        methods=sorted(set(methods)),
    )


@directory.command("Set-UserMfa", sensitive=True, scoped=True)
def set_user_mfa(
    ctx: CommandContext,
    *,
    identity: Identity,
    state: Annotated[MfaState, Field(description="disabled, enabled or enforced.")],
    reset_methods: Annotated[
        bool, Field(description="Also remove registered factors and recovery codes.")
    ] = False,
) -> UserMfa:
    """Set a user's MFA state; optionally reset their registered factors (a lost phone),
    which ends every sign-in of the user at once."""
    user = _find_changeable(ctx, identity)
    users.set_mfa_state(ctx.conn, user, state, reset_factors=reset_methods)
    if reset_methods:  # removed factors end every sign-in made with them (S5)
        revoke_user_sessions(ctx.conn, user.id, ctx.now)
    return get_user_mfa(ctx, identity=user.id)


class UserRuleProblem(BaseModel):
    id: str
    userPrincipalName: str
    displayName: str
    enabled: bool
    #: what fails today's rules, one sentence each
    problems: list[str]


@directory.command("Export-UserRuleReport")
def export_user_rule_report(ctx: CommandContext) -> list[UserRuleProblem]:
    """List the users whose user principal name or display name fails today's naming
    rules, or whose password failed today's password rules when they last signed in.
    Such names and passwords keep working; rename the user, or ask them to change it."""
    return [
        UserRuleProblem(
            id=found.user_id,
            userPrincipalName=found.upn,
            displayName=found.display_name,
            enabled=found.enabled,
            problems=list(found.problems),
        )
        for found in users.rule_problems(ctx.conn, ctx.tenant.id, ctx.tenant.name)
    ]


class RemovedUser(User):
    mailboxesDeleted: int
    mailboxesKeptInactive: int
    sitesLeftOwnerless: int


@directory.command("Remove-User", sensitive=True, scoped=True)
def remove_user(ctx: CommandContext, *, identity: Identity) -> RemovedUser:
    """Delete a user. Their sessions end, their factors go; their mailbox is deleted unless
    it is on litigation hold (then it is kept as an inactive mailbox); sites they own are
    kept without an owner; their memberships and policy assignments are removed."""
    user = _find_changeable(ctx, identity)
    removed = user_removal.remove_user(ctx.conn, user, ctx.now)
    return RemovedUser(
        **_public(user).model_dump(),
        mailboxesDeleted=removed.mailboxes_deleted,
        mailboxesKeptInactive=removed.mailboxes_kept_inactive,
        sitesLeftOwnerless=removed.sites_left_ownerless,
    )


class SessionsEnded(BaseModel):
    usersAffected: int
    sessionsEnded: int


@directory.command("Revoke-UserSession", sensitive=True, scoped=True)
def revoke_user_session(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None,
        Field(min_length=1, max_length=320, description="The user's id or user principal name."),
    ] = None,
    all_users: Annotated[
        bool, Field(description="End the sign-ins of every user of the tenant in your scope.")
    ] = False,
) -> SessionsEnded:
    """End every sign-in of one user, or of every user of the tenant (a suspected breach):
    their sessions and refresh tokens at once, and their access tokens at their next
    command. Each of them signs in again."""
    if (identity is None) == (not all_users):
        raise UsageError(
            "name one user with identity, or every user with all_users, not both.",
            hint="Revoke-UserSession -Identity alex@contoso, or Revoke-UserSession -AllUsers.",
        )
    if identity is not None:
        which = users_table.c.id == _find_in_scope(ctx, identity).id
    else:
        which = users_table.c.tenant_id == ctx.tenant.id
        in_scope = ctx.scope.users_clause(users_table.c.id)
        if in_scope is not None:
            which = which & in_scope
    affected = ctx.conn.execute(
        select(func.count()).select_from(users_table).where(which)
    ).scalar_one()
    return SessionsEnded(
        usersAffected=int(affected), sessionsEnded=end_sign_ins(ctx.conn, which, ctx.now)
    )


class GroupOut(BaseModel):
    id: str
    name: str
    description: str
    memberCount: int


def _group_out(ctx: CommandContext, group: groups.Group) -> GroupOut:
    return GroupOut(
        id=group.id,
        name=group.name,
        description=group.description,
        memberCount=groups.member_count(ctx.conn, group),
    )


GroupIdentity = Annotated[
    str, Field(min_length=1, max_length=256, description="The group's id or name.")
]


def _changeable_group(ctx: CommandContext, identity: str) -> groups.Group:
    """A group whose members the caller may change: a group that is a member of role
    groups gives their roles, so changing it needs every one of those roles."""
    group = groups.require_group(ctx.conn, ctx.tenant.id, identity)
    tiers.require_grantable(
        ctx.caller.grants, grants_through_group(ctx.conn, group.id), f"group {group.name}"
    )
    return group


@directory.command("Get-Group", lists=True)
def get_group(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None, Field(max_length=256, description="Only this group: an id or name.")
    ] = None,
) -> Listing[GroupOut]:
    """List groups in name order, with their member counts; or one group with -Identity."""
    members = (
        select(func.count())
        .select_from(group_members)
        .where(group_members.c.group_id == groups_table.c.id)
        .scalar_subquery()
        .label("member_count")
    )
    query = select(groups_table, members).where(groups_table.c.tenant_id == ctx.tenant.id)
    if identity is not None:
        query = query.where((groups_table.c.id == identity) | (groups_table.c.name == identity))
    return Listing(
        query=query,
        key=(groups_table.c.name, groups_table.c.id),
        to_item=lambda row: GroupOut(
            id=row.id, name=row.name, description=row.description, memberCount=row.member_count
        ),
    )


@directory.command("New-Group")
def new_group(
    ctx: CommandContext,
    *,
    name: Annotated[str, Field(min_length=1, max_length=256, description="The group's name.")],
    description: Annotated[str, Field(max_length=1024, description="What it is for.")] = "",
) -> GroupOut:
    """Create a group."""
    group = groups.create_group(
        ctx.conn, tenant_id=ctx.tenant.id, name=name, description=description, now=ctx.now
    )
    return _group_out(ctx, group)


@directory.command("Remove-Group", sensitive=True)
def remove_group(ctx: CommandContext, *, identity: GroupIdentity) -> GroupOut:
    """Delete a group; its members stay in the directory."""
    group = _changeable_group(ctx, identity)
    removed = _group_out(ctx, group)
    groups.delete_group(ctx.conn, group)
    return removed


@directory.command("Add-GroupMember")
def add_group_member(ctx: CommandContext, *, identity: GroupIdentity, member: Identity) -> GroupOut:
    """Add a user to a group (nothing changes if they already are a member)."""
    group = _changeable_group(ctx, identity)
    groups.add_member(ctx.conn, group, _find(ctx, member).id)
    return _group_out(ctx, group)


@directory.command("Remove-GroupMember", sensitive=True)
def remove_group_member(
    ctx: CommandContext, *, identity: GroupIdentity, member: Identity
) -> GroupOut:
    """Remove a user from a group."""
    group = _changeable_group(ctx, identity)
    if not groups.remove_member(ctx.conn, group, _find(ctx, member).id):
        raise NotFound(f"{member} is not a member of {group.name}.")
    return _group_out(ctx, group)


class RoleEntryOut(BaseModel):
    service: str
    command: str
    parameters: list[str] | None


class ManagementRole(BaseModel):
    name: str
    entries: list[RoleEntryOut]


@directory.command("Get-ManagementRole")
def get_management_role(
    ctx: CommandContext,
    *,
    identity: Annotated[str | None, Field(max_length=128, description="One role's name.")] = None,
) -> list[ManagementRole]:
    """The built-in roles and the commands (and parameters) each grants."""
    chosen: Mapping[str, tuple[RoleEntry, ...]] = ctx.roles
    if identity is not None:
        chosen = {identity: ctx.roles[identity]} if identity in ctx.roles else {}
    if identity is not None and not chosen:
        raise NotFound(f"no role '{identity}'.", hint="Get-ManagementRole lists them.")
    return [
        ManagementRole(
            name=name,
            entries=[
                RoleEntryOut(
                    service=e.service,
                    command=e.command,
                    parameters=sorted(e.parameters) if e.parameters is not None else None,
                )
                for e in entries
            ],
        )
        for name, entries in chosen.items()
    ]


# applications' commands before role groups', which stay last
directory.include(application_commands.commands)
directory.include(role_groups.commands)
