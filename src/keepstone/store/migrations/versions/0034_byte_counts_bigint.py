"""byte counts in 64 bits on PostgreSQL: a user or a restore point past 2 GiB was refused

``task_sessions.total_bytes``, ``read_bytes``, ``written_bytes`` and ``restore_points.size``
were INTEGER, 32 bits on PostgreSQL: the first user whose mailbox passed 2**31 bytes failed its
run's recording ("integer out of range") after its content was stored, and so did a restore
point of more than 2 GiB. They become BIGINT there. SQLite's INTEGER holds 64 bits already: its
tables are left as they are (the models declare ``BigInteger`` with an ``Integer`` variant for
SQLite, so they keep the name they were made with).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

BYTE_COUNTS = {
    "task_sessions": ("total_bytes", "read_bytes", "written_bytes"),
    "restore_points": ("size",),
}


def upgrade() -> None:
    _retype(sa.Integer(), sa.BigInteger())


def downgrade() -> None:
    # refused by PostgreSQL while a row holds a count past 2**31: nothing is cut short
    _retype(sa.BigInteger(), sa.Integer())


def _retype(old: sa.types.TypeEngine[int], new: sa.types.TypeEngine[int]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in BYTE_COUNTS.items():
        for column in columns:
            op.alter_column(table, column, type_=new, existing_type=old, existing_nullable=False)
