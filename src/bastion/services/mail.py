"""The mail service: mailboxes, their addresses, quotas, forwarding, litigation hold, usage
and the permissions others hold on them.

A *user* mailbox belongs to its directory user (one each): a role group scoped to a
department or a group manages the mailboxes of the users in its scope. *Shared* and *room*
mailboxes belong to the tenant, and so does an *inactive* mailbox, kept with no owner after
its user was removed while it was on litigation hold (``bastion.services.user_removal``): only
role groups without a scope read or change them. An inactive mailbox is read-only except
for its hold; once the hold is lifted it can be removed. A mailbox on hold cannot be
removed at all.

Addresses (``bastion.services.mail_addresses``) are unique in the tenant across primary
addresses and aliases. Permissions are part of their mailbox: whoever may manage a mailbox
grants and takes away FullAccess (open it) and SendAs (send as its address), to any user.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import (
    CompoundSelect,
    Row,
    Select,
    delete,
    false,
    insert,
    or_,
    select,
    union_all,
    update,
)

from bastion.core.errors import Conflict, NotFound, UsageError
from bastion.core.ids import new_id
from bastion.core.text import escape_control, has_control
from bastion.directory import users
from bastion.plane.command_context import CommandContext
from bastion.plane.listings import Listing
from bastion.plane.roles import RoleEntry, readers
from bastion.plane.service import Service
from bastion.services import mail_addresses as addresses
from bastion.services.lookups import find_user, visible
from bastion.store.schema import mail_addresses, mailbox_permissions, mailboxes
from bastion.store.schema import users as users_table

mail = Service(
    "mail",
    roles={"Mail Recipients Administrator": (RoleEntry("mail", "*"), readers("directory"))},
)

MailboxType = Literal["user", "shared", "room"]
AccessRight = Literal["FullAccess", "SendAs"]
MAX_QUOTA_MB = 102_400  # 100 GB
DEFAULT_QUOTA_MB: dict[str, int] = {"user": 51_200, "shared": 51_200, "room": 10_240}
MAX_ALIASES = 100
MIB = 1024 * 1024

MailboxIdentity = Annotated[
    str,
    Field(
        min_length=1,
        max_length=320,
        description="The mailbox: its id, one of its addresses, or its owner's id or user "
        "principal name.",
    ),
]
DisplayName = Annotated[
    str | None, Field(min_length=1, max_length=256, description="The name shown for it.")
]


class Mailbox(BaseModel):
    id: str
    type: MailboxType
    displayName: str
    primaryAddress: str
    #: the other addresses, sorted
    aliases: list[str]
    #: the owner of a user mailbox; None for shared, room and inactive mailboxes
    userId: str | None
    userPrincipalName: str | None
    quotaMb: int
    forwardingAddress: str | None
    deliverAndForward: bool
    litigationHold: bool
    litigationHoldSince: datetime | None
    inactive: bool
    createdAt: datetime


class MailboxStatistics(BaseModel):
    id: str
    primaryAddress: str
    itemCount: int
    totalSizeBytes: int
    quotaMb: int
    #: total size as a percentage of the quota, to two decimals
    percentUsed: float
    lastLogonTime: datetime | None


class MailboxPermission(BaseModel):
    trusteeId: str
    trusteeUserPrincipalName: str
    accessRight: AccessRight


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


_owner = users_table.alias("owner")
_named = mailboxes.alias("named")

#: what a :class:`Mailbox` is made of, in the order :func:`_mailbox` unpacks it
_COLUMNS = (
    mailboxes.c.id,
    mailboxes.c.type,
    mailboxes.c.display_name,
    mailboxes.c.primary_address,
    mailboxes.c.aliases,
    mailboxes.c.user_id,
    _owner.c.upn.label("owner_upn"),
    mailboxes.c.quota_mb,
    mailboxes.c.forwarding_address,
    mailboxes.c.deliver_and_forward,
    mailboxes.c.litigation_hold,
    mailboxes.c.litigation_hold_since,
    mailboxes.c.inactive,
    mailboxes.c.created_at,
)
#: usage, read by single-mailbox commands
_USAGE = (mailboxes.c.item_count, mailboxes.c.total_size_bytes, mailboxes.c.last_logon_at)


def _mailbox(row: Sequence[Any]) -> Mailbox:
    # Unpacked by position: a listing page makes thousands of these, and reading a row's
    # fields by name costs more than building the model.
    (
        mailbox_id,
        kind,
        display_name,
        primary_address,
        aliases,
        user_id,
        owner_upn,
        quota_mb,
        forwarding_address,
        deliver_and_forward,
        litigation_hold,
        litigation_hold_since,
        inactive,
        created_at,
        *_,
    ) = row
    return Mailbox(
        id=mailbox_id,
        type=kind,
        displayName=display_name,
        primaryAddress=primary_address,
        aliases=aliases,
        userId=user_id,
        userPrincipalName=owner_upn,
        quotaMb=quota_mb,
        forwardingAddress=forwarding_address,
        deliverAndForward=deliver_and_forward,
        litigationHold=litigation_hold,
        litigationHoldSince=_time(litigation_hold_since),
        inactive=inactive,
        createdAt=datetime.fromtimestamp(created_at, UTC),
    )


def _mailboxes(
    ctx: CommandContext, identity: str | None = None, *, usage: bool = False
) -> Select[Any]:
    """The tenant's mailboxes, each with its owner's user principal name (one query); with
    ``identity``, only those it names (:func:`_named_by`); with ``usage``, their usage too."""
    query = select(*_COLUMNS, *(_USAGE if usage else ())).select_from(
        mailboxes.outerjoin(_owner, _owner.c.id == mailboxes.c.user_id)
    )
    if identity is None:
        return query.where(mailboxes.c.tenant_id == ctx.tenant.id)
    return query.where(mailboxes.c.id.in_(_named_by(ctx, identity)))


def _named_by(ctx: CommandContext, identity: str) -> Select[Any] | CompoundSelect[Any]:
    """The ids of the tenant's mailboxes ``identity`` names: by id, by one of their
    addresses, or by their owner's id or user principal name; each an indexed lookup.

    Every branch keeps to the tenant, so the query around it needs no tenant condition of
    its own; with one, SQLite (which keeps no statistics here) would rather walk all the
    tenant's mailboxes in listing order, or by tenant, than look up these few."""
    if has_control(identity) or len(identity) > addresses.MAX_LENGTH:
        return select(_named.c.id).where(false())  # no mailbox or user has such a name
    lowered = identity.strip().lower()
    tenant = ctx.tenant.id
    by_id = select(_named.c.id).where(_named.c.id == identity, _named.c.tenant_id == tenant)
    by_address = select(mail_addresses.c.mailbox_id).where(
        mail_addresses.c.tenant_id == tenant, mail_addresses.c.address == lowered
    )
    owners = select(users_table.c.id).where(
        users_table.c.tenant_id == tenant,
        or_(users_table.c.id == identity, users_table.c.upn == lowered),
    )
    # a mailbox's owner is a user of its tenant
    by_owner = select(_named.c.id).where(_named.c.user_id.in_(owners))
    return union_all(by_id, by_address, by_owner)


def _read(ctx: CommandContext, identity: str, *, lock: bool = False) -> Row[Any]:
    """The one mailbox ``identity`` names, whoever owns it; 404 if none. With ``lock``, its
    row stays locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
    query = _mailboxes(ctx, identity, usage=True).limit(2)
    if lock:
        query = query.with_for_update(of=mailboxes)
    rows = ctx.conn.execute(query).all()
    shown = escape_control(identity)
    if not rows:
        raise NotFound(
            f"no mailbox '{shown}' in this tenant.",
            hint="Get-Mailbox lists mailboxes.",
            parameter="identity",
        )
    if len(rows) > 1:
        raise UsageError(
            f"parameter 'identity': '{shown}' names more than one mailbox.",
            hint="Give the mailbox's id (Get-Mailbox -Identity lists both).",
            parameter="identity",
        )
    return rows[0]


def _find(ctx: CommandContext, identity: str, *, lock: bool = False) -> Row[Any]:
    """A mailbox the caller may manage: its owner must be in scope (shared, room and
    inactive mailboxes are the tenant's)."""
    row = _read(ctx, identity, lock=lock)
    # named as the caller named it: a refusal tells nothing more about the mailbox
    ctx.scope.require(ctx.conn, row.user_id, f"mailbox '{escape_control(identity)}'")
    return row


def _get(ctx: CommandContext, mailbox_id: str) -> Mailbox:
    row = ctx.conn.execute(_mailboxes(ctx).where(mailboxes.c.id == mailbox_id)).one()
    return _mailbox(row)


def _missing(parameter: str, why: str) -> UsageError:
    return UsageError(f"parameter '{parameter}': {why}.", parameter=parameter)


@mail.command("Get-Mailbox", lists=True, scoped=True)
def get_mailbox(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None,
        Field(
            max_length=320,
            description="Only this mailbox: its id, one of its addresses, or its owner's id or "
            "user principal name.",
        ),
    ] = None,
    type: Annotated[
        MailboxType | None, Field(description="Only mailboxes of this type: user, shared or room.")
    ] = None,
    inactive: Annotated[
        bool | None,
        Field(
            description="true: only inactive mailboxes (kept on hold after their user was "
            "removed); false: only active ones."
        ),
    ] = None,
    litigation_hold: Annotated[
        bool | None, Field(description="true: only mailboxes on litigation hold; false: the rest.")
    ] = None,
) -> Listing[Mailbox]:
    """List mailboxes in primary address order, with their addresses, owner, quota,
    forwarding and hold; or one mailbox with -Identity."""
    query = _mailboxes(ctx, identity)
    in_scope = ctx.scope.users_clause(mailboxes.c.user_id)
    if in_scope is not None:
        query = query.where(in_scope)
    if type is not None:
        query = query.where(mailboxes.c.type == type)
    if inactive is not None:
        query = query.where(mailboxes.c.inactive.is_(inactive))
    if litigation_hold is not None:
        query = query.where(mailboxes.c.litigation_hold.is_(litigation_hold))
    return Listing(query=query, key=(mailboxes.c.primary_address, mailboxes.c.id), to_item=_mailbox)


@mail.command("New-Mailbox", scoped=True)
def new_mailbox(
    ctx: CommandContext,
    *,
    type: Annotated[
        MailboxType,
        Field(
            description="user: the mailbox of a directory user; shared: read and sent from by "
            "several people; room: a meeting room's calendar."
        ),
    ] = "user",
    user: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=320,
            description="For a user mailbox (required): its user, an id or user principal "
            "name, who has no mailbox yet.",
        ),
    ] = None,
    display_name: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=256,
            description="The name shown for it; required for shared and room mailboxes, a user "
            "mailbox defaults to its user's display name.",
        ),
    ] = None,
    primary_address: Annotated[
        str | None,
        Field(
            max_length=320,
            description="The address mail is sent from; required for shared and room "
            "mailboxes, a user mailbox defaults to its user's principal name.",
        ),
    ] = None,
    aliases: Annotated[
        tuple[str, ...],
        Field(
            max_length=MAX_ALIASES,
            description=f"Other addresses it receives mail at, at most {MAX_ALIASES}.",
        ),
    ] = (),
    quota_mb: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_QUOTA_MB,
            description=f"Storage quota in MB, 1 to {MAX_QUOTA_MB}; by default 51200 (50 GB) "
            "for user and shared mailboxes, 10240 for rooms.",
        ),
    ] = None,
) -> Mailbox:
    """Create a mailbox: a user's (one per user), a shared one or a room's. Every address
    must be free in the tenant."""
    owner: users.User | None = None
    if type == "user":
        if user is None:
            raise _missing("user", "a user mailbox needs its user (an id or principal name)")
        owner = find_user(ctx, user, "user")
        ctx.scope.require(ctx.conn, owner.id, f"a mailbox for user '{escape_control(user)}'")
        # One mailbox per user, also when two requests race (PostgreSQL; SQLite has one writer).
        ctx.conn.execute(
            select(users_table.c.id).where(users_table.c.id == owner.id).with_for_update()
        )
        has = ctx.conn.execute(
            select(mailboxes.c.primary_address).where(mailboxes.c.user_id == owner.id)
        ).scalar()
        if has is not None:
            raise Conflict(
                f"user {owner.upn} already has a mailbox, {has}.",
                hint="Set-Mailbox changes it.",
                parameter="user",
            )
        name = owner.display_name if display_name is None else visible(display_name, "display_name")
        if primary_address is None and not addresses.is_address(owner.upn):
            raise _missing(
                "primary_address",
                f"the user principal name {owner.upn} is not a mail address; give one",
            )
        primary = addresses.normalize(
            owner.upn if primary_address is None else primary_address, "primary_address"
        )
    else:
        if user is not None:
            raise UsageError(
                f"parameter 'user': a {type} mailbox belongs to no user.",
                hint="Leave user out, or create a user mailbox (type user).",
                parameter="user",
            )
        ctx.scope.require(ctx.conn, None, f"a {type} mailbox")
        if display_name is None:
            raise _missing("display_name", f"a {type} mailbox needs a display name")
        if primary_address is None:
            raise _missing("primary_address", f"a {type} mailbox needs a primary address")
        name = visible(display_name, "display_name")
        primary = addresses.normalize(primary_address, "primary_address")
    others = [a for a in addresses.normalize_all(aliases, "aliases") if a != primary]
    addresses.require_free(
        ctx.conn, ctx.tenant.id, {primary: "primary_address"} | dict.fromkeys(others, "aliases")
    )
    mailbox_id = new_id()
    ctx.conn.execute(
        insert(mailboxes).values(
            id=mailbox_id,
            tenant_id=ctx.tenant.id,
            user_id=owner.id if owner else None,
            type=type,
            display_name=name,
            primary_address=primary,
            aliases=sorted(others),
            quota_mb=quota_mb if quota_mb is not None else DEFAULT_QUOTA_MB[type],
            forwarding_address=None,
            deliver_and_forward=False,
            litigation_hold=False,
            litigation_hold_since=None,
            inactive=False,
            item_count=0,
            total_size_bytes=0,
            last_logon_at=None,
            created_at=ctx.now,
        )
    )
    ctx.conn.execute(
        insert(mail_addresses),
        [
            {
                "tenant_id": ctx.tenant.id,
                "address": address,
                "mailbox_id": mailbox_id,
                "is_primary": address == primary,
            }
            for address in [primary, *others]
        ],
    )
    return _get(ctx, mailbox_id)


def _change_addresses(
    ctx: CommandContext,
    row: Row[Any],
    primary_address: str | None,
    add_aliases: list[str] | None,
    remove_aliases: list[str] | None,
) -> tuple[set[str], dict[str, str]]:
    """Apply the address changes; (the mailbox's addresses after them, each new address
    mapped to the parameter that brought it)."""
    primary, others = addresses.addresses_of(ctx.conn, row.id)
    current = {primary, *others}
    wanted = (
        addresses.normalize(primary_address, "primary_address")
        if primary_address is not None
        else primary
    )
    adding = addresses.normalize_all(add_aliases or [], "add_aliases")
    removing = addresses.normalize_all(remove_aliases or [], "remove_aliases")
    for address in removing:
        if address in adding:
            raise UsageError(
                f"parameter 'remove_aliases': {address} is also in add_aliases.",
                parameter="remove_aliases",
            )
        if address == wanted:
            raise UsageError(
                f"parameter 'remove_aliases': {address} is the primary address, which a "
                "mailbox cannot be without.",
                hint="Make another address primary first (primary_address).",
                parameter="remove_aliases",
            )
        if address not in current:
            raise NotFound(
                f"{address} is not an address of mailbox {primary}.",
                hint="Get-Mailbox shows its addresses.",
                parameter="remove_aliases",
            )
    new = {a: "add_aliases" for a in adding if a not in current}
    if wanted not in current:
        new[wanted] = "primary_address"
    addresses.require_free(ctx.conn, ctx.tenant.id, new, row.id)
    if removing:
        ctx.conn.execute(
            delete(mail_addresses).where(
                mail_addresses.c.mailbox_id == row.id, mail_addresses.c.address.in_(removing)
            )
        )
    if wanted != primary:
        ctx.conn.execute(
            update(mail_addresses)
            .where(mail_addresses.c.mailbox_id == row.id)
            .values(is_primary=mail_addresses.c.address == wanted)
        )
    if new:
        ctx.conn.execute(
            insert(mail_addresses),
            [
                {
                    "tenant_id": ctx.tenant.id,
                    "address": address,
                    "mailbox_id": row.id,
                    "is_primary": address == wanted,
                }
                for address in sorted(new)
            ],
        )
    if new or removing or wanted != primary:
        addresses.write_aliases(ctx.conn, row.id)
    return (current | set(new)) - set(removing), new


@mail.command("Set-Mailbox", scoped=True)
def set_mailbox(
    ctx: CommandContext,
    *,
    identity: MailboxIdentity,
    display_name: DisplayName = None,
    primary_address: Annotated[
        str | None,
        Field(
            max_length=320,
            description="A new primary address: one of its aliases or a free address; the "
            "previous primary address stays as an alias.",
        ),
    ] = None,
    add_aliases: Annotated[
        list[str] | None,
        Field(max_length=MAX_ALIASES, description="Addresses to add; each must be free."),
    ] = None,
    remove_aliases: Annotated[
        list[str] | None,
        Field(
            max_length=MAX_ALIASES,
            description="Addresses to take away (not the primary address).",
        ),
    ] = None,
    quota_mb: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_QUOTA_MB,
            description=f"A new storage quota in MB, 1 to {MAX_QUOTA_MB}, not below what the "
            "mailbox holds.",
        ),
    ] = None,
    forwarding_address: Annotated[
        str | None,
        Field(
            max_length=320,
            description='Forward its mail to this address (not one of its own); "" stops '
            "forwarding.",
        ),
    ] = None,
    deliver_and_forward: Annotated[
        bool | None,
        Field(description="With forwarding: true keeps a copy in this mailbox too."),
    ] = None,
    litigation_hold: Annotated[
        bool | None,
        Field(
            description="true: keep everything in it, and refuse its removal, until the hold "
            "is lifted; false: lift the hold."
        ),
    ] = None,
) -> Mailbox:
    """Change a mailbox's display name, addresses, quota, forwarding or litigation hold. An
    inactive mailbox only has its litigation hold changed."""
    row = _find(ctx, identity, lock=True)
    given = {
        "display_name": display_name,
        "primary_address": primary_address,
        "add_aliases": add_aliases,
        "remove_aliases": remove_aliases,
        "quota_mb": quota_mb,
        "forwarding_address": forwarding_address,
        "deliver_and_forward": deliver_and_forward,
    }
    if row.inactive:
        refused = [name for name, value in given.items() if value is not None]
        if refused:
            raise Conflict(
                f"mailbox {row.primary_address} is inactive: it is kept, unchanged, for its "
                "litigation hold.",
                hint="Only litigation_hold can be changed; lift the hold to remove it.",
                parameter=refused[0],
            )
    changes: dict[str, Any] = {}
    if display_name is not None:
        changes["display_name"] = visible(display_name, "display_name")
    if quota_mb is not None:
        needed = -(-row.total_size_bytes // MIB)
        if quota_mb < needed:
            raise Conflict(
                f"mailbox {row.primary_address} holds {row.total_size_bytes} bytes "
                f"({needed} MB), more than {quota_mb} MB.",
                hint=f"Set a quota of at least {needed} MB, or free space first.",
                parameter="quota_mb",
            )
        changes["quota_mb"] = quota_mb
    own = {row.primary_address, *row.aliases}
    new: dict[str, str] = {}
    if primary_address is not None or add_aliases or remove_aliases:
        own, new = _change_addresses(ctx, row, primary_address, add_aliases, remove_aliases)
    if forwarding_address is not None:
        target = forwarding_address.strip()
        if target:
            target = addresses.normalize(target, "forwarding_address")
            if target in own:
                raise UsageError(
                    f"parameter 'forwarding_address': {target} is an address of this mailbox; "
                    "its mail would loop.",
                    hint="Forward to another mailbox or an outside address.",
                    parameter="forwarding_address",
                )
        changes["forwarding_address"] = target or None
    elif row.forwarding_address in new:
        raise Conflict(
            f"mailbox {row.primary_address} forwards to {row.forwarding_address}, which would "
            "become its own address.",
            hint='Stop or change the forwarding first (forwarding_address "" or another).',
            parameter=new[row.forwarding_address],
        )
    if deliver_and_forward is not None:
        changes["deliver_and_forward"] = deliver_and_forward
    if litigation_hold is not None and litigation_hold != row.litigation_hold:
        changes["litigation_hold"] = litigation_hold
        changes["litigation_hold_since"] = ctx.now if litigation_hold else None
    if changes:
        ctx.conn.execute(update(mailboxes).where(mailboxes.c.id == row.id).values(**changes))
    return _get(ctx, row.id)


@mail.command("Remove-Mailbox", sensitive=True, scoped=True)
def remove_mailbox(ctx: CommandContext, *, identity: MailboxIdentity) -> Mailbox:
    """Delete a mailbox with its content, addresses and permissions. A mailbox on litigation
    hold cannot be removed."""
    row = _find(ctx, identity, lock=True)
    if row.litigation_hold:
        raise Conflict(
            f"mailbox {row.primary_address} is on litigation hold.",
            hint="Lift the hold first (Set-Mailbox with litigation_hold false), then remove it.",
        )
    removed = _mailbox(row)
    # its addresses and permissions go with it (ON DELETE CASCADE)
    ctx.conn.execute(delete(mailboxes).where(mailboxes.c.id == row.id))
    return removed


@mail.command("Get-MailboxStatistics", scoped=True)
def get_mailbox_statistics(ctx: CommandContext, *, identity: MailboxIdentity) -> MailboxStatistics:
    """A mailbox's usage: item count, total size, quota, the share of the quota used and the
    last time someone signed in to it."""
    row = _find(ctx, identity)
    return MailboxStatistics(
        id=row.id,
        primaryAddress=row.primary_address,
        itemCount=row.item_count,
        totalSizeBytes=row.total_size_bytes,
        quotaMb=row.quota_mb,
        percentUsed=round(100 * row.total_size_bytes / (row.quota_mb * MIB), 2),
        lastLogonTime=_time(row.last_logon_at),
    )


def _permissions(
    ctx: CommandContext,
    mailbox_id: str,
    trustee_id: str | None = None,
    right: str | None = None,
) -> list[MailboxPermission]:
    query = (
        select(
            mailbox_permissions.c.trustee_id,
            mailbox_permissions.c.access_right,
            users_table.c.upn,
        )
        .select_from(
            mailbox_permissions.join(
                users_table, users_table.c.id == mailbox_permissions.c.trustee_id
            )
        )
        .where(mailbox_permissions.c.mailbox_id == mailbox_id)
        .order_by(users_table.c.upn, users_table.c.id, mailbox_permissions.c.access_right)
    )
    if trustee_id is not None:
        query = query.where(mailbox_permissions.c.trustee_id == trustee_id)
    if right is not None:
        query = query.where(mailbox_permissions.c.access_right == right)
    return [
        MailboxPermission(
            trusteeId=row.trustee_id, trusteeUserPrincipalName=row.upn, accessRight=row.access_right
        )
        for row in ctx.conn.execute(query)
    ]


AccessRights = Annotated[
    AccessRight,
    Field(description="FullAccess (open the mailbox and read it) or SendAs (send as it)."),
]
Trustee = Annotated[
    str,
    Field(
        min_length=1,
        max_length=320,
        description="Who holds the permission: a user id or principal name.",
    ),
]


@mail.command("Get-MailboxPermission", scoped=True)
def get_mailbox_permission(
    ctx: CommandContext, *, identity: MailboxIdentity
) -> list[MailboxPermission]:
    """Who may open a mailbox (FullAccess) or send as it (SendAs), in user principal name
    order. Its owner's own access is not listed."""
    return _permissions(ctx, _find(ctx, identity).id)


@mail.command("Add-MailboxPermission", scoped=True)
def add_mailbox_permission(
    ctx: CommandContext,
    *,
    identity: MailboxIdentity,
    user: Trustee,
    access_rights: AccessRights,
) -> MailboxPermission:
    """Let a user open a mailbox (FullAccess) or send as it (SendAs). Nothing changes if they
    already may."""
    row = _find(ctx, identity, lock=True)
    if row.inactive:
        raise Conflict(
            f"mailbox {row.primary_address} is inactive: it is kept, unchanged, for its "
            "litigation hold.",
            hint="Permissions on it can be taken away, not given.",
        )
    trustee = find_user(ctx, user, "user")
    if trustee.id == row.user_id:
        raise UsageError(
            f"parameter 'user': {trustee.upn} owns mailbox {row.primary_address} and needs "
            "no permission on it.",
            parameter="user",
        )
    if not _permissions(ctx, row.id, trustee.id, access_rights):
        ctx.conn.execute(
            insert(mailbox_permissions).values(
                tenant_id=ctx.tenant.id,
                mailbox_id=row.id,
                trustee_id=trustee.id,
                access_right=access_rights,
                created_at=ctx.now,
            )
        )
    return _permissions(ctx, row.id, trustee.id, access_rights)[0]


@mail.command("Remove-MailboxPermission", sensitive=True, scoped=True)
def remove_mailbox_permission(
    ctx: CommandContext,
    *,
    identity: MailboxIdentity,
    user: Trustee,
    access_rights: AccessRights,
) -> MailboxPermission:
    """Take a permission on a mailbox away from a user."""
    row = _find(ctx, identity, lock=True)
    trustee = find_user(ctx, user, "user")
    found = _permissions(ctx, row.id, trustee.id, access_rights)
    if not found:
        raise NotFound(
            f"{trustee.upn} has no {access_rights} permission on mailbox {row.primary_address}.",
            hint="Get-MailboxPermission lists them.",
        )
    ctx.conn.execute(
        delete(mailbox_permissions).where(
            mailbox_permissions.c.mailbox_id == row.id,
            mailbox_permissions.c.trustee_id == trustee.id,
            mailbox_permissions.c.access_right == access_rights,
        )
    )
    return found[0]
