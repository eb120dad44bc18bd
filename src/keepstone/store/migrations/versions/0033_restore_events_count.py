"""a restore session's events counted in its row: a page of its events is found by ``seq``
instead of counting and skipping the events before it

``/vN/RestoreSessions/{id}/Events`` counted the listed set (every index entry of the session)
and skipped ``offset`` entries to reach a page: O(n) each, 49.7 ms for the middle page of
100,000 events on PostgreSQL. ``record_event`` numbers a session's events 1, 2, ... (the highest
``seq`` plus one, under the writers' lock) and events are deleted only with their session, so
with the count kept here a session whose count equals its highest ``seq`` (and whose lowest is
at least 1) holds exactly the seqs 1..count: its count is read, not counted, and the page at
``offset`` is the events of seq ``offset + 1`` onwards (services/restores.py). Sessions moved
by 0016 kept their old JSON's ``order`` values, which need not be 1..n: the count filled here
is exact for them too, and they are listed the old way.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

FILL = (
    "UPDATE restore_sessions SET events_count = "
    "(SELECT count(*) FROM restore_events AS e WHERE e.session_id = restore_sessions.id)"
)


def upgrade() -> None:
    # In place on SQLite too: a NOT NULL column with a default needs no rebuild of the table.
    op.add_column(
        "restore_sessions",
        sa.Column("events_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.execute(FILL)


def downgrade() -> None:
    with op.batch_alter_table("restore_sessions") as sessions:
        sessions.drop_column("events_count")
