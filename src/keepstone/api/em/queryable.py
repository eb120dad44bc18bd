"""What the query service searches: a query type's rows, each with the fields filters and
sorts name, its reference and its entity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from lxml import etree

from keepstone.api.em.deps import Caller
from keepstone.api.em.query import Clause


@dataclass(frozen=True, slots=True)
class Found:
    fields: dict[str, Any]  # lower-case names, as filters and sorts name them
    ref: etree._Element | None  # None for resources without references (tasks)
    entity: etree._Element


Rows = Callable[[Request, Caller], list[Found]]
Order = tuple[str, bool]  # a field (lower-case) and whether ascending


@dataclass(frozen=True, slots=True)
class Window:
    """One page of a type's rows read from the catalog, and how many rows there are."""

    rows: list[Found]
    total: int


@dataclass(frozen=True, slots=True)
class Asked:
    """The page a query asks for: the rows ``clause`` keeps (None: all) in ``order`` (None: the
    type's natural order), from ``offset``, at most ``limit``."""

    clause: Clause | None
    order: Order | None
    offset: int
    limit: int


# That page read from the catalog; None when the catalog cannot evaluate its filter or order by
# its field (the rows are then filtered and sorted in memory).
Pager = Callable[[Request, Caller, Asked], Window | None]


def no_rows(request: Request, who: Caller) -> list[Found]:
    """The rows of a type Keepstone has no objects of (replicas, VM restore points, ...)."""
    del request, who
    return []


@dataclass(frozen=True, slots=True)
class QueryType:
    """A type of the vendor's query service: the element its entities are (``item``, as the
    schema names it) and the rows Keepstone has of it."""

    item: str
    rows: Rows = no_rows
    # Large types page (and filter, where their fields are columns) in the catalog: a page
    # reads its rows only.
    pager: Pager | None = None
