"""One mapped row by its primary key, read or updated without SQLAlchemy's per-execution
machinery.

An API answer such as ``GET /v2/Jobs/{id}`` reads one row. Through a Core select that read cost
about 400 us of CPU here, nearly all of it SQLAlchemy's work around the statement (building it,
its cache key, the execution context, the result object, an instrumented instance), while the
DBAPI's own execute and fetch took under 20 us (figures in docs/benchmarks.md). ``KeyRead``
compiles the select once per dialect, runs it on a pooled DBAPI connection, converts each value
with its column type's own result processor (so values are exactly what the ORM would load) and
fills a detached instance as the ORM's loader does (``ClassManager.new_instance``, then the
instance's ``__dict__``).

A DBAPI error is never raised from here: the connection is invalidated and the read is made again
through SQLAlchemy (``Database.read_row``), which reconnects where it can and otherwise raises its
own wrapped error, as every other read does (the API answers a catalog that is away with a 503).

``KeyUpdate`` is the write of the same kind: ``UPDATE <table> SET <the columns given> WHERE
<primary key> = :key``, compiled once per dialect and set of columns, each value converted by its
column type's own bind processor (so the stored value is exactly what the ORM would store). Both
run inside a caller's DBAPI write transaction (``Database.write_now``) through ``KeyRead.values_in``
and ``KeyUpdate.run_in``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from sqlalchemy import JSON, Table, bindparam, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

if TYPE_CHECKING:
    from keepstone.store.db import Database

M = TypeVar("M", bound=DeclarativeBase)
Processor = Callable[[Any], Any] | None
# the columns whose type converts a driver's value: each one's name and processor
Converters = tuple[tuple[str, Callable[[Any], Any]], ...]


class _Compiled:
    """The select's SQL in one dialect's parameter style, and a processor per column."""

    def __init__(
        self,
        select_sql: str,
        positional: bool,
        names: Sequence[str],
        processors: Sequence[Processor],
    ) -> None:
        self.sql = select_sql
        self.positional = positional
        # only these are called on a row (a job's JSON, dates and flag: 7 of its 16 columns)
        self.converters: Converters = tuple(
            (name, process)
            for name, process in zip(names, processors, strict=True)
            if process is not None
        )


class KeyRead(Generic[M]):
    """``SELECT <every column> FROM <mapped table> WHERE <primary key> = :key``."""

    def __init__(self, mapped: type[M]) -> None:
        table = mapped.__table__
        (key,) = table.primary_key.columns  # type: ignore[attr-defined]
        self.statement = select(table).where(key == bindparam("key"))
        self.names = [column.key for column in table.columns]
        self._types = [column.type for column in table.columns]
        self._manager = mapped.__mapper__.class_manager
        self._compiled: dict[str, _Compiled] = {}

    def __call__(self, db: Database, key: str) -> M | None:
        found = self.stored(db, key)
        return None if found is None else found.instance()

    def stored(self, db: Database, key: str) -> Stored[M] | None:
        """The row as stored: its instance made on demand, and the driver's values as a
        hashable snapshot where they make one (an answer made from the row can be kept by it)."""
        compiled = self._compiled.get(db.dialect) or self._compile(db.driver_dialect)
        params: Any = (key,) if compiled.positional else {"key": key}
        values = db.dbapi_row(compiled.sql, params)
        if values is db.FAILED:  # the DBAPI's error: the wrapped read decides
            row = db.read_row(self.statement.params(key=key))
            return None if row is None else Stored(self, None, tuple(row))
        if values is None:
            return None
        assert isinstance(values, tuple)
        return Stored(self, snapshot(values), values, compiled.converters)

    def values_in(
        self, cursor: Any, dialect: Dialect, key: str
    ) -> tuple[dict[str, Any], tuple[Any, ...]] | None:
        """The row in the transaction of ``cursor`` (a DBAPI cursor of ``dialect``) as its
        values by column name, converted, no instance made (a caller works on plain values and
        makes the instance of the result, ``instance_of``), and the driver's values as read
        (``snapshot`` of them is what ``stored`` gives for the same row, made only when a caller
        keeps something by it); the driver's errors are the caller's to handle."""
        compiled = self._compiled.get(dialect.name) or self._compile(dialect)
        cursor.execute(compiled.sql, (key,) if compiled.positional else {"key": key})
        values = cursor.fetchone()
        if values is None:
            return None
        values = tuple(values)
        return self._by_name(values, compiled.converters), values

    def instance_of(self, values: dict[str, Any]) -> M:
        """A detached instance holding ``values`` (every column's, converted)."""
        instance: M = self._manager.new_instance()
        instance.__dict__.update(values)
        return instance

    def _by_name(self, values: Sequence[Any], converters: Converters) -> dict[str, Any]:
        converted = dict(zip(self.names, values, strict=True))
        for name, process in converters:
            converted[name] = process(converted[name])
        return converted

    def _converted(self, values: Sequence[Any], converters: Converters) -> M:
        return self.instance_of(self._by_name(values, converters))

    def _instance(self, values: Sequence[Any]) -> M:
        return self.instance_of(dict(zip(self.names, values, strict=True)))

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        processors = [
            _decoded_once(kind.dialect_impl(dialect).result_processor(dialect, None))
            if isinstance(kind, JSON)
            else kind.dialect_impl(dialect).result_processor(dialect, None)
            for kind in self._types
        ]
        made = _Compiled(str(compiled), compiled.positional, self.names, processors)
        self._compiled[dialect.name] = made
        return made


_FLAT_TEXT = 4096  # longer documents are decoded every time, and never kept
_SCALARS = (str, int, float, bool, type(None))
_NESTED = object()  # a kept text whose document holds an object or an array


def _decoded_once(process: Processor) -> Processor:
    """A JSON column's result processor that decodes a short text of a flat document (an object
    or array of scalars: a job's schedule record, an empty item list) once, then hands out a
    shallow copy of it: a new dict or list of the same immutable values, equal to what
    ``process`` makes and as much the caller's own (a job's schedule record cost about as
    much to decode again as its copy and the rest of the read together). Anything else is
    ``process``'s, as before (a driver that decodes JSON itself hands over no text)."""
    if process is None:
        return None
    decode = process

    @lru_cache(maxsize=256)
    def flat(text: str) -> Any:
        value = decode(text)
        if isinstance(value, dict) and all(type(v) in _SCALARS for v in value.values()):
            return value
        if isinstance(value, list) and all(type(v) in _SCALARS for v in value):
            return value
        return _NESTED

    def convert(value: Any) -> Any:
        if type(value) is str and len(value) <= _FLAT_TEXT:
            kept = flat(value)
            if kept is not _NESTED:
                return kept.copy()
        return decode(value)

    return convert


class KeyUpdate(Generic[M]):
    """``UPDATE <mapped table> SET <columns> WHERE <primary key> = :key`` for any set of the
    table's columns, each set compiled once per dialect."""

    def __init__(self, mapped: type[M]) -> None:
        self._table = cast(Table, mapped.__table__)
        (self._key,) = self._table.primary_key.columns
        self._types = {column.key: column.type for column in self._table.columns}
        # (dialect, columns) -> SQL, positional, the bound names in order, their processors
        self._compiled: dict[tuple[str, tuple[str, ...]], _CompiledUpdate] = {}

    def run_in(self, cursor: Any, dialect: Dialect, key: str, values: dict[str, Any]) -> int:
        """Set ``values`` (column name to Python value) on the row ``key`` in the transaction of
        ``cursor``; the rows changed (1, or 0 for no such row)."""
        names = tuple(values)
        compiled = self._compiled.get((dialect.name, names)) or self._compile(dialect, names)
        given = values | {"key": key}
        converted = {
            name: given[name] if process is None else process(given[name])
            for name, process in compiled.processors.items()
        }
        if compiled.positional:
            cursor.execute(compiled.sql, tuple(converted[name] for name in compiled.order))
        else:
            cursor.execute(compiled.sql, converted)
        return int(cursor.rowcount)

    def _compile(self, dialect: Dialect, names: tuple[str, ...]) -> _CompiledUpdate:
        statement = (
            update(self._table)
            .where(self._key == bindparam("key"))
            .values({name: bindparam(name) for name in names})
        )
        compiled = statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup or ()) if compiled.positional else ()
        types = self._types | {"key": self._key.type}
        processors = {
            name: types[name].dialect_impl(dialect).bind_processor(dialect)
            for name in (*names, "key")
        }
        made = _CompiledUpdate(str(compiled), compiled.positional, order, processors)
        self._compiled[(dialect.name, names)] = made
        return made


class _CompiledUpdate:
    def __init__(
        self,
        sql: str,
        positional: bool,
        order: tuple[str, ...],
        processors: Mapping[str, Processor],
    ) -> None:
        self.sql = sql
        self.positional = positional
        self.order = order  # the bound names in the SQL's order (positional styles)
        self.processors = processors


class Stored(Generic[M]):
    """One row read by ``KeyRead``. ``snapshot``: the driver's values made hashable (by the
    function ``snapshot``), None for a row read again through SQLAlchemy (its values
    converted): equal snapshots are equal rows, so whatever is made from one row alone may be
    kept by it."""

    def __init__(
        self,
        reader: KeyRead[M],
        snapshot: tuple[Any, ...] | None,
        values: tuple[Any, ...],
        converters: Converters | None = None,
    ) -> None:
        self.reader = reader
        self.snapshot = snapshot
        self._values = values
        self._converters = converters  # None: the values are converted already

    def instance(self) -> M:
        """A new detached instance of the row (each call its own: callers may change it)."""
        if self._converters is None:
            return self.reader._instance(self._values)
        return self.reader._converted(self._values, self._converters)


def snapshot(values: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The driver's values, hashable: a JSON document PostgreSQL's driver gives as a dict or list
    is written as its text, keys in their order (equal texts, equal documents, equal answers)."""
    try:
        hash(values)  # SQLite's always are: text, numbers, bytes
        return values
    except TypeError:
        pass
    frozen = tuple(
        ("json", json.dumps(value)) if isinstance(value, dict | list) else value for value in values
    )
    try:
        hash(frozen)
    except TypeError:
        return None
    return frozen
