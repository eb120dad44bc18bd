"""copy jobs: a backup job's restore points copied to a second repository, and their sessions

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "copy_jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "backup_job_id",
            sa.String(36),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("repository_id", sa.String(36), sa.ForeignKey("repositories.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("schedule_policy", sa.JSON(), nullable=False),
        sa.Column("immediate", sa.Boolean(), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("last_run", sa.DateTime(), nullable=True),
        sa.Column("last_backup", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.String(32), nullable=True),
        sa.Column("next_run", sa.DateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_copy_jobs_repository_id", "copy_jobs", ["repository_id"])
    op.create_index("ix_copy_jobs_next_run", "copy_jobs", ["next_run"])
    op.create_table(
        "copy_job_sessions",
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey("job_sessions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "copy_job_id",
            sa.String(36),
            sa.ForeignKey("copy_jobs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("scheduled_for", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ux_copy_job_sessions_slot",
        "copy_job_sessions",
        ["copy_job_id", "scheduled_for"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("copy_job_sessions")
    op.drop_table("copy_jobs")
