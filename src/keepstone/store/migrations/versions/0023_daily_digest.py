"""the daily digest of e-mail notifications: the last digest's day, digest rows in the outbox
(without a session), and an index on the sessions' end for the day's runs

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "notification_settings", sa.Column("last_digest_day", sa.String(10), nullable=True)
    )
    # batch: SQLite rebuilds the table (keeping its rows) to let session_id be NULL
    with op.batch_alter_table("mail_outbox") as outbox:
        outbox.alter_column("session_id", existing_type=sa.String(36), nullable=True)
        outbox.add_column(sa.Column("digest_day", sa.String(10), nullable=True))
        outbox.create_unique_constraint("uq_mail_outbox_digest_day", ["digest_day"])
    op.create_index("ix_job_sessions_end_time", "job_sessions", ["end_time"])


def downgrade() -> None:
    op.drop_index("ix_job_sessions_end_time", "job_sessions")
    op.execute("DELETE FROM mail_outbox WHERE session_id IS NULL")
    with op.batch_alter_table("mail_outbox") as outbox:
        outbox.drop_constraint("uq_mail_outbox_digest_day", type_="unique")
        outbox.drop_column("digest_day")
        outbox.alter_column("session_id", existing_type=sa.String(36), nullable=False)
    with op.batch_alter_table("notification_settings") as settings:
        settings.drop_column("last_digest_day")
