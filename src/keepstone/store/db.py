"""The database: engine set-up, migrations, and the read/write transaction boundary.

SQLite is the embedded default. Writers take the database lock up front (``BEGIN IMMEDIATE``) so a
read-modify-write such as a partial job edit is serialised and can never be half-applied or lose
another writer's change; readers use plain deferred transactions and, thanks to WAL, never wait.

PostgreSQL (``postgresql://...``, psycopg 3) keeps exactly that rule: a write transaction first
takes one transaction-scoped advisory lock (``store/postgres.py``), so writers of every process
sharing the catalog are serialised as SQLite's are, and reads run beside them. The one exception
is ``claim()``, for queue-like writes whose correctness rests on row locks (``FOR UPDATE SKIP
LOCKED``) so proxies claim runs concurrently.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, Row, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from keepstone.hidden_imports import hidden

if TYPE_CHECKING:
    from alembic.config import Config

BUSY_TIMEOUT_MS = 30_000
# The newest migration in migrations/versions (tests/store/test_migrations.py holds this equal to
# Alembic's head): a catalog already there is opened without loading Alembic and every script,
# which cost a restarting server about 0.3 s of CPU, a sixth of its time to its first answer.
HEAD_REVISION = "0035"
T = TypeVar("T")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class DatabaseUrlError(ValueError):
    """A ``--database`` value Keepstone cannot use, worded for the operator."""


def database_url(given: str) -> str:
    """The SQLAlchemy URL of a ``--database`` value: a plain ``postgresql://user@host:port/db``
    (or ``postgres://``) means psycopg 3; ``sqlite:///path`` is taken as it is."""
    scheme, separator, rest = given.partition("://")
    if not separator or not rest:
        # not repeated: what is not a URL may well be a password pasted in the wrong place
        raise DatabaseUrlError(
            "--database: the value is not a URL "
            "(use postgresql://user@host:port/database or sqlite:///path)"
        )
    scheme = scheme.lower()
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    if scheme == "sqlite":
        return given
    raise DatabaseUrlError(
        f"--database: unsupported scheme '{scheme}' (use postgresql:// or sqlite:///)"
    )


# At most this many loop threads keep a connection each (Database._loop_connection): a server has
# one; a thread that ended keeps its connection until dispose, so the number is bounded.
HELD_CONNECTIONS = 2


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self._reader = _make_engine(url, immediate=False)
        self._writer = _make_engine(url, immediate=True)
        self.dialect = self._writer.dialect.name
        # No autoflush: a use case reads what it needs, then writes once at commit.
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False, autoflush=False)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False, autoflush=False)
        # On PostgreSQL claims write through the reader's pool: without the writers' lock.
        claims = self._writer if self.dialect == "sqlite" else self._reader
        # dbapi_row's connection for each thread running an event loop, on SQLite (see there)
        self._held: dict[int, Any] = {}
        self._held_lock = threading.Lock()
        self._claim_sessions = sessionmaker(claims, expire_on_commit=False, autoflush=False)
        # Writers of this process queue here rather than in SQLite's busy handler, whose sleeps
        # (up to 100 ms each) would turn brief contention into long tail latencies.
        self._write_lock = threading.Lock()
        self._now_connection: Any = None  # write_now's own pysqlite connection

    def revision(self) -> str | None:
        """The catalog's schema revision; None for a catalog with none (a new one)."""
        try:
            with self._reader.connect() as connection:
                found = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
                return found.scalar()
        except DBAPIError as error:
            if error.connection_invalidated:
                raise
            return None  # no alembic_version table yet

    def migrate(self) -> None:
        """Bring the schema to the newest revision (creates it on first start: a new SQLite
        catalog from the schema the migrations make, ``store.sqlite_schema``)."""
        revision = self.revision()
        if revision == HEAD_REVISION:
            return
        if revision is None and self.dialect == "sqlite" and self._create_sqlite_schema():
            return
        self.migrate_with_alembic()

    def _create_sqlite_schema(self) -> bool:
        from keepstone.store import sqlite_schema

        fairy = self._writer.raw_connection()
        try:
            return sqlite_schema.create(fairy.dbapi_connection, HEAD_REVISION)
        finally:
            fairy.close()

    def migrate_with_alembic(self) -> None:
        """Run Alembic's migrations from the catalog's revision to the newest."""
        # Imported here: heavy, and needed only to change the schema; Mako (Alembic's templates,
        # for writing new migrations) would import Pygments to colour its error pages.
        with hidden("pygments"):
            from alembic import command

        with self._writer.connect() as connection:
            sqlite = self.dialect == "sqlite"
            if sqlite:
                # A batch migration rebuilds a table (SQLite alters little in place), which
                # foreign keys referring to it would refuse; they are checked after instead.
                # The pragma must precede the transaction: inside one it is ignored.
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            try:
                with connection.begin():
                    config = _alembic_config(self.url)
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
                    if sqlite:
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                        if broken:
                            raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
            finally:
                if sqlite:
                    connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            yield session

    def read_row(self, statement: Executable) -> Row[Any] | None:
        """The first row of a Core select, in a read transaction of its own and without an ORM
        session: for a hot read of one row, whose session and identity map would cost more
        than the select itself."""
        with self._reader.connect() as connection:
            return connection.execute(statement).first()

    FAILED = object()  # dbapi_row's answer when the DBAPI raised

    @property
    def driver_dialect(self) -> Dialect:
        return self._reader.dialect

    def dbapi_row(self, sql: str, params: Any) -> tuple[Any, ...] | object | None:
        """The first row of ``sql`` (in the driver's parameter style) run on a DBAPI connection,
        its values as the driver gives them (``store.prepared`` converts them). ``FAILED`` when
        the driver raised: the connection is then invalidated, and the caller reads again
        through SQLAlchemy, whose errors the rest of Keepstone knows. On SQLite a single SELECT
        outside BEGIN is its own read transaction (closing the cursor ends it, so the next read
        sees every commit since); on PostgreSQL the pool's reset (a rollback) ends the one the
        select began."""
        held = self._loop_connection()
        connection = held if held is not None else self._reader.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(sql, params)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except self._reader.dialect.loaded_dbapi.Error:
            connection.invalidate()
            if held is not None:
                self._held.pop(threading.get_ident(), None)
                held.close()  # back to the pool, which connects it again when next handed out
            return self.FAILED
        finally:
            if held is None:
                connection.close()  # back to the pool
        return None if row is None else tuple(row)

    def _loop_connection(self) -> Any:
        """On SQLite, in a thread running an event loop (the API's hot reads, ``api.direct``),
        a pooled connection that thread keeps: handing one out of the pool and back costs more
        than the read itself. None elsewhere: worker threads, and PostgreSQL, use the pool."""
        if self.dialect != "sqlite":
            return None
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        ident = threading.get_ident()
        held = self._held.get(ident)
        if held is None:
            with self._held_lock:  # loops of several threads may ask at once
                if len(self._held) >= HELD_CONNECTIONS:  # more loops (tests): the pool's
                    return None
                held = self._held[ident] = self._reader.raw_connection()
        return held

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._write_lock, self._write_sessions() as session, session.begin():
            yield session

    BUSY = object()  # write_now's answer when it could not write at once

    def write_now(
        self, work: Callable[[Any], T], *, wait: bool = False, deferred: bool = False
    ) -> T | object:
        """``work(cursor)`` in a write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) on a DBAPI
        connection of the writer's kept for it (a pool's checkout and reset cost a quarter of
        the write), begun at once or not at all: for a short write from the event loop, which
        must never wait. ``BUSY``, with nothing written, when it could not: not SQLite (on
        PostgreSQL a write is a network round trip), another thread of this process writing
        (the writers' lock is taken without waiting), another process holding the catalog's
        write lock (that connection has no busy handler), or the driver raised (the connection
        is closed, and the next call makes another); the caller then writes through
        ``write()`` on a worker thread, whose errors are SQLAlchemy's. An exception of ``work``
        rolls back and propagates. ``wait`` (a worker thread): for this process's other writer
        first, as ``write()`` does. ``deferred``: a plain ``BEGIN``, for a ``work`` that often
        finds nothing to write (its read and ``COMMIT`` then take no write lock and append no WAL
        frame); its first write takes the lock then, and is ``BUSY`` (nothing written) when
        another process holds it or wrote since the read began."""
        if self.dialect != "sqlite" or not self._write_lock.acquire(blocking=wait):
            return self.BUSY
        try:
            try:
                if self._now_connection is None:
                    self._now_connection = self._own_connection()
                return immediately(self._now_connection, work, deferred=deferred)
            except sqlite3.Error:
                if self._now_connection is not None:
                    self._now_connection.close()  # whatever state the driver left it in
                self._now_connection = None
                return self.BUSY
        finally:
            self._write_lock.release()

    def _own_connection(self) -> Any:
        """A pysqlite connection of the writer's, set up as the pool sets up every one, taken
        out of the pool for ``write_now`` alone: without a busy handler (a held lock fails at
        once), which no other writer may lack."""
        fairy = self._writer.raw_connection()
        driver = fairy.dbapi_connection
        assert driver is not None  # just checked out
        fairy.detach()
        driver.execute("PRAGMA busy_timeout=0")
        return driver

    @contextmanager
    def claim(self) -> Iterator[Session]:
        """A write transaction whose statements lock the rows they take (``with_for_update``):
        on SQLite the ordinary writer; on PostgreSQL one that runs beside other writers, so
        several proxies claim at once and row locks keep them from taking the same row."""
        if self.dialect == "sqlite":
            with self.write() as session:
                yield session
            return
        with self._claim_sessions() as session, session.begin():
            yield session

    def notify(self, channel: str) -> None:
        """Tell the catalog's other processes that ``channel`` has news (PostgreSQL ``NOTIFY``;
        nothing on SQLite, whose only process is this one)."""
        if self.dialect == "postgresql":
            from keepstone.store import postgres  # see _make_engine

            with self._reader.connect() as connection:
                from keepstone.store import postgres

                postgres.notify(connection, channel)

    def dispose(self) -> None:
        now, self._now_connection = self._now_connection, None
        if now is not None:
            now.close()
        for held in list(self._held.values()):
            held.close()
        self._held.clear()
        self._reader.dispose()
        self._writer.dispose()


def immediately(driver: Any, work: Callable[[Any], T], *, deferred: bool = False) -> T:
    """``work`` in ``BEGIN IMMEDIATE`` (``deferred``: ``BEGIN``) on a pysqlite connection (in
    autocommit mode: SQLAlchemy's "begin" hook issues BEGIN)."""
    cursor = driver.cursor()
    try:
        cursor.execute("BEGIN" if deferred else "BEGIN IMMEDIATE")
        try:
            done = work(cursor)
            cursor.execute("COMMIT")
        except BaseException:
            if driver.in_transaction:
                cursor.execute("ROLLBACK")
            raise
    finally:
        cursor.close()
    return done


def retrying_disconnects(call: Callable[[], T], attempts: int = 5) -> T:
    """``call`` (one whole transaction) again when its connection was lost under it, as a
    PostgreSQL restart does to every open session: the transaction was rolled back, and the
    engine re-makes the connection. For the steps of a run that must not be lost with it."""
    for attempt in range(attempts):
        try:
            return call()
        except DBAPIError as error:
            if not error.connection_invalidated or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _make_engine(url: str, *, immediate: bool) -> Engine:
    # Enough pooled connections for every request thread plus the proxy: an overflow connection
    # is closed after use, and reopening one (with its PRAGMAs) on each request is costly.
    if url.startswith("postgresql"):
        from keepstone.store import postgres  # psycopg: imported only for a PostgreSQL catalog

        return postgres.make_engine(url, writer=immediate, pool_size=24, max_overflow=8)
    engine = create_engine(url, pool_size=24, max_overflow=8)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, immediate=immediate)
    return engine


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" hook issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # first: the rest may wait
        _ensure_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _ensure_wal(cursor: Any) -> None:
    """WAL is a property of the database file: switch only a database not yet in it. Switching
    needs a moment of exclusive access, which SQLite reports busy at once (no busy handler) while
    another process writes, so a contended switch is retried briefly."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    for attempt in range(50):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.1)


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("keepstone.store") / "migrations")
    )
    config.set_main_option("sqlalchemy.url", url)
    return config
