"""sealed secrets: the vault's secrets in the catalog, encrypted with the operator's key

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sealed_secrets",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("token", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sealed_secrets")
