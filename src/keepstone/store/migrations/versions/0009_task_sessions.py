"""task sessions: one row per protected user of a job session, with its state, times and sizes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey("job_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("object_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("creation_time", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("total_bytes", sa.Integer(), nullable=False),
        sa.Column("read_bytes", sa.Integer(), nullable=False),
        sa.Column("written_bytes", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_task_sessions_object_id", "task_sessions", ["object_id"])
    op.create_index("ix_task_sessions_creation_time", "task_sessions", ["creation_time"])
    op.create_index(
        "ux_task_sessions_session_object",
        "task_sessions",
        ["session_id", "object_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("task_sessions")
