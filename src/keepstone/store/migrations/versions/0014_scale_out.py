"""scale-out: proxy pools, remote proxies (credentials, registrations, reported load,
maintenance), one built-in proxy per server, pool-owned repositories, and the leader lease

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxy_pools",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
    )
    # Batch mode: SQLite adds neither a unique column nor a foreign key to a table in place.
    with op.batch_alter_table("proxies") as proxies:
        proxies.add_column(sa.Column("credential_hash", sa.String(64), nullable=True))
        proxies.add_column(sa.Column("server_id", sa.String(36), nullable=True))
        proxies.add_column(sa.Column("version", sa.String(64), nullable=False, server_default=""))
        proxies.add_column(sa.Column("cpu_percent", sa.Float(), nullable=True))
        proxies.add_column(sa.Column("memory_percent", sa.Float(), nullable=True))
        proxies.add_column(
            sa.Column("active_runs", sa.Integer(), nullable=False, server_default="0")
        )
        proxies.add_column(
            sa.Column("maintenance", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        proxies.add_column(sa.Column("pool_id", sa.String(36), nullable=True))
        proxies.create_unique_constraint("uq_proxies_credential_hash", ["credential_hash"])
        proxies.create_unique_constraint("uq_proxies_server_id", ["server_id"])
        proxies.create_foreign_key(
            "fk_proxies_pool_id", "proxy_pools", ["pool_id"], ["id"], ondelete="SET NULL"
        )
        proxies.create_index("ix_proxies_pool_id", ["pool_id"])
    with op.batch_alter_table("repositories") as repositories:
        repositories.add_column(sa.Column("proxy_pool_id", sa.String(36), nullable=True))
        repositories.create_foreign_key(
            "fk_repositories_proxy_pool_id", "proxy_pools", ["proxy_pool_id"], ["id"]
        )
        repositories.create_index("ix_repositories_proxy_pool_id", ["proxy_pool_id"])
    op.create_table(
        "proxy_registrations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column(
            "proxy_id",
            sa.String(36),
            sa.ForeignKey("proxies.id", ondelete="SET NULL"),
            nullable=True,
        ),
    )
    op.create_table(
        "leader_leases",
        sa.Column("role", sa.String(32), primary_key=True),
        sa.Column("holder", sa.String(36), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leader_leases")
    op.drop_table("proxy_registrations")
    with op.batch_alter_table("repositories") as repositories:
        repositories.drop_index("ix_repositories_proxy_pool_id")
        repositories.drop_constraint("fk_repositories_proxy_pool_id", type_="foreignkey")
        repositories.drop_column("proxy_pool_id")
    with op.batch_alter_table("proxies") as proxies:
        proxies.drop_index("ix_proxies_pool_id")
        proxies.drop_constraint("fk_proxies_pool_id", type_="foreignkey")
        proxies.drop_constraint("uq_proxies_server_id", type_="unique")
        proxies.drop_constraint("uq_proxies_credential_hash", type_="unique")
        for column in (
            "pool_id",
            "maintenance",
            "active_runs",
            "memory_percent",
            "cpu_percent",
            "version",
            "server_id",
            "credential_hash",
        ):
            proxies.drop_column(column)
    op.drop_table("proxy_pools")
