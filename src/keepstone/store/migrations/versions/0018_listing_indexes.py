"""indexes for listings paged in the catalog: jobs by name, sessions and restore sessions newest
first, a session's log by status (by sequence number: 0017), restore points by time (all, and a
job's)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_jobs_name", "jobs", ["name", "id"]),
    ("ix_job_sessions_created", "job_sessions", ["creation_time", "id"]),
    ("ix_log_items_session_status", "log_items", ["session_id", "status", "usn"]),
    ("ix_restore_points_time", "restore_points", ["backup_time", "id"]),
    ("ix_restore_points_job_time", "restore_points", ["job_id", "backup_time", "id"]),
    ("ix_restore_sessions_created", "restore_sessions", ["creation_time", "id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table)
