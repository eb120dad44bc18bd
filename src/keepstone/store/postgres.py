"""PostgreSQL specifics of the catalog: engines that survive a server restart, the writers' lock,
and wake-ups across processes (``LISTEN``/``NOTIFY``).

A frozen process (``SIGSTOP``, a stalled VM) must not stall the catalog's other processes through
the writers' lock it holds: the writers' sessions carry ``idle_in_transaction_session_timeout``,
so PostgreSQL ends a session that sits inside a transaction longer than that (its transaction is
rolled back, the lock freed; the frozen process, once thawed, finds its connection gone and
commits nothing).

A restart of PostgreSQL ends every session: pooled connections are pinged before each use
(``pool_pre_ping``) and replaced, and while the server is still down new connections are retried
for ``RECONNECT_SECONDS`` (only once this engine has connected at least once, so a wrong URL at
start fails at once). Notifications are lost across reconnects, so a listener reports every
reconnect as a wake-up as well, and every waiter also polls.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from psycopg import sql
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

log = structlog.get_logger(__name__)

# The one lock every write transaction takes first, released at its commit or rollback: the
# catalog's writers are serialised as SQLite serialises them (BEGIN IMMEDIATE).
WRITERS_LOCK = 0x6B656570_73746E65  # "keepstne"
RECONNECT_SECONDS = 60.0
RETRY_PAUSE_SECONDS = 0.2
# Every session in UTC: times are stored as naive UTC (store/tables.py UtcDateTime).
SESSION_OPTIONS = "-c timezone=UTC"
# How long a writer may sit idle inside a transaction before PostgreSQL ends its session: far
# beyond any healthy write transaction (they are short catalog edits); a test cluster shortens it
# with the variable.
IDLE_IN_TRANSACTION_ENV = "KEEPSTONE_PG_IDLE_IN_TRANSACTION_SECONDS"
IDLE_IN_TRANSACTION_SECONDS = 30.0


def idle_in_transaction_seconds() -> float:
    """``$KEEPSTONE_PG_IDLE_IN_TRANSACTION_SECONDS``, else the default (30 s)."""
    chosen = os.environ.get(IDLE_IN_TRANSACTION_ENV, "")
    try:
        seconds = float(chosen) if chosen else IDLE_IN_TRANSACTION_SECONDS
    except ValueError:
        seconds = IDLE_IN_TRANSACTION_SECONDS
    return seconds if seconds > 0 else IDLE_IN_TRANSACTION_SECONDS


def writer_options() -> str:
    """The writers' session options: UTC, and ended when idle inside a transaction too long."""
    milliseconds = max(1, round(idle_in_transaction_seconds() * 1000))
    return f"{SESSION_OPTIONS} -c idle_in_transaction_session_timeout={milliseconds}"


def make_engine(url: str, *, writer: bool, pool_size: int, max_overflow: int) -> Engine:
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        connect_args={
            "options": writer_options() if writer else SESSION_OPTIONS,
            "connect_timeout": 10,
        },
    )
    _retry_connects(engine)
    _no_nul_in_text(engine)
    if writer:

        @event.listens_for(engine, "begin")
        def take_writers_lock(connection: Connection) -> None:
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITERS_LOCK})")

    return engine


def _retry_connects(engine: Engine) -> None:
    connected = threading.Event()

    @event.listens_for(engine, "do_connect")
    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            try:
                connection = dialect.loaded_dbapi.connect(*cargs, **cparams)
            except psycopg.OperationalError:
                if not connected.is_set() or time.monotonic() > deadline:
                    raise
                log.warning("catalog unreachable; connecting again")
                time.sleep(RETRY_PAUSE_SECONDS)
                continue
            connected.set()
            return connection


def _no_nul_in_text(engine: Engine) -> None:
    """PostgreSQL text cannot hold NUL (SQLite can): a NUL in a value from a client or a source
    (names are data) is kept as U+FFFD, which is how every representation shows a NUL anyway,
    rather than failing the request."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def replace(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> tuple[str, Any]:
        if many:
            return statement, [_without_nul(each) for each in parameters]
        return statement, _without_nul(parameters)


def _without_nul(parameters: Any) -> Any:
    if isinstance(parameters, dict):
        return {key: _clean(value) for key, value in parameters.items()}
    if isinstance(parameters, list | tuple):
        return type(parameters)(_clean(value) for value in parameters)
    return parameters


def _clean(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


def notify(connection: Connection, channel: str) -> None:
    connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})
    connection.commit()


def libpq_url(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as libpq reads it (for a bare connection)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """A thread that ``LISTEN``s on ``channel`` on its own connection and calls ``on_wake`` for
    every notification, and once after every reconnect (notifications sent while it was
    disconnected are lost)."""

    def __init__(self, url: str, channel: str, on_wake: Callable[[], None]) -> None:
        self._conninfo = libpq_url(url)
        self._channel = channel
        self._on_wake = on_wake
        self._stopping = threading.Event()
        self.listening = threading.Event()  # set while subscribed: tests wait for it
        self._thread = threading.Thread(target=self._loop, name="keepstone-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        first = True
        while not self._stopping.is_set():
            try:
                self._listen(wake_at_once=not first)
            except psycopg.Error as error:
                log.warning("catalog listener disconnected", error=str(error))
            self.listening.clear()
            first = False
            self._stopping.wait(RETRY_PAUSE_SECONDS)

    def _listen(self, *, wake_at_once: bool) -> None:
        with psycopg.connect(
            self._conninfo, autocommit=True, options=SESSION_OPTIONS, connect_timeout=10
        ) as connection:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            self.listening.set()
            if wake_at_once:
                self._on_wake()
            while not self._stopping.is_set():
                for _notice in connection.notifies(timeout=1.0):
                    self._on_wake()
