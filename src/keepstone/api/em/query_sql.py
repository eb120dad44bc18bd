"""A query filter (``api.em.query``) as the catalog's own WHERE clause, so that a filtered page
reads only its page.

Each type maps its fields (``Fields``) to what they are computed from. A filter becomes SQL only
when that SQL keeps exactly the rows the in-memory predicate keeps; otherwise ``condition`` says
None and the caller filters every row in memory, as before. What is exact:

- ``Text``: a column shown as it is stored (or with a constant prefix). The predicate compares
  ``str(value).lower()`` with the wanted value lowered whenever the wanted value is text (not a
  number, date or ordered word): every operator is then a comparison of lower-case text by code
  point. The catalog does the same under a binary collation with an ASCII-only ``lower`` (the C
  collation on PostgreSQL, SQLite's own) after replacing the two characters Python lowers to
  something holding ASCII (U+212A KELVIN SIGN, U+0130), for an ASCII wanted value: any other
  character outside ASCII sorts after every ASCII one on both sides, so it decides a comparison
  with ASCII text the same way whether lowered or not. A non-ASCII wanted value, or a number or
  date compared with text, stays in memory.
- ``Choices``: a field with a few values, each the value of a condition (a session's ``Result``
  from its status; ``ScheduleEnabled``; a constant). The predicate itself picks the values it
  keeps, so every operator and value is exact.
- ``Instant``: a time column shown by ``iso``, compared with a wanted date as instants (an unset
  time compares as the text ``none``, like the predicate's fallback).
- ``Number``: an integer column compared with a wanted number.

A ``Text`` column may be an expression: a session's Name is its job's name, ``@`` and its
creation time as ``views.iso`` writes it (``iso_text``, per dialect). A field mapped to None has
no SQL form: a filter naming it is evaluated in memory. A field a type does not have keeps nothing,
as the predicate says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Select, String, and_, false, func, literal, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from keepstone.api.em.query import (
    OPERATORS,
    Clause,
    Row,
    Term,
    comparable,
    is_plain_text,
    predicate_of,
)

# The non-ASCII characters whose Python lower case holds ASCII (checked by the tests over all
# of Unicode): replaced by it before the catalog's ASCII-only lower case.
LOWERED_TO_ASCII = {"\u212a": "k", "\u0130": "i\u0307"}


class ascii_lower(FunctionElement[str]):
    """``lower`` of ASCII letters only, comparing by code point on every catalog."""

    type = String()
    inherit_cache = True
    name = "ascii_lower"


@compiles(ascii_lower)
def _ascii_lower(element: ascii_lower, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's lower() changes ASCII letters only, and compares text as bytes (code points).
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(ascii_lower, "postgresql")
def _ascii_lower_pg(element: ascii_lower, compiler: SQLCompiler, **kw: Any) -> str:
    # Under the C collation PostgreSQL lowers ASCII letters only and compares bytes.
    return f'lower(({compiler.process(element.clauses, **kw)}) COLLATE "C")'


class iso_text(FunctionElement[str]):
    """A stored instant as ``views.iso`` shows it: ``YYYY-MM-DDTHH:MM:SS``, then seven fraction
    digits (the microseconds and a 0) when there is a fraction, then ``Z``."""

    type = String()
    inherit_cache = True
    name = "iso_text"


@compiles(iso_text)
def _iso_text(element: iso_text, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite holds an instant as the text YYYY-MM-DD HH:MM:SS.ffffff (UTC).
    stored = compiler.process(element.clauses, **kw)
    fraction = f"substr({stored}, 21, 6)"
    return (
        f"(replace(substr({stored}, 1, 19), ' ', 'T') || CASE WHEN {fraction} IN ('', '000000') "
        f"THEN '' ELSE '.' || {fraction} || '0' END || 'Z')"
    )


@compiles(iso_text, "postgresql")
def _iso_text_pg(element: iso_text, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL holds it as a timestamp without time zone (UTC).
    stored = compiler.process(element.clauses, **kw)
    return (
        f"""(to_char({stored}, 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN """
        f"date_trunc('second', {stored}) = {stored} THEN '' "
        f"ELSE '.' || to_char({stored}, 'US') || '0' END || 'Z')"
    )


@dataclass(frozen=True, slots=True)
class Text:
    """A text column (after ``prefix``); with ``through`` (a row's key, the other table's
    key), a column of the row the key refers to, compared there: the condition becomes ``key IN
    (the keys of the rows it keeps)``, one pass over the smaller table and then the key's index,
    where comparing row by row would read every row of the larger one. Exact because the key is
    a foreign key: every row's key refers to one row."""

    column: Any
    prefix: str = ""
    through: tuple[Any, Any] | None = None
    # For ``==``: a condition every row equal to the wanted (lower-case) value meets, which an
    # index answers (the column alone is an expression no index holds).
    equal_needs: Callable[[str], ColumnElement[bool] | None] | None = None


@dataclass(frozen=True, slots=True)
class Choices:
    """Each value the field can have, with the condition under which a row has it."""

    values: Sequence[tuple[ColumnElement[bool], str]]


@dataclass(frozen=True, slots=True)
class Instant:
    column: Any


@dataclass(frozen=True, slots=True)
class Number:
    column: Any


Field = Text | Choices | Instant | Number | None
Fields = Mapping[str, Field]  # every field of a type's rows, lower-case, as the rows name them


def constant(value: str) -> Choices:
    """A field every row has the same value of."""
    return Choices([(true(), value)])


K = TypeVar("K")

# The keys a query of ``Text.through`` finds, when they are few; None: many (or not looked up).
FewKeys = Callable[[Select[Any]], list[Any] | None]


def condition(
    clause: Clause, fields: Fields, few_keys: FewKeys | None = None
) -> ColumnElement[bool] | None:
    """The SQL condition that keeps exactly the rows ``clause`` keeps, or None when some part of
    it has no exact SQL form (the rows are then filtered in memory). ``few_keys`` looks up the
    keys a ``through`` field keeps first: a short list of values lets PostgreSQL's planner use
    its statistics (a subquery it cannot see into reads sessions in creation order looking for
    one job's)."""
    if isinstance(clause, Term):
        return _term(clause, fields, few_keys)
    kind, parts = clause
    conditions = [condition(part, fields, few_keys) for part in parts]
    kept = [c for c in conditions if c is not None]
    if len(kept) < len(conditions):
        return None
    return or_(*kept) if kind == "or" else and_(*kept)


def rows_kept(clause: Clause, fields: Fields, rows: Mapping[K, Row]) -> frozenset[K] | None:
    """Which of ``rows`` (each the values of some of a type's fields, keyed by what decides
    them) ``clause`` keeps, or None when it names a field the type has and they do not: a
    filter naming only fields that a few columns decide (a session's result, from its
    status) keeps the rows whose columns are one of the keys returned."""
    if not rows or not _names(clause) <= {*next(iter(rows.values())), *_absent(clause, fields)}:
        return None
    return frozenset(key for key, row in rows.items() if _keeps(clause, row))


def _names(clause: Clause) -> set[str]:
    if isinstance(clause, Term):
        return {clause.name}
    return set().union(*(_names(part) for part in clause[1]))


def _absent(clause: Clause, fields: Fields) -> set[str]:
    """The fields ``clause`` names that the type does not have (they keep nothing)."""
    return {name for name in _names(clause) if name not in fields}


def _keeps(clause: Clause, row: Row) -> bool:
    if isinstance(clause, Term):
        return predicate_of(clause)(row)
    kind, parts = clause
    kept = (_keeps(part, row) for part in parts)
    return any(kept) if kind == "or" else all(kept)


def _term(term: Term, fields: Fields, few_keys: FewKeys | None) -> ColumnElement[bool] | None:
    if term.name not in fields:
        return false()  # a field the type does not have: no row holds it
    field = fields[term.name]
    keeps = predicate_of(term)
    if isinstance(field, Choices):
        having = [when for when, value in field.values if keeps({term.name: value})]
        return or_(*having) if having else false()
    if isinstance(field, Text) and is_plain_text(term.name, term.value):
        shown = literal(field.prefix) + field.column if field.prefix else field.column
        for character, lowered in LOWERED_TO_ASCII.items():
            shown = func.replace(shown, character, lowered)
        kept = _compared(ascii_lower(func.coalesce(shown, "")), term.op, term.value.lower())
        needs = field.equal_needs if term.op == "==" else None
        needed = None if needs is None else needs(term.value.lower())
        if needed is not None:
            kept = and_(needed, kept)
        if field.through is None:
            return kept
        key, referred = field.through
        kept_keys = select(referred).where(kept)
        found = None if few_keys is None else few_keys(kept_keys)
        return cast(ColumnElement[bool], key.in_(kept_keys if found is None else found))
    wanted = comparable(term.name, term.value)
    if isinstance(field, Instant) and isinstance(wanted, timedelta):
        try:
            instant = (datetime.min + wanted).replace(tzinfo=UTC)
        except OverflowError:
            return None
        unset = true() if keeps({term.name: None}) else false()
        return or_(
            and_(field.column.is_(None), unset),
            and_(field.column.is_not(None), _compared(field.column, term.op, instant)),
        )
    if isinstance(field, Number) and isinstance(wanted, float):
        return _compared(field.column, term.op, wanted)
    return None


def _compared(left: Any, op: str, right: Any) -> ColumnElement[bool]:
    """``left op right`` built by the predicate's own operator (SQL expressions overload them)."""
    return cast(ColumnElement[bool], OPERATORS[op](left, right))
