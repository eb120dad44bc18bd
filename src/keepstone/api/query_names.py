"""Query parameters bound as the vendor's ASP.NET servers bind them.

ASP.NET matches a query parameter's name without its case (``parentID``, ``PARENTID`` and
``parentId`` are one parameter) and binds an empty value (``folderId=``) of a parameter that may
be null (a string, a list, a ``Nullable<T>``) as null: not sent. An empty value of a parameter
that may not be null (``int offset``, ``bool extendedView``) is a binding error, a 400.
Starlette and FastAPI match names exactly and would validate the empty text, so real clients
written for the vendor's servers got a flat folder tree (``parentID`` ignored) or a 404
(``folder '' does not exist``).

``QueryNames`` collects, once, the query parameters the dialects' routes declare (a handler's
own and those of its dependencies, such as the page's ``offset``/``limit``/``setId``), and
``canonical_query`` rewrites a request's query before routing: each name of a declared
parameter spelled as declared, and an empty value of a parameter that may be null dropped.
A request without a query string costs nothing; a query already spelled as declared costs a
look-up per parameter and is passed on as it came. A name a handler reads itself (not declared)
is left as it is.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote, unquote_plus

from fastapi import params
from fastapi.dependencies.utils import get_dependant, get_flat_params
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Router

from keepstone.api.deferred import routes_state
from keepstone.api.prefix_routing import first_segment


class Declared(NamedTuple):
    """A declared query parameter: its name as declared, and whether an empty value means
    "not sent" (a parameter that may be null, as ASP.NET binds it)."""

    name: str
    empty_is_absent: bool


@dataclass(frozen=True)
class Names:
    """A dialect's declared query parameters by lowercased name."""

    folded: dict[str, Declared]
    # by the bytes of the name as declared, as nearly every request spells it: looked up before
    # any decoding or folding
    exact: dict[bytes, Declared] = field(init=False)

    def __post_init__(self) -> None:
        exact = {quote(d.name).encode("ascii"): d for d in self.folded.values()}
        object.__setattr__(self, "exact", exact)


def canonical_query(query: bytes, names: Names) -> bytes:
    """``query`` (a raw query string) with each declared parameter's name spelled as declared
    and its empty values dropped where they mean "not sent"; ``query`` itself when nothing
    changes. Every other pair is kept byte for byte, in its place."""
    kept: list[bytes] = []
    changed = False
    for pair in query.split(b"&"):
        canonical = _canonical_pair(pair, names)
        if canonical is not None:
            kept.append(canonical)
        changed |= canonical is not pair
    return b"&".join(kept) if changed else query


def _canonical_pair(pair: bytes, names: Names) -> bytes | None:
    """``pair`` (``name=value``) itself, with its name as declared, or None: dropped."""
    raw, _, value = pair.partition(b"=")
    declared = names.exact.get(raw)
    if declared is not None:
        spelled = pair
    else:
        name = _decoded(raw)
        # ASCII letters only: .NET's ordinal comparison ignoring case folds no other letter to
        # them, where Python's lower() folds the Kelvin sign to "k"
        declared = names.folded.get(name.lower()) if name.isascii() else None
        if declared is None:
            return pair  # not a declared parameter: the handler reads it as it came
        spelled = quote(declared.name).encode("ascii") + b"=" + value
    return None if not value and declared.empty_is_absent else spelled


def _decoded(raw: bytes) -> str:
    # a name is nearly always plain ASCII: percent-decoding is paid only when there is some
    # (api.inputs has refused a query that is not UTF-8 once decoded)
    if b"%" in raw or b"+" in raw:
        return unquote_plus(raw.decode("ascii", "surrogateescape"))
    return raw.decode("latin-1")


def may_be_null(annotation: Any) -> bool:
    """Whether .NET's type for ``annotation`` may be null: a string, a list, or an optional
    value (``int | None``: a ``Nullable<int>``). A plain number, boolean, date or enumeration
    is a value type, which may not."""
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(arg is type(None) or may_be_null(arg) for arg in typing.get_args(annotation))
    return origin in (list, tuple, set, frozenset)


@dataclass(frozen=True)
class _Seen:
    """A declaration, and where it was seen (for the error that refuses a conflict)."""

    declared: Declared
    where: str


def dialect_of(segment: str) -> str | None:
    """The dialect a path's first segment belongs to: ``vb365`` (``v2`` … ``v8``), ``em``
    (``api``), else None (the console, probes: their pages read their own parameters)."""
    if segment == "api":
        return "em"
    if len(segment) > 1 and segment[0] == "v" and segment[1:].isdigit():
        return "vb365"
    return None


def declared_names(routes: list[BaseRoute]) -> dict[str, Names]:
    """Each dialect's declared query parameters by lowercased name. Two names that differ only
    in case, or one name that may be null in one route and not in another, cannot be told
    apart before routing: ``ValueError`` (at the start, not at a client's request)."""
    seen: dict[str, dict[str, _Seen]] = {}
    for path, declared in _declarations(routes):
        dialect = dialect_of(first_segment(path))
        if dialect is None:
            continue
        names = seen.setdefault(dialect, {})
        earlier = names.setdefault(declared.name.lower(), _Seen(declared, path))
        if earlier.declared != declared:
            raise ValueError(
                f"query parameter {declared.name!r} of {path} and {earlier.declared.name!r} of "
                f"{earlier.where} differ only in case or in whether an empty value means "
                "'not sent': a request's name cannot be matched to one of them"
            )
    return {
        dialect: Names({key: found.declared for key, found in names.items()})
        for dialect, names in seen.items()
    }


def _declarations(routes: list[BaseRoute]) -> Iterator[tuple[str, Declared]]:
    # analysed once each: the versions' routers share their routes and their includes'
    # dependencies (the caller's credentials)
    analysed: dict[int, list[Declared]] = {}
    for path, route, extra in _api_routes(routes):
        for key, part in ((id(route.dependant), route), *((id(call), call) for call in extra)):
            found = analysed.get(key)
            if found is None:
                dependant = part.dependant if part is route else get_dependant(path="", call=part)
                found = analysed[key] = _query_params(dependant)
            for declared in found:
                yield path, declared


def _api_routes(
    routes: list[BaseRoute], prefix: str = "", extra: tuple[Any, ...] = ()
) -> Iterator[tuple[str, APIRoute, tuple[Any, ...]]]:
    """Every FastAPI route (path, route, the callables of its includes' dependencies), through
    included routers, which FastAPI analyses again only at their first request."""
    for route in routes:
        context: Any = getattr(route, "include_context", None)
        if context is not None:
            calls = tuple(d.dependency for d in context.dependencies if d.dependency)
            inner = context.included_router.routes
            yield from _api_routes(inner, prefix + context.prefix, extra + calls)
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route, tuple(dict.fromkeys(extra))


def _query_params(dependant: Any) -> list[Declared]:
    return [
        Declared(param.alias, may_be_null(param.field_info.annotation))
        for param in get_flat_params(dependant)
        if isinstance(param.field_info, params.Query)
    ]


class QueryNames:
    """The declared query parameters of an app's dialects, collected when it is made and again
    whenever its routes change (the Enterprise Manager's, put in at its first request:
    ``api.deferred``)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._build()

    def _build(self) -> None:
        routes = list(self.router.routes)
        self._by_dialect = declared_names(routes)
        self._built_for = routes_state(routes)

    def canonical(self, path: str, query: bytes) -> bytes:
        """``query`` as ``canonical_query`` makes it for the dialect of ``path`` (a canonical
        path); as it is outside the dialects."""
        if self._built_for != routes_state(self.router.routes):
            self._build()
        names = self._by_dialect.get(dialect_of(first_segment(path)) or "")
        return query if names is None else canonical_query(query, names)
