"""Paging in the catalog: one window of a table's rows, however deep, without reading the rest."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import literal, select, tuple_
from sqlalchemy.orm import Session

Where = Callable[[Any], Any]  # adds a listing's conditions to a select


def page_of(
    s: Session,
    table: Any,
    where: Where,
    keys: Sequence[Any],
    *,
    descending: bool = False,
    offset: int = 0,
    limit: int | None = None,
    total: int | None = None,
    after: Sequence[Any] | None = None,
) -> list[Any]:
    """The rows of ``table`` that ``where`` keeps, ordered by ``keys`` (all ascending or all
    descending, ending with the id so the order is total: an index on them serves it in either
    direction), from ``offset`` and at most ``limit`` (None: all).

    The window's ids are found first, from the index alone, then only those rows are read (the
    "deferred join"): a deep offset skips index entries, never rows. When the set's ``total`` is
    known, a window past the middle is found from the other end, so no window skips more than
    half the set.

    ``after``, the ``keys`` of the row just before the window (the last row of the previous
    page of the same pinned set), continues from it instead ("keyset" paging): the index is
    entered at that key, so a page costs the same at any depth; ``offset`` is then ignored."""
    if after is not None:
        # Each value bound as its column's type (a stored instant is not a plain datetime).
        bound = tuple_(*(literal(v, k.type) for k, v in zip(keys, after, strict=True)))
        past = tuple_(*keys) < bound if descending else tuple_(*keys) > bound
        query = where(select(table)).where(past).order_by(*_ordered(keys, descending))
        return list(s.scalars(query.limit(limit)))
    if not offset and limit is None:
        query = where(select(table)).order_by(*_ordered(keys, descending))
        return list(s.scalars(query))
    backwards = total is not None and limit is not None and offset + limit > total - offset
    if backwards:
        assert total is not None and limit is not None
        end = min(total, offset + limit)
        offset, limit = max(0, total - end), max(0, end - offset)
    order = _ordered(keys, descending != backwards)
    ids = where(select(table.id)).order_by(*order).offset(offset or None).limit(limit)
    rows = list(
        s.scalars(select(table).where(table.id.in_(ids.scalar_subquery())).order_by(*order))
    )
    return rows[::-1] if backwards else rows


def _ordered(keys: Sequence[Any], descending: bool) -> list[Any]:
    return [key.desc() if descending else key.asc() for key in keys]
