"""who started a task: a user without a global role may poll the tasks it started, and only
those

Revision ID: 0028
Revises: 0023
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for the tasks already there: no user without a global role reads them, as before
    op.add_column("tasks", sa.Column("started_by", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as tasks:
        tasks.drop_column("started_by")
