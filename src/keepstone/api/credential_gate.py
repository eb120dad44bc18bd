"""A request that sends no credentials to a route that needs them, refused before FastAPI's route.

Such a request's answer is settled before anything else is looked at: the route's first
dependency is its credential check (the JSON dialect's routers declare ``principal`` ahead of
every other dependency; an EM route takes ``caller`` or ``logged_on`` first), FastAPI solves
dependencies in order and raises what it found wrong with the parameters only after all of them,
and a check given no credentials raises at once. Running that check in the one layer in front of
the app (``api.edge``), and answering its error as the app's exception handler does, answers the
401 without Starlette's exception middleware, FastAPI's matching, dependency solving and exit
stacks (most of that answer's CPU: docs/benchmarks.md). Only a request without a body is taken,
since FastAPI parses a body before solving dependencies, so a malformed one is refused for that
first; anything else goes to FastAPI.

Which route FastAPI would run is found as FastAPI finds it: the first route, in the app's order,
whose path pattern matches and whose methods include the request's (one regular expression per
first path segment and method, the routes' patterns in order, so the first alternative that
matches is that route). A segment whose routes include one that is not a plain route (a mount,
say, which matches by prefix) is never gated.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import BaseRoute, Router, compile_path
from starlette.types import Scope

from keepstone.api.deferred import routes_state
from keepstone.api.prefix_routing import first_segment
from keepstone.domain.errors import KeepstoneError

Check = Callable[[Request], Awaitable[Any]]
# a credential check -> whether a request carries what that check reads
Carries = Callable[[Scope], bool]


@dataclass(frozen=True)
class _Route:
    """A route as FastAPI matches it within the app: its whole path, its methods, and the
    first dependency it solves (its included routers' dependencies come first)."""

    template: str
    methods: frozenset[str]
    first_dependency: object
    route: APIRoute


def _flatten(
    routes: Iterable[BaseRoute], prefix: str = "", inherited: tuple[object, ...] = ()
) -> Iterator[tuple[str, _Route | None]]:
    """Every route in matching order with its path's first segment ("" when a route may match
    any); the route itself is None when it is not a plain ``APIRoute`` (a mount, a Starlette
    route), which disables the gate on its segment."""
    for route in routes:
        context: Any = getattr(route, "include_context", None)
        if context is not None:
            added = tuple(depends.dependency for depends in context.dependencies)
            yield from _flatten(
                context.included_router.routes, prefix + context.prefix, inherited + added
            )
        elif isinstance(route, APIRoute):
            own = tuple(dependency.call for dependency in route.dependant.dependencies)
            first = (inherited + own)[:1]
            template = prefix + route.path
            flat = _Route(
                template, frozenset(route.methods or ()), first[0] if first else None, route
            )
            yield _segment(template), flat
        elif isinstance(declared := getattr(route, "segments", None), frozenset):
            # a route that says which first segments it takes (console.Pages): those only
            yield from ((segment, None) for segment in declared if segment)
        else:
            yield _segment(prefix + str(getattr(route, "path", ""))), None


def _segment(template: str) -> str:
    segment = first_segment(template)
    return "" if "{" in segment else segment


MATCHES_KEPT = 1024  # per first segment and method


class _Candidates:
    """The routes of one first segment that accept one method, as one pattern."""

    def __init__(self, routes: list[_Route]) -> None:
        self.routes = routes
        # paths asked again (a client polling one resource): the match of a hundred routes'
        # pattern is most of the gate's cost; bounded, as the paths are the client's
        self._matched: dict[str, _Route | None] = {}

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        """Compiled when its segment and method are first asked for: the index holds a pattern
        per version of the JSON dialect and method, and compiling them all (Python's regular
        expression compiler, over a thousand routes) was most of a server's first answer."""
        return re.compile(
            "|".join(f"(?P<r{i}>{_unanchored(r.template)})" for i, r in enumerate(self.routes))
        )

    def first_match(self, path: str) -> _Route | None:
        if path in self._matched:
            return self._matched[path]
        found = self.pattern.fullmatch(path)
        route = None if found is None else self.routes[int(str(found.lastgroup)[1:])]
        if len(self._matched) >= MATCHES_KEPT:
            self._matched.clear()
        self._matched[path] = route
        return route


def _unanchored(template: str) -> str:
    """The template's path pattern (as Starlette compiles it) without its anchors and with its
    groups unnamed (names repeat across routes, and only which route matched is wanted)."""
    source = compile_path(template)[0].pattern.removeprefix("^").removesuffix("$")
    return re.sub(r"\(\?P<[^>]+>", "(?:", source)


class CredentialGate:
    def __init__(self, checks: Mapping[Any, Carries], router: Router) -> None:
        self.checks = checks  # keyed by the dependency's callable
        self.router = router  # the app's: its routes, in its order
        self._built_for = (-1, -1)  # the routes_state the index was made for
        self._by_segment_and_method: dict[tuple[str, str], _Candidates] = {}
        self._refusals: dict[Check, KeepstoneError] = {}

    async def refusal(self, check: Check, request: Request) -> KeepstoneError | None:
        """What ``check`` raises for a request without the credentials it reads: it is asked
        once, and what it raised is kept (its message names what to send, never anything of
        the request; raising it again, through a coroutine and its traceback, was a sixth of a
        refused request's CPU). None when it did not raise (the app then answers)."""
        known = self._refusals.get(check)
        if known is not None:
            return known
        try:
            await check(request)
        except KeepstoneError as error:
            self._refusals[check] = error.with_traceback(None)  # not the first request's frames
            return error
        return None

    def build(self, routes: Iterable[BaseRoute]) -> None:
        """Index the app's routes (in its order) by first path segment and method; a route that
        may match any segment belongs to every segment's list."""
        flat = list(_flatten(routes))
        segments = {segment for segment, _route in flat if segment}
        self._by_segment_and_method = {}
        for segment in segments:
            listed = [route for s, route in flat if s in (segment, "")]
            plain = [route for route in listed if route is not None]
            if len(plain) != len(listed):
                continue
            for method in {method for route in plain for method in route.methods}:
                taking = [route for route in plain if method in route.methods]
                self._by_segment_and_method[segment, method] = _Candidates(taking)

    def check_without_credentials(self, scope: Scope) -> Check | None:
        """The credential check of the route FastAPI would run for ``scope``, when the request
        carries nothing that check reads; None otherwise (FastAPI then answers as usual). Sets
        the scope's route, as FastAPI's routing does, for the access log and metrics."""
        state = routes_state(self.router.routes)
        if self._built_for != state:  # also routes added after the first request
            self.build(self.router.routes)
            self._built_for = state
        path = scope["path"]
        candidates = self._by_segment_and_method.get((first_segment(path), scope["method"]))
        if candidates is None:
            return None
        found = candidates.first_match(path)
        if found is None:
            return None
        carries = self.checks.get(found.first_dependency)
        if carries is None or carries(scope):
            return None
        scope["route"] = found.route
        scope["endpoint"] = found.route.endpoint
        return found.first_dependency  # type: ignore[return-value]


def has_header(*names: bytes) -> Carries:
    """Whether the request sends any of ``names`` (lower-case, as ASGI gives header names)."""

    def carries(scope: Scope) -> bool:
        return any(name in names for name, _value in scope["headers"])

    return carries
