"""Query options as Graph reads them: `$select`, `$top`, and refusals for what a route lacks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class BadQuery(ValueError):
    """A 400 with Graph's code and a message naming the option."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_select(raw: str | None, allowed: Iterable[str], type_name: str) -> list[str] | None:
    """The `$select` list, or None when absent; an unknown property is a 400 as in Graph."""
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    known = set(allowed)
    for name in names:
        if name not in known:
            raise BadQuery(
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type '{type_name}'.",
            )
    return names


def parse_top(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise BadQuery(
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.",
        )
    return int(raw)


def refuse_options(params: Iterable[str], supported: set[str]) -> None:
    """A `$option` the route does not implement is refused, never silently ignored."""
    for name in params:
        if name.startswith("$") and name not in supported:
            raise BadQuery("Request_BadRequest", f"'{name}' is not supported by the service.")


def project(obj: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return obj
    return {name: obj[name] for name in select}
