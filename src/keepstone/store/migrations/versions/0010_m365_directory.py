"""the Office365 organization cache: users, groups and their members, sites, and sync states

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _organization() -> sa.Column[str]:
    return sa.Column(
        "organization_id",
        sa.String(36),
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=True,
    )


def upgrade() -> None:
    op.create_table(
        "m365_users",
        _organization(),
        sa.Column("graph_id", sa.String(64), primary_key=True),
        sa.Column("onprem_guid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("mail", sa.String(320), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("location", sa.String(16), nullable=False),
        sa.Column("office", sa.Text(), nullable=True),
        sa.Column("onprem_sid", sa.String(184), nullable=True),
        sa.Column("licenses", sa.JSON(), nullable=False),
        sa.Column("has_mailbox", sa.Boolean(), nullable=False),
        sa.Column("has_archive", sa.Boolean(), nullable=False),
        sa.Column("has_onedrive", sa.Boolean(), nullable=False),
        sa.Column("drive_id", sa.String(255), nullable=True),
        sa.Column("drive_url", sa.Text(), nullable=True),
    )
    op.create_index("ix_m365_users_name", "m365_users", ["name"])
    op.create_table(
        "m365_groups",
        _organization(),
        sa.Column("graph_id", sa.String(64), primary_key=True),
        sa.Column("onprem_guid", sa.String(36), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("name", sa.String(320), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("mail", sa.String(320), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("location", sa.String(16), nullable=False),
        sa.Column("onprem_sid", sa.String(184), nullable=True),
        sa.Column("is_team", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "m365_group_members",
        _organization(),
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("member_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("login", sa.String(320), nullable=True),
        sa.Column("is_cloud", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "m365_sites",
        _organization(),
        sa.Column("graph_id", sa.String(255), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("is_personal", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "m365_sync_states",
        _organization(),
        sa.Column("last_type", sa.String(16), nullable=True),
        sa.Column("last_result", sa.String(16), nullable=True),
        sa.Column("last_start", sa.DateTime(), nullable=True),
        sa.Column("last_end", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("current_type", sa.String(16), nullable=True),
        sa.Column("current_status", sa.String(16), nullable=True),
        sa.Column("current_scheduled", sa.DateTime(), nullable=True),
        sa.Column("current_start", sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    for table in ("m365_sync_states", "m365_sites", "m365_group_members", "m365_groups"):
        op.drop_table(table)
    op.drop_table("m365_users")
