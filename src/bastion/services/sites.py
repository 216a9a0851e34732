"""The sites service: team and communication sites, their owners, members and storage.

A site belongs to its owner, a directory user: a role group scoped to a department or a
group may manage the sites whose owners are in its scope, and give them only owners in its
scope. A site whose owner was removed from the directory is *ownerless* (kept, see
``bastion.services.user_removal``); it belongs to the tenant until a sites administrator
without a scope gives it a new owner. Members are part of their site: whoever may manage a
site manages its membership, whichever users they add. The owner is always a member with
the ``Owner`` role, so the owner cannot be removed or demoted before another user becomes
the owner.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Select, delete, false, insert, select, update

from bastion.core.errors import Conflict, NotFound
from bastion.core.ids import new_id
from bastion.core.text import has_control
from bastion.plane.command_context import CommandContext
from bastion.plane.listings import Listing
from bastion.plane.roles import RoleEntry, readers
from bastion.plane.service import Service
from bastion.services.lookups import find_user, visible
from bastion.store.schema import site_members
from bastion.store.schema import sites as sites_table
from bastion.store.schema import users as users_table

sites = Service(
    "sites",
    roles={"Sites Administrator": (RoleEntry("sites", "*"), readers("directory"))},
)

Sharing = Literal["Disabled", "ExistingExternalUsers", "ExternalUsers", "Anyone"]
SiteRole = Literal["Visitor", "Member", "Owner"]
URL_PATTERN = r"^/(sites|teams)/[a-z0-9-]{1,64}$"
MAX_QUOTA_MB = 26_214_400  # 25 TB

SiteIdentity = Annotated[
    str, Field(min_length=1, max_length=512, description="The site's id or URL (/sites/name).")
]
Title = Annotated[str, Field(min_length=1, max_length=256, description="The site's title.")]
Quota = Annotated[
    int,
    Field(ge=1, le=MAX_QUOTA_MB, description=f"Storage quota in MB, 1 to {MAX_QUOTA_MB}."),
]
SharingParameter = Annotated[
    Sharing,
    Field(
        description="Sharing with people outside the organization: Disabled, "
        "ExistingExternalUsers, ExternalUsers (new guests) or Anyone (links without sign-in)."
    ),
]


class Site(BaseModel):
    id: str
    url: str
    title: str
    #: None for an ownerless site (its owner was removed from the directory)
    ownerId: str | None
    ownerUserPrincipalName: str | None
    storageQuotaMb: int
    storageUsedMb: int
    sharing: Sharing
    createdAt: datetime


class SiteMember(BaseModel):
    userId: str
    userPrincipalName: str
    role: SiteRole


def _site(row: Any) -> Site:
    return Site(
        id=row.id,
        url=row.url,
        title=row.title,
        ownerId=row.owner_id,
        ownerUserPrincipalName=row.owner_upn,
        storageQuotaMb=row.storage_quota_mb,
        storageUsedMb=row.storage_used_mb,
        sharing=row.sharing,
        createdAt=datetime.fromtimestamp(row.created_at, UTC),
    )


def _sites_with_owner(ctx: CommandContext) -> Select[Any]:
    """The tenant's sites, each with its owner's user principal name (one query)."""
    return (
        select(sites_table, users_table.c.upn.label("owner_upn"))
        .select_from(sites_table.outerjoin(users_table, users_table.c.id == sites_table.c.owner_id))
        .where(sites_table.c.tenant_id == ctx.tenant.id)
    )


def _read_site(ctx: CommandContext, identity: str) -> Site:
    """A site by id or URL, whoever owns it; 404 if there is none."""
    row = None
    if not has_control(identity):
        row = ctx.conn.execute(
            _sites_with_owner(ctx).where(
                (sites_table.c.id == identity) | (sites_table.c.url == identity.strip().lower())
            )
        ).first()
    if row is None:
        raise NotFound(f"no site '{identity}' in this tenant.", hint="Get-Site lists sites.")
    return _site(row)


def _find_site(ctx: CommandContext, identity: str) -> Site:
    """A site the caller may manage: its owner must be in scope (an ownerless site is the
    tenant's)."""
    site = _read_site(ctx, identity)
    ctx.scope.require(ctx.conn, site.ownerId, f"site {site.url}")
    return site


def _set_member(ctx: CommandContext, site_id: str, user_id: str, role: SiteRole) -> None:
    """Add a member, or change the role of one."""
    changed = ctx.conn.execute(
        update(site_members)
        .where(site_members.c.site_id == site_id, site_members.c.user_id == user_id)
        .values(role=role)
    ).rowcount
    if not changed:
        ctx.conn.execute(
            insert(site_members).values(
                tenant_id=ctx.tenant.id, site_id=site_id, user_id=user_id, role=role
            )
        )


@sites.command("Get-Site", lists=True, scoped=True)
def get_site(
    ctx: CommandContext,
    *,
    identity: Annotated[
        str | None, Field(max_length=512, description="Only this site: an id or URL.")
    ] = None,
    owner: Annotated[
        str | None,
        Field(max_length=320, description="Only sites of this owner: a user id or principal name."),
    ] = None,
    ownerless: Annotated[
        bool | None,
        Field(
            description="true: only sites whose owner was removed from the directory; "
            "false: only sites with an owner."
        ),
    ] = None,
) -> Listing[Site]:
    """List sites in URL order, with their owner, quota, usage and sharing; or one site with
    -Identity. Sites whose owner was removed are listed with -Ownerless."""
    query = _sites_with_owner(ctx)
    in_scope = ctx.scope.users_clause(sites_table.c.owner_id)
    if in_scope is not None:
        query = query.where(in_scope)
    if any(has_control(value) for value in (identity, owner) if value is not None):
        query = query.where(false())  # no site or user has such a name
    if identity is not None:
        query = query.where(
            (sites_table.c.id == identity) | (sites_table.c.url == identity.strip().lower())
        )
    if owner is not None:
        query = query.where(
            (users_table.c.id == owner) | (users_table.c.upn == owner.strip().lower())
        )
    if ownerless is not None:
        query = query.where(
            sites_table.c.owner_id.is_(None) if ownerless else sites_table.c.owner_id.isnot(None)
        )
    return Listing(query=query, key=(sites_table.c.url, sites_table.c.id), to_item=_site)


@sites.command("New-Site", scoped=True)
def new_site(
    ctx: CommandContext,
    *,
    url: Annotated[
        str,
        Field(
            pattern=URL_PATTERN,
            description="The site's path: /sites/<name> or /teams/<name>, the name 1 to 64 "
            "lower-case letters, digits and hyphens.",
        ),
    ],
    title: Title,
    owner: Annotated[
        str,
        Field(min_length=1, max_length=320, description="The owner: a user id or principal name."),
    ],
    storage_quota_mb: Quota = 25_600,
    sharing: SharingParameter = "ExistingExternalUsers",
) -> Site:
    """Create a site. Its owner also becomes a member with the Owner role."""
    title = visible(title, "title")
    user = find_user(ctx, owner, "owner")
    ctx.scope.require(ctx.conn, user.id, f"user {user.upn}")
    taken = ctx.conn.execute(
        select(sites_table.c.id).where(
            sites_table.c.tenant_id == ctx.tenant.id, sites_table.c.url == url
        )
    ).first()
    if taken is not None:
        raise Conflict(f"the URL {url} is taken.", hint="Choose another name.", parameter="url")
    site_id = new_id()
    ctx.conn.execute(
        insert(sites_table).values(
            id=site_id,
            tenant_id=ctx.tenant.id,
            url=url,
            title=title,
            owner_id=user.id,
            storage_quota_mb=storage_quota_mb,
            storage_used_mb=0,
            sharing=sharing,
            created_at=ctx.now,
        )
    )
    _set_member(ctx, site_id, user.id, "Owner")
    return _read_site(ctx, site_id)


@sites.command("Set-Site", scoped=True)
def set_site(
    ctx: CommandContext,
    *,
    identity: SiteIdentity,
    title: Annotated[
        str | None, Field(min_length=1, max_length=256, description="A new title.")
    ] = None,
    owner: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=320,
            description="A new owner (a user id or principal name); they become an Owner member "
            "and the previous owner stays a member.",
        ),
    ] = None,
    storage_quota_mb: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_QUOTA_MB,
            description=f"A new storage quota in MB, 1 to {MAX_QUOTA_MB}, not below what the "
            "site uses.",
        ),
    ] = None,
    sharing: Annotated[Sharing | None, Field(description="New external sharing.")] = None,
) -> Site:
    """Change a site's title, owner, storage quota or external sharing. This is also how an
    ownerless site gets a new owner."""
    site = _find_site(ctx, identity)
    changes: dict[str, Any] = {}
    if title is not None:
        changes["title"] = visible(title, "title")
    if storage_quota_mb is not None:
        if storage_quota_mb < site.storageUsedMb:
            raise Conflict(
                f"site {site.url} uses {site.storageUsedMb} MB, more than {storage_quota_mb} MB.",
                hint=f"Set a quota of at least {site.storageUsedMb} MB, or free space first.",
                parameter="storage_quota_mb",
            )
        changes["storage_quota_mb"] = storage_quota_mb
    if sharing is not None:
        changes["sharing"] = sharing
    if owner is not None:
        user = find_user(ctx, owner, "owner")
        ctx.scope.require(ctx.conn, user.id, f"user {user.upn}")
        changes["owner_id"] = user.id
        _set_member(ctx, site.id, user.id, "Owner")
    if changes:
        ctx.conn.execute(update(sites_table).where(sites_table.c.id == site.id).values(**changes))
    return _read_site(ctx, site.id)


@sites.command("Remove-Site", sensitive=True, scoped=True)
def remove_site(ctx: CommandContext, *, identity: SiteIdentity) -> Site:
    """Delete a site with its content and its member list."""
    site = _find_site(ctx, identity)
    ctx.conn.execute(delete(site_members).where(site_members.c.site_id == site.id))
    ctx.conn.execute(delete(sites_table).where(sites_table.c.id == site.id))
    return site


def _members(ctx: CommandContext, site: Site, user_id: str | None = None) -> list[SiteMember]:
    query = (
        select(site_members.c.user_id, site_members.c.role, users_table.c.upn)
        .select_from(site_members.join(users_table, users_table.c.id == site_members.c.user_id))
        .where(site_members.c.site_id == site.id)
        .order_by(users_table.c.upn, users_table.c.id)
    )
    if user_id is not None:
        query = query.where(site_members.c.user_id == user_id)
    return [
        SiteMember(userId=row.user_id, userPrincipalName=row.upn, role=row.role)
        for row in ctx.conn.execute(query)
    ]


@sites.command("Get-SiteMember", scoped=True)
def get_site_member(ctx: CommandContext, *, identity: SiteIdentity) -> list[SiteMember]:
    """A site's members and their roles (Visitor reads, Member edits, Owner has full
    control), in user principal name order."""
    return _members(ctx, _find_site(ctx, identity))


@sites.command("Add-SiteMember", scoped=True)
def add_site_member(
    ctx: CommandContext,
    *,
    identity: SiteIdentity,
    user: Annotated[
        str,
        Field(min_length=1, max_length=320, description="The user: an id or principal name."),
    ],
    role: Annotated[
        SiteRole,
        Field(description="Visitor (reads), Member (edits) or Owner (full control)."),
    ] = "Member",
) -> SiteMember:
    """Add a user to a site, or change the role of a member."""
    site = _find_site(ctx, identity)
    member = find_user(ctx, user, "user")
    if member.id == site.ownerId and role != "Owner":
        raise Conflict(
            f"{member.upn} owns site {site.url} and keeps the Owner role.",
            hint="Give the site another owner first (Set-Site -Owner).",
            parameter="role",
        )
    _set_member(ctx, site.id, member.id, role)
    return _members(ctx, site, member.id)[0]


@sites.command("Remove-SiteMember", sensitive=True, scoped=True)
def remove_site_member(
    ctx: CommandContext,
    *,
    identity: SiteIdentity,
    user: Annotated[
        str,
        Field(min_length=1, max_length=320, description="The member: a user id or principal name."),
    ],
) -> SiteMember:
    """Take a user out of a site. The site's owner cannot be removed: change the owner first."""
    site = _find_site(ctx, identity)
    member = find_user(ctx, user, "user")
    found = _members(ctx, site, member.id)
    if not found:
        raise NotFound(
            f"{member.upn} is not a member of site {site.url}.",
            hint="Get-SiteMember lists its members.",
        )
    if member.id == site.ownerId:
        raise Conflict(
            f"{member.upn} owns site {site.url}.",
            hint="Give the site another owner first (Set-Site -Owner).",
        )
    ctx.conn.execute(
        delete(site_members).where(
            site_members.c.site_id == site.id, site_members.c.user_id == member.id
        )
    )
    return found[0]
