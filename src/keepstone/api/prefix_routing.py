"""Routing by a path's first segment before FastAPI's linear scan of the routes.

The app includes the JSON dialect's routers once per version (``/v2`` … ``/v8``) beside the
Enterprise Manager dialect's (``/api``), and FastAPI tries every included router in turn: each
one scans its routes and recounts them (``_get_routes_version``), so an ``/api`` request went
through every ``/vN`` router first (profile in docs/benchmarks.md). ``PrefixRouting`` keeps the
app's routes as they are (OpenAPI, ``app.routes`` and the contract tests see no change) and, per
request, lets FastAPI scan only the routes that can match the path's first segment, in their
order: the first full or partial match is therefore the one the whole scan would have found.
``DirectRoutes`` finds, the same way, the direct route (``api.direct``) a request is for, which
``api.edge`` runs before the app.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.routing import APIRouter
from starlette.routing import BaseRoute, Router
from starlette.types import Receive, Scope, Send

from keepstone.api import direct as direct_routes
from keepstone.api.deferred import routes_state

ANY = None  # a route whose first segment is a parameter (or unknown) may match any path


def first_segment(path: str) -> str:
    """``"v2"`` of ``/v2/Jobs``; ``""`` of ``/``."""
    return path.split("/", 2)[1] if path.startswith("/") else ""


def _segments_of_path(path: str) -> set[str] | None:
    segment = first_segment(path)
    return ANY if not segment or "{" in segment else {segment}


def segments_of(route: BaseRoute) -> set[str] | None:
    """The first segments of the paths ``route`` can match; ANY when it cannot be told."""
    context: Any = getattr(route, "include_context", None)
    if context is not None:  # an included router (FastAPI matches it lazily, route by route)
        if context.prefix:
            return _segments_of_path(context.prefix)
        return _union(segments_of(inner) for inner in context.included_router.routes)
    declared = getattr(route, "segments", None)  # a route that says which (console.Pages)
    if isinstance(declared, frozenset):
        return set(declared)
    path = getattr(route, "path", None)
    return _segments_of_path(path) if isinstance(path, str) else ANY


def _union(parts: Iterable[set[str] | None]) -> set[str] | None:
    found: set[str] = set()
    for part in parts:
        if part is ANY:
            return ANY
        found |= part
    return found


class PrefixRouting:
    """Stands in for ``router``'s own dispatch (``router.middleware_stack``); lifespan events and
    websockets go to the router itself."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self._built_for = (-1, -1)  # the routes_state the partition was made for
        self._by_segment: dict[str, APIRouter] = {}
        self._rest = router

    def _partition(self) -> None:
        routes = list(self.router.routes)
        segments = [segments_of(route) for route in routes]
        known = set().union(*(s for s in segments if s is not ANY))
        self._by_segment = {
            key: self._subset(
                r for r, s in zip(routes, segments, strict=True) if s is ANY or key in s
            )
            for key in known
        }
        self._rest = self._subset(r for r, s in zip(routes, segments, strict=True) if s is ANY)
        self._built_for = routes_state(routes)

    def _subset(self, routes: Iterable[BaseRoute]) -> APIRouter:
        subset = APIRouter(
            routes=list(routes),
            redirect_slashes=self.router.redirect_slashes,
            default=self.router.default,
        )
        return subset

    def router_for(self, path: str) -> APIRouter:
        """The routes a request for ``path`` may match, in the app's order."""
        if self._built_for != routes_state(self.router.routes):  # also routes added later
            self._partition()
        return self._by_segment.get(first_segment(path), self._rest)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path"):
            await self.router.app(scope, receive, send)
            return
        scope.setdefault("router", self.router)  # url_for sees every route
        await self.router_for(scope["path"]).app(scope, receive, send)


def install(router: APIRouter) -> None:
    """Route ``router``'s requests by first segment; a router with middleware of its own is
    left as it is (its stack is not ``router.app``)."""
    if router.middleware_stack == router.app:
        router.middleware_stack = PrefixRouting(router)


# a direct route and the path parameters it found
Found = tuple[direct_routes.Bound, dict[str, str]]
MATCHES_KEPT = 4096  # (method, path) pairs whose direct route, or none, is remembered
# Only paths this short are remembered: a direct route's path (``/v8/Jobs/<uuid>``) is about 45
# characters, and 4,096 of the longest paths a client may send would hold hundreds of MB.
PATH_KEPT = 256


class DirectRoutes:
    """The direct routes of an app (``api.direct``) by first segment, each bound to the app's
    routes (again whenever their number changes: routes added after the first request)."""

    def __init__(self, direct: list[direct_routes.DirectRoute], router: Router) -> None:
        self.direct = direct
        self.router = router
        self._built_for = (-1, -1)
        self._by_segment: dict[str, list[direct_routes.Bound]] = {}
        # (method, path) -> what _find answered: a client reads or edits the same job again
        # and again, and the routes' regexes (and those of the routes before them) cost more
        # than a look-up; forgotten whole when full or when the routes change
        self._found: dict[tuple[str, str], Found | None] = {}

    def add(self, direct: list[direct_routes.DirectRoute]) -> None:
        """More direct routes, for routes put in the app after it was made (``api.deferred``):
        bound with the routes at the next match."""
        self.direct = [*self.direct, *direct]
        self._built_for = (-1, -1)

    def match(self, method: str, path: str) -> Found | None:
        """The direct route for ``method`` and ``path`` and its path parameters, if any."""
        if self._built_for != routes_state(self.router.routes):
            self._bind()
        key = (method, path)
        if key in self._found:
            found = self._found[key]
        else:
            found = self._find(method, path)
            if len(path) <= PATH_KEPT:
                if len(self._found) >= MATCHES_KEPT:
                    self._found.clear()
                self._found[key] = found
        return None if found is None else (found[0], dict(found[1]))  # the caller's own dict

    def _find(self, method: str, path: str) -> Found | None:
        for bound in self._by_segment.get(first_segment(path), ()):
            params = bound.match(method, path)
            if params is not None:
                return bound, params
        return None

    def _bind(self) -> None:
        routes = list(self.router.routes)
        self._found = {}
        self._by_segment = {}
        for bound in direct_routes.bind(self.direct, routes):
            segment = first_segment(bound.route.template)
            self._by_segment.setdefault(segment, []).append(bound)
        self._built_for = routes_state(routes)
