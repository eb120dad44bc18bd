"""One mapped row by its primary key, read without SQLAlchemy's per-execution machinery.

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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

if TYPE_CHECKING:
    from keepstone.store.db import Database

M = TypeVar("M", bound=DeclarativeBase)
Processor = Callable[[Any], Any] | None


class _Compiled:
    """The select's SQL in one dialect's parameter style, and a processor per column."""

    def __init__(self, select_sql: str, positional: bool, processors: Sequence[Processor]) -> None:
        self.sql = select_sql
        self.positional = positional
        self.processors = processors


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
        compiled = self._compiled.get(db.dialect) or self._compile(db.driver_dialect)
        params: Any = (key,) if compiled.positional else {"key": key}
        values = db.dbapi_row(compiled.sql, params)
        if values is db.FAILED:  # the DBAPI's error: the wrapped read decides
            row = db.read_row(self.statement.params(key=key))
            return None if row is None else self._instance(tuple(row))
        if values is None:
            return None
        assert isinstance(values, tuple)
        return self._instance(
            tuple(
                value if process is None else process(value)
                for process, value in zip(compiled.processors, values, strict=True)
            )
        )

    def _instance(self, values: tuple[Any, ...]) -> M:
        instance: M = self._manager.new_instance()
        instance.__dict__.update(zip(self.names, values, strict=True))
        return instance

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        processors = [
            kind.dialect_impl(dialect).result_processor(dialect, None) for kind in self._types
        ]
        made = _Compiled(str(compiled), compiled.positional, processors)
        self._compiled[dialect.name] = made
        return made
