"""a user's id as long as the vendor's on PostgreSQL: every Office 365 user's task failed there

An Office 365 user's id, as the vendor's APIs list it and the runs record it, is its Entra
object id followed by its on-premises GUID (72 characters), but the columns that keep a user's
id were VARCHAR(36) (a task's ``object_id``, a log item's ``subject_id``, a licensed user's
``user_id``) and VARCHAR(64) (an RBAC item's ``item_id``): on PostgreSQL, which enforces them,
every run of an Office 365 organization failed at its first user ("value too long"), and so
did an RBAC role naming one of its users. They become VARCHAR(100) there (a longer VARCHAR
is a change of the catalog's description only: no table is rewritten). SQLite enforces no
length: its tables are left as they are (``store.tables.user_id_type``).

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

USER_IDS = {
    ("task_sessions", "object_id"): 36,
    ("log_items", "subject_id"): 36,
    ("licensed_users", "user_id"): 36,
    ("rbac_items", "item_id"): 64,
}
WIDE = 100


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for (table, column), made_with in USER_IDS.items():
        op.alter_column(table, column, type_=sa.String(WIDE), existing_type=sa.String(made_with))


def downgrade() -> None:
    # refused by PostgreSQL while a row holds a longer id: nothing is cut short
    if op.get_bind().dialect.name == "sqlite":
        return
    for (table, column), made_with in USER_IDS.items():
        op.alter_column(table, column, type_=sa.String(made_with), existing_type=sa.String(WIDE))
