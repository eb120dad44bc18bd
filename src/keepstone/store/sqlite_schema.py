"""A new SQLite catalog made at once from the schema the migrations make.

Migrating a new catalog ran every Alembic migration in turn, after importing Alembic: about
0.2-0.3 s of CPU, most of what a first ``keepstone serve`` on a new data directory spent beyond
a restart (docs/benchmarks.md). ``sqlite_schema.sql``, beside this module, holds what the
migrations leave in ``sqlite_master`` at ``HEAD_REVISION`` (every table, index and trigger, as
SQLite keeps its text) and the revision; a new catalog executes it in one transaction. A test
makes a catalog both ways and compares them (``tests/store/test_sqlite_schema.py``); after a
new migration, write the file again:

    uv run python -m keepstone.store.sqlite_schema --write

A catalog that is not new, a file written for another revision, and PostgreSQL go through
Alembic as before.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from keepstone.store import db

SCHEMA_FILE = "sqlite_schema.sql"
REVISION_LINE = "-- revision "
SEPARATOR = "\n;\n"  # between statements: a trigger's body holds semicolons of its own
# In the order the migrations made them (an index or trigger after its table): the planner
# weighs indexes that serve a query equally in the order they were created, so a catalog made
# in another order can take another plan (made by name, the log items' deep pages took another
# index: tests/test_listings_work.py counts their instructions). Alembic's batch mode rebuilds a
# table's indexes in a set's order, by object identity: of job_sessions' status and job/creation
# indexes, either may come first in a migrated catalog, and the file holds one of the two.
_OBJECTS = """
    SELECT sql FROM sqlite_master
    WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
    ORDER BY rowid
"""


def dump(connection: sqlite3.Connection, revision: str) -> str:
    """The schema of the catalog on ``connection``, at ``revision``, as the file holds it."""
    statements = [row[0] for row in connection.execute(_OBJECTS)]
    return f"{REVISION_LINE}{revision}\n" + SEPARATOR.join(statements) + SEPARATOR


def _statements(text: str, revision: str) -> list[str] | None:
    """The file's statements when it was written at ``revision``; None otherwise."""
    first, _, rest = text.partition("\n")
    if first != f"{REVISION_LINE}{revision}":
        return None
    return [statement for statement in rest.split(SEPARATOR) if statement.strip()]


def create(driver: Any, revision: str) -> bool:
    """Make the schema at ``revision`` on ``driver`` (a pysqlite connection in autocommit mode)
    if its catalog is new, and say whether it did: False, with nothing changed, when the file
    was written for another revision or the catalog has tables (another process made them
    first: its write lock is waited for, then the catalog looked at again)."""
    text = resources.files("keepstone.store").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    statements = _statements(text, revision)
    if statements is None:
        return False

    def make(cursor: Any) -> bool:
        if cursor.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            return False
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("INSERT INTO alembic_version (version_num) VALUES (?)", (revision,))
        return True

    return db.immediately(driver, make)


def migrated_schema() -> str:
    """The schema Alembic's migrations make on a new catalog, as the file holds it."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "catalog.db"
        catalog = db.Database(db.sqlite_url(path))
        try:
            catalog.migrate_with_alembic()
        finally:
            catalog.dispose()
        with sqlite3.connect(path) as connection:
            return dump(connection, db.HEAD_REVISION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {SCHEMA_FILE}")
    args = parser.parse_args()
    text = migrated_schema()
    if args.write:
        Path(__file__).with_name(SCHEMA_FILE).write_text(text, encoding="utf-8")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
