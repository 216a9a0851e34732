"""The chat service: meeting and messaging policies, and which of them applies to whom.

Each kind of policy has a ``Global`` policy that applies to every user without an assignment
of that kind; ``Grant-ChatPolicy`` assigns another one, or takes the assignment away.
Policies are tenant-wide objects: only role groups without a scope read or change them. An
assignment belongs to its user, so a role group scoped to a department or a group grants
policies to, and lists, the users in its scope.

A policy's settings are declared once, in ``bastion.directory.chat_policies``: New- and
Set- commands take every setting as a parameter of the same type, constraints and help,
named in snake_case (``allowRecording`` is ``allow_recording``). Policy names are compared without
regard to case, so there is one ``Global`` of each kind.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from bastion.core.errors import Conflict, NotFound, UsageError
from bastion.core.ids import new_id
from bastion.core.text import has_control
from bastion.directory.chat_policies import (
    GLOBAL,
    SETTINGS,
    MeetingSettings,
    MessagingSettings,
    PolicyKind,
)
from bastion.plane.command_context import CommandContext
from bastion.plane.listings import Listing
from bastion.plane.roles import RoleEntry, readers
from bastion.plane.service import Service
from bastion.services.lookups import find_user
from bastion.store.schema import chat_policies, chat_policy_assignments
from bastion.store.schema import users as users_table

chat = Service(
    "chat",
    roles={"Chat Administrator": (RoleEntry("chat", "*"), readers("directory"))},
)

F = TypeVar("F", bound=Callable[..., Any])


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


#: for each kind: parameter name -> setting name
PARAMETERS: dict[str, dict[str, str]] = {
    kind: {_snake(name): name for name in model.model_fields} for kind, model in SETTINGS.items()
}


def _settings_parameters(kind: PolicyKind, *, changes: bool) -> Callable[[F], F]:
    """Declare each setting of ``kind`` as a keyword parameter of the decorated command,
    which receives them as ``**settings``. Creating (``changes=False``), a parameter defaults
    to the setting's default; changing, to None: unchanged.

    ``plane.declare`` reads a command's signature and type hints, so this extends both: the
    catalog, validation and the parameter schema then treat these parameters like any other.
    """
    model = SETTINGS[kind]
    annotated: Any = Annotated  # built at run time from the model's fields

    def extend(command_function: F) -> F:
        signature = inspect.signature(command_function)
        hints = typing.get_type_hints(command_function, include_extras=True)
        kept = [
            p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        added: list[inspect.Parameter] = []
        for parameter, setting in PARAMETERS[kind].items():
            field = model.model_fields[setting]
            value_type: Any = field.annotation
            if field.metadata:  # constraints such as ge= and le=
                value_type = annotated[(value_type, *field.metadata)]
            if changes:
                value_type = value_type | None
            hint = annotated[value_type, Field(description=field.description)]
            default = None if changes else field.get_default(call_default_factory=True)
            added.append(
                inspect.Parameter(
                    parameter, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint
                )
            )
            hints[parameter] = hint
        target: Any = command_function
        target.__signature__ = signature.replace(parameters=[*kept, *added])
        target.__annotations__ = hints
        return command_function

    return extend


class _PolicyHead(BaseModel):
    id: str
    name: str
    description: str


class MeetingPolicy(MeetingSettings, _PolicyHead):
    kind: ClassVar[PolicyKind] = "meeting"
    #: Global: the users without a meeting policy assignment; any other: those assigned it
    userCount: int


class MessagingPolicy(MessagingSettings, _PolicyHead):
    kind: ClassVar[PolicyKind] = "messaging"
    #: Global: the users without a messaging policy assignment; any other: those assigned it
    userCount: int


P = TypeVar("P", MeetingPolicy, MessagingPolicy)


class ChatUser(BaseModel):
    id: str
    userPrincipalName: str
    displayName: str
    department: str
    #: the name of the meeting policy that applies: the one assigned, else Global
    meetingPolicy: str
    messagingPolicy: str


PolicyIdentity = Annotated[
    str, Field(min_length=1, max_length=128, description="The policy's name or id.")
]
PolicyName = Annotated[str, Field(min_length=1, max_length=128, description="The policy's name.")]
Description = Annotated[str, Field(max_length=1024, description="What the policy is for.")]


def _same_name(column: ColumnElement[str], name: str) -> ColumnElement[bool]:
    return func.lower(column) == func.lower(literal(name.strip()))


def _text(value: str, parameter: str, *, empty: bool = False) -> str:
    text = value.strip()
    if (not text and not empty) or has_control(text):
        raise UsageError(
            f"parameter '{parameter}': must be visible text.",
            hint="Use letters, digits, spaces and punctuation; no control characters.",
            parameter=parameter,
        )
    return text


def _policies(ctx: CommandContext, kind: PolicyKind) -> Select[Any]:
    """The tenant's policies of one kind, each with the number of users it applies to."""
    assigned = (
        select(func.count())
        .select_from(chat_policy_assignments)
        .where(chat_policy_assignments.c.policy_id == chat_policies.c.id)
        .scalar_subquery()
    )
    unassigned = (
        select(func.count())
        .select_from(users_table)
        .where(
            users_table.c.tenant_id == ctx.tenant.id,
            ~exists().where(
                chat_policy_assignments.c.user_id == users_table.c.id,
                chat_policy_assignments.c.kind == kind,
            ),
        )
        .scalar_subquery()
    )
    user_count = case((chat_policies.c.name == GLOBAL, unassigned), else_=assigned)
    return (
        select(chat_policies, user_count.label("user_count"))
        .where(chat_policies.c.tenant_id == ctx.tenant.id, chat_policies.c.kind == kind)
        .order_by(case((chat_policies.c.name == GLOBAL, 0), else_=1), chat_policies.c.name)
    )


def _out(policy: type[P], row: Any) -> P:
    settings = SETTINGS[policy.kind].model_validate(row.settings)
    return policy(
        id=row.id,
        name=row.name,
        description=row.description,
        userCount=row.user_count,
        **settings.model_dump(),
    )


def _find_policy(ctx: CommandContext, kind: PolicyKind, identity: str, parameter: str) -> Any:
    """The stored row of a policy, by name (any case) or id; 404 naming ``parameter``."""
    row = None
    if not has_control(identity):
        row = ctx.conn.execute(
            _policies(ctx, kind).where(
                or_(chat_policies.c.id == identity, _same_name(chat_policies.c.name, identity))
            )
        ).first()
    if row is None:
        command_name = f"Get-{kind.capitalize()}Policy"
        raise NotFound(
            f"no {kind} policy '{identity}' in this tenant.",
            hint=f"{command_name} lists them.",
            parameter=parameter,
        )
    return row


def _get(ctx: CommandContext, policy: type[P], identity: str | None) -> list[P]:
    if identity is not None:
        return [_out(policy, _find_policy(ctx, policy.kind, identity, "identity"))]
    return [_out(policy, row) for row in ctx.conn.execute(_policies(ctx, policy.kind))]


def _new(
    ctx: CommandContext, policy: type[P], name: str, description: str, settings: dict[str, Any]
) -> P:
    kind = policy.kind
    name = _text(name, "name")
    description = _text(description, "description", empty=True)
    taken = ctx.conn.execute(
        select(chat_policies.c.name).where(
            chat_policies.c.tenant_id == ctx.tenant.id,
            chat_policies.c.kind == kind,
            _same_name(chat_policies.c.name, name),
        )
    ).scalar()
    if taken is not None:
        raise Conflict(
            f"there is already a {kind} policy named '{taken}'.",
            hint=f"Choose another name, or change that policy with Set-{kind.capitalize()}Policy.",
            parameter="name",
        )
    values = _settings(kind, {}, settings)
    policy_id = new_id()
    ctx.conn.execute(
        insert(chat_policies).values(
            id=policy_id,
            tenant_id=ctx.tenant.id,
            kind=kind,
            name=name,
            description=description,
            settings=values,
            created_at=ctx.now,
        )
    )
    return _out(policy, _find_policy(ctx, kind, policy_id, "name"))


def _set(
    ctx: CommandContext,
    policy: type[P],
    identity: str,
    description: str | None,
    settings: dict[str, Any],
) -> P:
    kind = policy.kind
    row = _find_policy(ctx, kind, identity, "identity")
    changes: dict[str, Any] = {"settings": _settings(kind, row.settings, settings)}
    if description is not None:
        changes["description"] = _text(description, "description", empty=True)
    ctx.conn.execute(update(chat_policies).where(chat_policies.c.id == row.id).values(**changes))
    return _out(policy, _find_policy(ctx, kind, row.id, "identity"))


def _settings(kind: PolicyKind, stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Stored settings with the given parameters (None: unchanged), validated by the model."""
    names = PARAMETERS[kind]
    changes = {names[p]: value for p, value in given.items() if value is not None}
    try:
        merged = SETTINGS[kind].model_validate({**stored, **changes})
    except ValidationError as exc:
        first = exc.errors()[0]
        setting = str(first["loc"][0]) if first["loc"] else ""
        parameter = next((p for p, s in names.items() if s == setting), setting)
        raise UsageError(f"parameter '{parameter}': {first['msg']}.", parameter=parameter) from exc
    return merged.model_dump(mode="json")


@chat.command("Get-MeetingPolicy")
def get_meeting_policy(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None, Field(max_length=128, description="Only this policy: a name or id.")
    ] = None,
) -> list[MeetingPolicy]:
    """Meeting policies with their settings and how many users each applies to, Global
    first."""
    return _get(ctx, MeetingPolicy, identity)


@chat.command("New-MeetingPolicy")
@_settings_parameters("meeting", changes=False)
def new_meeting_policy(
    ctx: CommandContext, *, name: PolicyName, description: Description = "", **settings: Any
) -> MeetingPolicy:
    """Create a meeting policy. Settings not given take their defaults; Grant-ChatPolicy
    assigns the policy to users."""
    return _new(ctx, MeetingPolicy, name, description, settings)


@chat.command("Set-MeetingPolicy")
@_settings_parameters("meeting", changes=True)
def set_meeting_policy(
    ctx: CommandContext,
    *,
    identity: PolicyIdentity,
    description: Annotated[
        str | None, Field(max_length=1024, description="A new description.")
    ] = None,
    **settings: Any,
) -> MeetingPolicy:
    """Change a meeting policy's description or settings (Global's too); settings not given
    stay as they are. The change applies to every user the policy applies to."""
    return _set(ctx, MeetingPolicy, identity, description, settings)


@chat.command("Get-MessagingPolicy")
def get_messaging_policy(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None, Field(max_length=128, description="Only this policy: a name or id.")
    ] = None,
) -> list[MessagingPolicy]:
    """Messaging policies with their settings and how many users each applies to, Global
    first."""
    return _get(ctx, MessagingPolicy, identity)


@chat.command("New-MessagingPolicy")
@_settings_parameters("messaging", changes=False)
def new_messaging_policy(
    ctx: CommandContext, *, name: PolicyName, description: Description = "", **settings: Any
) -> MessagingPolicy:
    """Create a messaging policy. Settings not given take their defaults; Grant-ChatPolicy
    assigns the policy to users."""
    return _new(ctx, MessagingPolicy, name, description, settings)


@chat.command("Set-MessagingPolicy")
@_settings_parameters("messaging", changes=True)
def set_messaging_policy(
    ctx: CommandContext,
    *,
    identity: PolicyIdentity,
    description: Annotated[
        str | None, Field(max_length=1024, description="A new description.")
    ] = None,
    **settings: Any,
) -> MessagingPolicy:
    """Change a messaging policy's description or settings (Global's too); settings not
    given stay as they are. The change applies to every user the policy applies to."""
    return _set(ctx, MessagingPolicy, identity, description, settings)


def _chat_users(ctx: CommandContext) -> tuple[Select[Any], ColumnElement[str], ColumnElement[str]]:
    """Users with the names of the meeting and messaging policies that apply to them (one
    query), and those two names as expressions to filter on."""
    names: dict[str, ColumnElement[str]] = {}
    joined: Any = users_table
    for kind in ("meeting", "messaging"):
        assignment = chat_policy_assignments.alias(f"{kind}_assignment")
        policy = chat_policies.alias(f"{kind}_policy")
        joined = joined.outerjoin(
            assignment,
            and_(assignment.c.user_id == users_table.c.id, assignment.c.kind == kind),
        ).outerjoin(policy, policy.c.id == assignment.c.policy_id)
        names[kind] = func.coalesce(policy.c.name, GLOBAL)
    query = (
        select(
            users_table.c.id,
            users_table.c.upn,
            users_table.c.display_name,
            users_table.c.department,
            names["meeting"].label("meeting_policy"),
            names["messaging"].label("messaging_policy"),
        )
        .select_from(joined)
        .where(users_table.c.tenant_id == ctx.tenant.id)
    )
    return query, names["meeting"], names["messaging"]


def _chat_user(row: Any) -> ChatUser:
    return ChatUser(
        id=row.id,
        userPrincipalName=row.upn,
        displayName=row.display_name,
        department=row.department,
        meetingPolicy=row.meeting_policy,
        messagingPolicy=row.messaging_policy,
    )


PolicyType = Annotated[PolicyKind, Field(description="The kind of policy: meeting or messaging.")]


@chat.command("Get-ChatUser", lists=True, scoped=True)
def get_chat_user(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None,
        Field(max_length=320, description="Only this user: an id or user principal name."),
    ] = None,
    department: Annotated[
        str | None, Field(max_length=128, description="Only users of this department.")
    ] = None,
    policy_name: Annotated[
        str | None,
        Field(
            max_length=128,
            description="Only users to whom this policy applies (Global: those without an "
            "assignment).",
        ),
    ] = None,
    policy_type: Annotated[
        PolicyKind | None,
        Field(description="With policy_name: look only at policies of this kind."),
    ] = None,
) -> Listing[ChatUser]:
    """List users in user principal name order with the meeting and messaging policies that
    apply to them: the one assigned, else Global."""
    if policy_type is not None and policy_name is None:
        raise UsageError(
            "parameter 'policy_type': narrows policy_name, which is missing.",
            hint="Give policy_name too, or leave policy_type out.",
            parameter="policy_type",
        )
    query, meeting, messaging = _chat_users(ctx)
    in_scope = ctx.scope.users_clause(users_table.c.id)
    if in_scope is not None:
        query = query.where(in_scope)
    if any(has_control(v) for v in (identity, department, policy_name) if v is not None):
        query = query.where(false())  # no user or policy has such a name
    if identity is not None:
        query = query.where(
            (users_table.c.upn == identity.strip().lower()) | (users_table.c.id == identity)
        )
    if department is not None:
        query = query.where(users_table.c.department == department.strip())
    if policy_name is not None:
        applied = {"meeting": meeting, "messaging": messaging}
        kinds = [policy_type] if policy_type is not None else ["meeting", "messaging"]
        query = query.where(or_(*(_same_name(applied[k], policy_name) for k in kinds)))
    return Listing(query=query, key=(users_table.c.upn, users_table.c.id), to_item=_chat_user)


@chat.command("Grant-ChatPolicy", scoped=True)
def grant_chat_policy(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str,
        Field(min_length=1, max_length=320, description="The user: an id or principal name."),
    ],
    policy_type: PolicyType,
    policy_name: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=128,
            description="The policy to assign (a name or id); Global or null takes the "
            "assignment away, so the Global policy applies.",
        ),
    ],
) -> ChatUser:
    """Assign a meeting or messaging policy to a user, replacing the one they had; or take
    it away so the Global policy applies again."""
    user = find_user(ctx, identity, "identity", hint="Get-ChatUser lists users.")
    ctx.scope.require(ctx.conn, user.id, f"user {user.upn}")
    policy = (
        _find_policy(ctx, policy_type, policy_name, "policy_name")
        if policy_name is not None
        else None
    )
    ctx.conn.execute(
        delete(chat_policy_assignments).where(
            chat_policy_assignments.c.user_id == user.id,
            chat_policy_assignments.c.kind == policy_type,
        )
    )
    if policy is not None and policy.name != GLOBAL:
        ctx.conn.execute(
            insert(chat_policy_assignments).values(
                tenant_id=ctx.tenant.id, user_id=user.id, kind=policy_type, policy_id=policy.id
            )
        )
    query, _, _ = _chat_users(ctx)
    return _chat_user(ctx.conn.execute(query.where(users_table.c.id == user.id)).one())
