"""token families, and the audit trail

A token pair and every pair rotated from it share a family (one login), so a logout or the reuse
of a rotated refresh token can end them all. ``audit_events`` is the append-only audit trail.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no table copy); tokens issued before this revision each form their own
    # family (their own id).
    op.add_column(
        "tokens",
        sa.Column("family_id", sa.String(36), nullable=False, server_default=sa.text("''")),
    )
    op.execute("UPDATE tokens SET family_id = id")
    op.create_index("ix_tokens_family_id", "tokens", ["family_id"])
    op.create_index("ix_tokens_expires_at", "tokens", ["expires_at"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("dialect", sa.String(16), nullable=True),
        sa.Column("organization_id", sa.String(36), nullable=True),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_index(
        "ix_audit_events_organization_time", "audit_events", ["organization_id", "time"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_organization_time", "audit_events")
    op.drop_index("ix_audit_events_time", "audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_tokens_expires_at", "tokens")
    op.drop_index("ix_tokens_family_id", "tokens")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("family_id")
