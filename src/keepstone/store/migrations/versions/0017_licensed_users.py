"""licensed users in their own table; log items indexed by session and sequence number

The licence's answers (``/License``, ``/LicensedUsers``, an organization's licensing
information) scanned every successful per-user log item of every run, so they grew with the
history; they now read one row per (organization, user), written when a run finishes a user and
backfilled here from the log items. Appending a log item looked up the session's highest
sequence number through an index on the session alone, reading all its earlier items: the
composite index makes that one lookup. The processed-users report reads the task sessions that
ended in its last seven days: their end time is indexed.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

LICENSED = sa.table(
    "licensed_users",
    sa.column("organization_id", sa.String),
    sa.column("user_id", sa.String),
    sa.column("user_name", sa.String),
    sa.column("first_backup", sa.DateTime),
    sa.column("last_backup", sa.DateTime),
)

# The users the licence counted before: a successful log item about them, per organization.
BACKED_UP = sa.text(
    "SELECT jobs.organization_id, log_items.subject_id, log_items.subject_name,"
    " MIN(log_items.creation_time), MAX(log_items.creation_time)"
    " FROM log_items"
    " JOIN job_sessions ON job_sessions.id = log_items.session_id"
    " JOIN jobs ON jobs.id = job_sessions.job_id"
    " WHERE log_items.subject_id IS NOT NULL AND log_items.status = 'Success'"
    " GROUP BY jobs.organization_id, log_items.subject_id, log_items.subject_name"
)


def upgrade() -> None:
    op.create_table(
        "licensed_users",
        sa.Column(
            "organization_id",
            sa.String(36),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("first_backup", sa.DateTime(), nullable=False),
        sa.Column("last_backup", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_licensed_users_name", "licensed_users", ["user_name"])
    bind = op.get_bind()
    rows = _licensed(bind.execute(BACKED_UP).all())
    if rows:
        bind.execute(LICENSED.insert(), rows)
    with op.batch_alter_table("log_items") as batch:
        batch.drop_index("ix_log_items_session_id")
        batch.create_index("ix_log_items_session_usn", ["session_id", "usn", "id"])
    op.create_index("ix_task_sessions_end_time", "task_sessions", ["end_time"])


def downgrade() -> None:
    op.drop_index("ix_task_sessions_end_time", "task_sessions")
    with op.batch_alter_table("log_items") as batch:
        batch.drop_index("ix_log_items_session_usn")
        batch.create_index("ix_log_items_session_id", ["session_id"])
    op.drop_index("ix_licensed_users_name", "licensed_users")
    op.drop_table("licensed_users")


def _licensed(found: Any) -> list[dict[str, Any]]:
    """One row per (organization, user): the earliest and latest backup over all its names, and
    the name of its latest backup (a renamed user is one user)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for organization_id, user_id, name, first, last in found:
        first, last = _datetime(first), _datetime(last)
        row = rows.get((organization_id, user_id))
        if row is None:
            rows[(organization_id, user_id)] = {
                "organization_id": organization_id,
                "user_id": user_id,
                "user_name": name or "",
                "first_backup": first,
                "last_backup": last,
            }
            continue
        row["first_backup"] = min(row["first_backup"], first)
        if last > row["last_backup"]:
            row["last_backup"], row["user_name"] = last, name or ""
    return list(rows.values())


def _datetime(value: Any) -> datetime:
    """SQLite hands aggregated datetimes back as text; PostgreSQL as datetimes."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
