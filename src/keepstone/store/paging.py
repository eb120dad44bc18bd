"""Paging in the catalog: one window of a table's rows, however deep, without reading the rest."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, select

Where = Callable[[Any], Any]  # adds a listing's conditions to a select


def page_of(
    table: Any, where: Where, order: tuple[Any, ...], offset: int = 0, limit: int | None = None
) -> Select[Any]:
    """The rows of ``table`` that ``where`` keeps, in ``order`` (which ends with the id, so the
    order is total), from ``offset`` and at most ``limit`` (None: all).

    The window's ids are found first, from an index that covers the order, then only those rows
    are read: a deep offset skips index entries, never whole rows (the "deferred join")."""
    if not offset and limit is None:
        query: Select[Any] = where(select(table)).order_by(*order)
        return query
    ids = where(select(table.id)).order_by(*order).offset(offset or None).limit(limit)
    return select(table).where(table.id.in_(ids.scalar_subquery())).order_by(*order)
