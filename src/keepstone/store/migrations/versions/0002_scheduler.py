"""scheduler: scheduled instants, retries' waits and proxy leases on job sessions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_sessions") as batch:
        batch.add_column(sa.Column("scheduled_for", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column("manual", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("not_before", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("attempt_started_at", sa.DateTime(), nullable=True))
        batch.create_index("ux_job_sessions_job_slot", ["job_id", "scheduled_for"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("job_sessions") as batch:
        batch.drop_index("ux_job_sessions_job_slot")
        for column in (
            "attempt_started_at",
            "lease_expires_at",
            "not_before",
            "manual",
            "scheduled_for",
        ):
            batch.drop_column(column)
