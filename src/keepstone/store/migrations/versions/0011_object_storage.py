"""object storage: cloud accounts (S3 credentials, the secret kept in the vault) and S3-compatible
object storages a backup repository keeps its objects in

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cloud_accounts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account_type", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
    )
    op.create_table(
        "object_storages",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("account_id", sa.String(36), sa.ForeignKey("cloud_accounts.id"), nullable=False),
        sa.Column("service_point", sa.Text(), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("bucket", sa.String(63), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("size_limit_gb", sa.BigInteger(), nullable=True),
        sa.Column(
            "repository_id",
            sa.String(36),
            sa.ForeignKey("repositories.id", ondelete="SET NULL"),
            nullable=True,
            unique=True,
        ),
    )
    op.create_index("ix_object_storages_account_id", "object_storages", ["account_id"])


def downgrade() -> None:
    op.drop_index("ix_object_storages_account_id", "object_storages")
    op.drop_table("object_storages")
    op.drop_table("cloud_accounts")
