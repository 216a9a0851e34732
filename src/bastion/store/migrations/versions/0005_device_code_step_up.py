"""device codes remember the step-up they ask for (max_age, acr_values)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 09:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("device_codes") as batch:
        batch.add_column(sa.Column("max_age", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("acr_values", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device_codes") as batch:
        batch.drop_column("acr_values")
        batch.drop_column("max_age")
