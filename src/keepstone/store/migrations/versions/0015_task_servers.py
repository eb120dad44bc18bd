"""task servers: which server works an asynchronous task, so a dead server's tasks are failed

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("server_id", sa.String(36), nullable=True))
    op.create_index("ix_tasks_server_id", "tasks", ["server_id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_server_id", "tasks")
    with op.batch_alter_table("tasks") as tasks:
        tasks.drop_column("server_id")
