"""restore points

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "restore_points",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("repository_id", sa.String(length=36), nullable=False),
        sa.Column("snapshot_id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("backup_time", sa.DateTime(), nullable=False),
        sa.Column("is_exchange", sa.Boolean(), nullable=False),
        sa.Column("is_onedrive", sa.Boolean(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["repository_id"], ["repositories.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_id"),
    )
    with op.batch_alter_table("restore_points", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_restore_points_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_restore_points_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_restore_points_repository_id"), ["repository_id"], unique=False
        )
        batch_op.create_index(
            "ux_restore_points_snapshot", ["repository_id", "snapshot_id"], unique=True
        )


def downgrade() -> None:

    with op.batch_alter_table("restore_points", schema=None) as batch_op:
        batch_op.drop_index("ux_restore_points_snapshot")
        batch_op.drop_index(batch_op.f("ix_restore_points_repository_id"))
        batch_op.drop_index(batch_op.f("ix_restore_points_organization_id"))
        batch_op.drop_index(batch_op.f("ix_restore_points_job_id"))

    op.drop_table("restore_points")
