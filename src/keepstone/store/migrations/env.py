"""Alembic environment: runs on the connection Database.migrate() hands over, or on the URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from keepstone.store.tables import Base

config = context.config
connection = config.attributes.get("connection")


def run() -> None:
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        context.run_migrations()


run()
