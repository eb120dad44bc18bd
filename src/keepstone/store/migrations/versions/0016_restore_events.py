"""restore events in their own rows: a session's Nth save no longer rewrites the N-1 before it

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

EVENTS = sa.table(
    "restore_events",
    sa.column("id", sa.String),
    sa.column("session_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("type", sa.String),
    sa.column("status", sa.String),
    sa.column("message", sa.Text),
    sa.column("start_time", sa.DateTime),
    sa.column("end_time", sa.DateTime),
    sa.column("item_name", sa.Text),
    sa.column("item_type", sa.String),
    sa.column("item_size_bytes", sa.BigInteger),
    sa.column("source", sa.Text),
    sa.column("target", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "restore_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "session_id",
            sa.String(36),
            sa.ForeignKey("restore_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("start_time", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=False),
        sa.Column("item_name", sa.Text(), nullable=False),
        sa.Column("item_type", sa.String(32), nullable=False),
        sa.Column("item_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
    )
    op.create_index(
        "ux_restore_events_session_seq", "restore_events", ["session_id", "seq"], unique=True
    )
    bind = op.get_bind()
    sessions = bind.execute(sa.text("SELECT id, events FROM restore_sessions")).all()
    for session_id, events in sessions:
        rows = [_row(session_id, e) for e in _events(events)]
        if rows:
            bind.execute(EVENTS.insert(), rows)
    with op.batch_alter_table("restore_sessions") as batch:
        batch.drop_column("events")


def downgrade() -> None:
    with op.batch_alter_table("restore_sessions") as batch:
        batch.add_column(
            sa.Column("events", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    op.drop_index("ux_restore_events_session_seq", "restore_events")
    op.drop_table("restore_events")


def _events(stored: Any) -> list[dict[str, Any]]:
    """The JSON list as stored (PostgreSQL's driver decodes it; SQLite's gives text)."""
    decoded = json.loads(stored) if isinstance(stored, str) else stored
    return [e for e in decoded or [] if isinstance(e, dict)]


def _row(session_id: str, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event["id"],
        "session_id": session_id,
        "seq": int(event["order"]),
        "type": event["type"],
        "status": event["status"],
        "message": event.get("message", ""),
        "start_time": _naive_utc(event["startTime"]),
        "end_time": _naive_utc(event.get("endTime") or event["startTime"]),
        "item_name": event.get("itemName", ""),
        "item_type": event.get("itemType", ""),
        "item_size_bytes": int(event.get("itemSizeBytes", 0)),
        "source": event.get("source", ""),
        "target": event.get("target", ""),
    }


def _naive_utc(text: str) -> datetime:
    """The catalog keeps naive UTC datetimes (``UtcDateTime``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)
