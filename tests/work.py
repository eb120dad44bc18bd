"""Counting the catalog work a piece of code does, so scaling tests compare work, never time.

A scaling test runs the same operation for N and for 4N items inside ``catalog_work(ctx)`` and
asserts with ``assert_linear`` that the statements executed and the bytes sent to the catalog
grow at most linearly. Work counts do not depend on the machine's speed, so such a test cannot be
flaky, and a quadratic path (a list rewritten on every append, a query per item per item) fails
it at any N.

``rows_loaded`` counts the ORM objects loaded meanwhile (by any session of the process): a
listing that pages in the catalog loads its page, never the whole set.

Bytes are the sizes of the bound parameters of the writing statements (INSERT, UPDATE, DELETE):
what the catalog is asked to store. A JSON list rewritten on every append shows up there on
SQLite and PostgreSQL alike, whatever the pages and the WAL make of it.

On SQLite, ``vm_steps`` also counts the virtual machine's instructions (in units of
``VM_STEP``, through SQLite's progress handler): the rows a statement reads, which statements and
bytes do not show. A lookup that scans a session's earlier rows (a missing index) costs one
statement per append but N steps, and shows up there as a quadratic total.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from keepstone.services.context import Context

WRITES = ("INSERT", "UPDATE", "DELETE")
VM_STEP = 100  # SQLite calls the progress handler every this many virtual machine instructions


@dataclass
class CatalogWork:
    """What the catalog was asked to do while counting."""

    statements: list[str] = field(default_factory=list)
    written_bytes: int = 0
    vm_steps: int = 0  # SQLite only (0 on PostgreSQL): instructions run, in VM_STEP units
    rows_loaded: int = 0  # ORM objects read from the catalog (each row a listing loads)
    # The writing statements of each transaction committed on the writers' engine.
    transactions: list[list[str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    @property
    def writes(self) -> int:
        return sum(1 for s in self.statements if s.lstrip().upper().startswith(WRITES))


@contextmanager
def catalog_work(ctx: Context) -> Iterator[CatalogWork]:
    """Count the statements and written bytes of everything ``ctx``'s catalog runs inside."""
    work = CatalogWork()
    watched: dict[int, Any] = {}  # SQLite connections whose instructions are being counted
    pending: dict[int, list[str]] = {}  # the writing statements of each open transaction

    def step() -> int:
        work.vm_steps += 1
        return 0  # go on

    def record(
        conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        work.statements.append(statement)
        if statement.lstrip().upper().startswith(WRITES):
            work.written_bytes += parameter_bytes(parameters)
            pending.setdefault(id(conn.connection), []).append(statement)
        raw = conn.connection.driver_connection
        if conn.dialect.name == "sqlite" and id(raw) not in watched:
            raw.set_progress_handler(step, VM_STEP)
            watched[id(raw)] = raw

    def loaded(_session: Any, _instance: Any) -> None:
        work.rows_loaded += 1

    def committed(conn: Any) -> None:
        work.transactions.append(pending.pop(id(conn.connection), []))

    engines = {ctx.db._reader, ctx.db._writer}  # reads and writes run on their own engines
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    event.listen(Session, "loaded_as_persistent", loaded)
    event.listen(ctx.db._writer, "commit", committed)
    try:
        yield work
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
        event.remove(Session, "loaded_as_persistent", loaded)
        event.remove(ctx.db._writer, "commit", committed)
        for raw in watched.values():
            raw.set_progress_handler(None, 0)


def stored_bytes(ctx: Context) -> int:
    """What the catalog takes: SQLite's database size in pages (``page_count``, which counts
    the pages still in the WAL too), PostgreSQL's database size."""
    with ctx.db.read() as s:
        if ctx.db.dialect == "sqlite":
            pages = s.scalar(text("PRAGMA page_count")) or 0
            return int(pages) * int(s.scalar(text("PRAGMA page_size")) or 0)
        return int(s.scalar(text("SELECT pg_database_size(current_database())")) or 0)


def parameter_bytes(parameters: Any) -> int:
    """The size of bound parameters: text and bytes by length, anything else 8 bytes."""
    if parameters is None:
        return 0
    if isinstance(parameters, str | bytes | bytearray | memoryview):
        return len(parameters)
    if isinstance(parameters, Mapping):
        return sum(parameter_bytes(v) for v in parameters.values())
    if isinstance(parameters, Sequence):
        return sum(parameter_bytes(v) for v in parameters)
    return 8


def assert_linear(small: int, large: int, *, factor: int = 4, what: str = "work") -> None:
    """``large`` (measured for ``factor`` times the items of ``small``) grew at most linearly.

    A little slack covers fixed costs that do not scale (a first query, a cache warming); a
    quadratic path measured at 4N costs 16 times N and fails by far.
    """
    limit = factor * small * 1.25 + 16
    assert large <= limit, f"{what} grew from {small} to {large} for {factor}x the items"
