"""A new SQLite catalog is made from ``sqlite_schema.sql`` (store/sqlite_schema.py): the file is
what the migrations make, a catalog made from it is the migrated one, and anything else (a file
of another revision, a catalog another process made first) leaves the work to Alembic."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from keepstone.store import db as db_module
from keepstone.store import sqlite_schema
from keepstone.store.db import HEAD_REVISION, Database, sqlite_url

pytestmark = pytest.mark.sqlite_catalog


def fingerprint(connection: sqlite3.Connection) -> dict[str, object]:
    """What a catalog's schema is, whatever order a migration's table rebuild wrote a table's
    constraints in (Alembic's batch mode orders them as a set does): every table's columns,
    foreign keys and indexes as SQLite reports them, and the triggers' and views' text."""
    found: dict[str, object] = {}
    objects = connection.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    for kind, name, sql in objects:
        if kind == "table":
            indexes = connection.execute(f'PRAGMA index_list("{name}")').fetchall()
            found[name] = (
                connection.execute(f'PRAGMA table_xinfo("{name}")').fetchall(),
                _foreign_keys(connection, name),
                # as sets: Alembic's batch mode rebuilds a table's indexes and constraints in a
                # set's order (by object identity), so their order differs from run to run
                # (the file keeps one: store/sqlite_schema.py)
                sorted(_index(connection, row) for row in indexes if row[3] == "c"),
                sorted(_index(connection, row)[1:] for row in indexes if row[3] != "c"),
                "AUTOINCREMENT" in sql.upper(),
            )
        else:  # an index (also its table's, above), a trigger, a view: their text
            found[name] = sql
    return found


def _foreign_keys(connection: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    """A table's foreign keys as a set: SQLite numbers them (``id``) in the order the table's
    text declares them, which a batch rebuild of a table of several (``jobs``, migration 0032)
    writes in a set's order."""
    keys: dict[int, list[tuple[Any, ...]]] = {}
    for number, *rest in connection.execute(f'PRAGMA foreign_key_list("{table}")'):
        keys.setdefault(number, []).append(tuple(rest))
    return sorted(tuple(sorted(rows)) for rows in keys.values())


def _index(connection: sqlite3.Connection, row: tuple[Any, ...]) -> tuple[Any, ...]:
    _seq, name, unique, origin, partial = row
    columns = connection.execute(f'PRAGMA index_info("{name}")').fetchall()
    return (name, unique, origin, partial, columns)


def _made(tmp_path: Path, alembic: bool) -> dict[str, object]:
    path = tmp_path / f"{'alembic' if alembic else 'file'}.db"
    catalog = Database(sqlite_url(path))
    try:
        catalog.migrate_with_alembic() if alembic else catalog.migrate()
    finally:
        catalog.dispose()
    with sqlite3.connect(path) as connection:
        return fingerprint(connection)


def test_the_schema_file_makes_what_the_migrations_make(tmp_path: Path) -> None:
    assert _made(tmp_path, alembic=False) == _made(tmp_path, alembic=True), (
        "sqlite_schema.sql is stale: uv run python -m keepstone.store.sqlite_schema --write"
    )


def test_a_new_catalog_is_made_from_the_file_as_the_migrations_make_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_alembic(self: Database) -> None:
        raise AssertionError("a new SQLite catalog needs no migration")

    monkeypatch.setattr(Database, "migrate_with_alembic", no_alembic)
    path = tmp_path / "catalog.db"
    catalog = Database(sqlite_url(path))
    try:
        catalog.migrate()
        assert catalog.revision() == HEAD_REVISION
        catalog.migrate()  # at the newest revision: nothing to do
    finally:
        catalog.dispose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        assert len(tables) > 30
        rows = {t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        assert rows == {t: int(t == "alembic_version") for t in tables}


def test_anything_but_a_new_catalog_at_the_file_s_revision_is_left_to_alembic(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.db"
    with sqlite3.connect(path, isolation_level=None) as driver:
        assert not sqlite_schema.create(driver, "not-" + HEAD_REVISION)  # a stale file
        assert driver.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
        assert sqlite_schema.create(driver, HEAD_REVISION)
        assert not sqlite_schema.create(driver, HEAD_REVISION)  # made by another, first
    catalog = Database(sqlite_url(path))
    try:
        assert catalog.revision() == db_module.HEAD_REVISION
    finally:
        catalog.dispose()
