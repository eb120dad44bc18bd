"""What the query service searches: a query type's rows, each with the fields filters and
sorts name, its reference and its entity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from lxml import etree

from keepstone.api.em.deps import Caller


@dataclass(frozen=True, slots=True)
class Found:
    fields: dict[str, Any]  # lower-case names, as filters and sorts name them
    ref: etree._Element | None  # None for resources without references (tasks)
    entity: etree._Element


Rows = Callable[[Request, Caller], list[Found]]


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
