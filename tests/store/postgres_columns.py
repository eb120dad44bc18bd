"""What PostgreSQL says of some columns before and after a start migrates its catalog: for the
tests of migrations that change a column's type on PostgreSQL alone."""

from __future__ import annotations

from typing import Any, Literal

from alembic import command
from sqlalchemy import create_engine, text

from keepstone.store.db import Database, _alembic_config, database_url
from tests.postgres_server import PostgresServer

Column = tuple[str, str]  # table, column
Fact = Literal["data_type", "character_maximum_length"]


def before_and_after(
    server: PostgresServer, revision: str, fact: Fact, columns: set[Column]
) -> tuple[dict[Column, Any], dict[Column, Any]]:
    """``fact`` of each of ``columns`` (``information_schema.columns``) in a new database
    migrated to ``revision``, and again once ``Database.migrate`` (what the next start does)
    has taken it to the newest."""
    url = database_url(server.url(server.create_database()))
    command.upgrade(_alembic_config(url), revision)
    engine = create_engine(url)
    try:
        before = _facts(engine, fact, columns)
        db = Database(url)
        db.migrate()
        db.dispose()
        return before, _facts(engine, fact, columns)
    finally:
        engine.dispose()


def _facts(engine: Any, fact: Fact, columns: set[Column]) -> dict[Column, Any]:
    query = text(
        f"SELECT table_name, column_name, {fact} FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {(t, c): value for t, c, value in rows if (t, c) in columns}
