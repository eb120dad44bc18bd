"""restore sessions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "restore_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("restore_point_id", sa.String(length=36), nullable=False),
        sa.Column("organization_id", sa.String(length=36), nullable=True),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("creation_time", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("initiated_by", sa.String(length=255), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("statistics", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["restore_point_id"], ["restore_points.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("restore_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_restore_sessions_restore_point_id"), ["restore_point_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("restore_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_restore_sessions_restore_point_id"))

    op.drop_table("restore_sessions")
