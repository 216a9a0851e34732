"""role groups (replacing user_roles); users.department; mail, sites and chat tables

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:10:00

Hand-written. Each tenant gets one built-in role group per built-in role, named after the
role, and every ``user_roles`` row becomes a membership of that group; then ``user_roles``
goes. Each tenant also gets its ``Global`` meeting and messaging policies, with the
defaults the chat service had when this migration was written (frozen here on purpose).
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BUILT_IN_ROLES = (
    "Global Administrator",
    "Mail Recipients Administrator",
    "Helpdesk",
    "Sites Administrator",
    "Chat Administrator",
    "Audit Reader",
    "Read-Only Reporting",
)
GLOBAL_MEETING = {
    "allowRecording": True,
    "allowTranscription": True,
    "allowAnonymousJoin": False,
    "autoAdmittedUsers": "EveryoneInCompany",
    "maxParticipants": 300,
}
GLOBAL_MESSAGING = {
    "allowEditMessages": True,
    "allowDeleteMessages": True,
    "allowGiphy": True,
    "giphyRating": "Moderate",
    "readReceipts": "UserPreference",
    "allowUrlPreviews": True,
}


def _fk(
    table: str, column: str, target: str, ondelete: str | None = None
) -> sa.ForeignKeyConstraint:
    ref_table = target.split(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{ref_table}"), ondelete=ondelete
    )


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("department", sa.String(length=128), nullable=False, server_default="")
        )
    op.create_index(
        op.f("ix_users_tenant_id_department"), "users", ["tenant_id", "department"], unique=False
    )
    op.create_table(
        "role_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=True),
        sa.Column("built_in", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        _fk("role_groups", "tenant_id", "tenants.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_groups")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_role_groups_tenant_id_name")),
    )
    op.create_table(
        "role_group_members",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("role_group_id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.String(length=36), nullable=False),
        sa.Column("member_kind", sa.String(length=8), nullable=False),
        _fk("role_group_members", "tenant_id", "tenants.id"),
        _fk("role_group_members", "role_group_id", "role_groups.id", "CASCADE"),
        sa.PrimaryKeyConstraint("role_group_id", "member_id", name=op.f("pk_role_group_members")),
    )
    op.create_index(
        op.f("ix_role_group_members_member_id"), "role_group_members", ["member_id"], unique=False
    )
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=True),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=False),
        sa.Column("primary_address", sa.String(length=320), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("quota_mb", sa.Integer(), nullable=False),
        sa.Column("forwarding_address", sa.String(length=320), nullable=True),
        sa.Column("deliver_and_forward", sa.Boolean(), nullable=False),
        sa.Column("litigation_hold", sa.Boolean(), nullable=False),
        sa.Column("litigation_hold_since", sa.Float(), nullable=True),
        sa.Column("inactive", sa.Boolean(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("total_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("last_logon_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        _fk("mailboxes", "tenant_id", "tenants.id"),
        _fk("mailboxes", "user_id", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailboxes")),
        sa.UniqueConstraint(
            "tenant_id", "primary_address", name=op.f("uq_mailboxes_tenant_id_primary_address")
        ),
    )
    op.create_index(op.f("ix_mailboxes_user_id"), "mailboxes", ["user_id"], unique=False)
    op.create_table(
        "mail_addresses",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        _fk("mail_addresses", "tenant_id", "tenants.id"),
        _fk("mail_addresses", "mailbox_id", "mailboxes.id", "CASCADE"),
        sa.PrimaryKeyConstraint("tenant_id", "address", name=op.f("pk_mail_addresses")),
    )
    op.create_index(
        op.f("ix_mail_addresses_mailbox_id"), "mail_addresses", ["mailbox_id"], unique=False
    )
    op.create_table(
        "mailbox_permissions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("mailbox_id", sa.String(length=36), nullable=False),
        sa.Column("trustee_id", sa.String(length=36), nullable=False),
        sa.Column("access_right", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        _fk("mailbox_permissions", "tenant_id", "tenants.id"),
        _fk("mailbox_permissions", "mailbox_id", "mailboxes.id", "CASCADE"),
        _fk("mailbox_permissions", "trustee_id", "users.id", "CASCADE"),
        sa.PrimaryKeyConstraint(
            "mailbox_id", "trustee_id", "access_right", name=op.f("pk_mailbox_permissions")
        ),
    )
    op.create_index(
        op.f("ix_mailbox_permissions_trustee_id"),
        "mailbox_permissions",
        ["trustee_id"],
        unique=False,
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.String(length=512), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=True),
        sa.Column("storage_quota_mb", sa.Integer(), nullable=False),
        sa.Column("storage_used_mb", sa.Integer(), nullable=False),
        sa.Column("sharing", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        _fk("sites", "tenant_id", "tenants.id"),
        _fk("sites", "owner_id", "users.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("tenant_id", "url", name=op.f("uq_sites_tenant_id_url")),
    )
    op.create_index(op.f("ix_sites_owner_id"), "sites", ["owner_id"], unique=False)
    op.create_table(
        "site_members",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("site_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        _fk("site_members", "tenant_id", "tenants.id"),
        _fk("site_members", "site_id", "sites.id", "CASCADE"),
        _fk("site_members", "user_id", "users.id", "CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "user_id", name=op.f("pk_site_members")),
    )
    op.create_index(op.f("ix_site_members_user_id"), "site_members", ["user_id"], unique=False)
    op.create_table(
        "chat_policies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        _fk("chat_policies", "tenant_id", "tenants.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_policies")),
        sa.UniqueConstraint(
            "tenant_id", "kind", "name", name=op.f("uq_chat_policies_tenant_id_kind_name")
        ),
    )
    op.create_table(
        "chat_policy_assignments",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("policy_id", sa.String(length=36), nullable=False),
        _fk("chat_policy_assignments", "tenant_id", "tenants.id"),
        _fk("chat_policy_assignments", "user_id", "users.id", "CASCADE"),
        _fk("chat_policy_assignments", "policy_id", "chat_policies.id", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "kind", name=op.f("pk_chat_policy_assignments")),
    )
    op.create_index(
        op.f("ix_chat_policy_assignments_policy_id"),
        "chat_policy_assignments",
        ["policy_id"],
        unique=False,
    )
    _move_roles_into_role_groups()
    _add_global_chat_policies()
    op.drop_table("user_roles")


_tenants = sa.table("tenants", sa.column("id", sa.String))
_user_roles = sa.table(
    "user_roles",
    sa.column("tenant_id", sa.String),
    sa.column("user_id", sa.String),
    sa.column("role", sa.String),
)
_role_groups = sa.table(
    "role_groups",
    sa.column("id", sa.String),
    sa.column("tenant_id", sa.String),
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("roles", sa.JSON),
    sa.column("scope", sa.JSON),
    sa.column("built_in", sa.Boolean),
    sa.column("created_at", sa.Float),
)
_members = sa.table(
    "role_group_members",
    sa.column("tenant_id", sa.String),
    sa.column("role_group_id", sa.String),
    sa.column("member_id", sa.String),
    sa.column("member_kind", sa.String),
)
_policies = sa.table(
    "chat_policies",
    sa.column("id", sa.String),
    sa.column("tenant_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("settings", sa.JSON),
    sa.column("created_at", sa.Float),
)


def _move_roles_into_role_groups() -> None:
    conn = op.get_bind()
    now = time.time()
    for tenant_id in conn.execute(sa.select(_tenants.c.id)).scalars().all():
        group_ids = {role: str(uuid.uuid4()) for role in BUILT_IN_ROLES}
        conn.execute(
            sa.insert(_role_groups),
            [
                {
                    "id": group_ids[role],
                    "tenant_id": tenant_id,
                    "name": role,
                    "description": f"Everyone with the {role} role.",
                    "roles": [role],
                    "scope": None,
                    "built_in": True,
                    "created_at": now,
                }
                for role in BUILT_IN_ROLES
            ],
        )
        rows = conn.execute(
            sa.select(_user_roles.c.user_id, _user_roles.c.role).where(
                _user_roles.c.tenant_id == tenant_id
            )
        ).all()
        members = [
            {
                "tenant_id": tenant_id,
                "role_group_id": group_ids[row.role],
                "member_id": row.user_id,
                "member_kind": "user",
            }
            for row in rows
            if row.role in group_ids
        ]
        if members:
            conn.execute(sa.insert(_members), members)


def _add_global_chat_policies() -> None:
    conn = op.get_bind()
    now = time.time()
    for tenant_id in conn.execute(sa.select(_tenants.c.id)).scalars().all():
        conn.execute(
            sa.insert(_policies),
            [
                {
                    "id": str(uuid.uuid4()),
                    "tenant_id": tenant_id,
                    "kind": kind,
                    "name": "Global",
                    "description": "Applies to everyone without another policy.",
                    "settings": settings,
                    "created_at": now,
                }
                for kind, settings in (("meeting", GLOBAL_MEETING), ("messaging", GLOBAL_MESSAGING))
            ],
        )


def downgrade() -> None:
    op.create_table(
        "user_roles",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("role", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_user_roles_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("user_id", "role", name=op.f("uq_user_roles_user_id_role")),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_members.c.tenant_id, _members.c.member_id, _role_groups.c.name)
        .join(_role_groups, _role_groups.c.id == _members.c.role_group_id)
        .where(_role_groups.c.built_in.is_(True), _members.c.member_kind == "user")
    ).all()
    if rows:
        conn.execute(
            sa.insert(_user_roles),
            [{"tenant_id": r.tenant_id, "user_id": r.member_id, "role": r.name} for r in rows],
        )
    for table in (
        "chat_policy_assignments",
        "chat_policies",
        "site_members",
        "sites",
        "mailbox_permissions",
        "mail_addresses",
        "mailboxes",
        "role_group_members",
        "role_groups",
    ):
        op.drop_table(table)
    op.drop_index(op.f("ix_users_tenant_id_department"), table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("department")
