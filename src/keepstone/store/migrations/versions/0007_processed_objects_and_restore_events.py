"""processed objects and restore events: whom a log item is about; what a restore session did

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("log_items") as batch:
        batch.add_column(sa.Column("subject_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("subject_name", sa.String(255), nullable=True))
        batch.create_index("ix_log_items_subject_id", ["subject_id"])
    with op.batch_alter_table("restore_sessions") as batch:
        batch.add_column(
            sa.Column("events", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("restore_sessions") as batch:
        batch.drop_column("events")
    with op.batch_alter_table("log_items") as batch:
        batch.drop_index("ix_log_items_subject_id")
        batch.drop_column("subject_name")
        batch.drop_column("subject_id")
