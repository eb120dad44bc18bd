"""per-organization roles: the roles, their operators and the users in their scope

Each a table of its own, so a role's scope grows by rows and a user's roles are found by index
(``ix_rbac_operators_user_id``) on every request of a scoped operator.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rbac_roles",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "organization_id",
            sa.String(36),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("role_type", sa.String(32), nullable=False),
        sa.Column("access", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_rbac_roles_organization_id", "rbac_roles", ["organization_id"])
    op.create_table(
        "rbac_operators",
        sa.Column(
            "role_id",
            sa.String(36),
            sa.ForeignKey("rbac_roles.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_rbac_operators_user_id", "rbac_operators", ["user_id"])
    op.create_table(
        "rbac_items",
        sa.Column(
            "role_id",
            sa.String(36),
            sa.ForeignKey("rbac_roles.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("excluded", sa.Boolean(), primary_key=True),
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rbac_items")
    op.drop_index("ix_rbac_operators_user_id", "rbac_operators")
    op.drop_table("rbac_operators")
    op.drop_index("ix_rbac_roles_organization_id", "rbac_roles")
    op.drop_table("rbac_roles")
