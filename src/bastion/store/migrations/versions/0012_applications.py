"""applications, their certificates and federated credentials

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _tenant(table: str) -> sa.Column[str]:
    return sa.Column(
        "tenant_id",
        sa.String(36),
        sa.ForeignKey("tenants.id", name=f"fk_{table}_tenant_id_tenants"),
        nullable=False,
    )


def _application(table: str) -> sa.Column[str]:
    return sa.Column(
        "application_id",
        sa.String(36),
        sa.ForeignKey(
            "applications.id", name=f"fk_{table}_application_id_applications", ondelete="CASCADE"
        ),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "applications",
        sa.Column("id", sa.String(36), nullable=False),
        _tenant("applications"),
        sa.Column("app_id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("allowed_networks", sa.JSON(), nullable=True),
        sa.Column("valid_after", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_applications"),
        sa.UniqueConstraint("app_id", name="uq_applications_app_id"),
        sa.UniqueConstraint(
            "tenant_id", "display_name", name="uq_applications_tenant_id_display_name"
        ),
    )
    op.create_table(
        "application_certificates",
        _tenant("application_certificates"),
        _application("application_certificates"),
        sa.Column("thumbprint", sa.String(64), nullable=False),
        sa.Column("thumbprint_sha1", sa.String(40), nullable=False),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("key_type", sa.String(8), nullable=False),
        sa.Column("not_before", sa.Float(), nullable=False),
        sa.Column("not_after", sa.Float(), nullable=False),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("application_id", "thumbprint", name="pk_application_certificates"),
    )
    op.create_index(
        "ix_application_certificates_thumbprint_sha1",
        "application_certificates",
        ["thumbprint_sha1"],
    )
    op.create_table(
        "federated_credentials",
        sa.Column("id", sa.String(36), nullable=False),
        _tenant("federated_credentials"),
        _application("federated_credentials"),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("audience", sa.String(512), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_federated_credentials"),
        sa.UniqueConstraint(
            "application_id",
            "issuer",
            "subject",
            "audience",
            name="uq_federated_credentials_application_id_issuer_subject_audience",
        ),
    )


def downgrade() -> None:
    op.drop_table("federated_credentials")
    op.drop_index(
        "ix_application_certificates_thumbprint_sha1", table_name="application_certificates"
    )
    op.drop_table("application_certificates")
    op.drop_table("applications")
