"""Hot routes answered without FastAPI's per-request machinery.

A FastAPI route costs, on every request, its dependency solving (a coroutine and a dict per
dependency), its exit stacks, and for a sync handler a hop to a worker thread and back, which
hands the GIL over twice: together most of the CPU of a short request (profile in
docs/benchmarks.md). The few routes clients hit the most (a job read or edited by id) are also
registered here as plain coroutines over the same services; ``api.edge`` runs one, in front of
the app, when its method and path match and no route before it in the app could take the path
(``api.prefix_routing.DirectRoutes``); a domain error it raises is answered by the app's own
handler, as the app would answer it. The FastAPI
route stays in the app (OpenAPI, and every request the direct one declines: a direct handler
returns ``None`` for whatever is not its plain case, such as a body that does not parse, and the
FastAPI route then answers it, with the same error as before).
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, compile_path

from keepstone.api.inputs import PARSED_BODY
from keepstone.services.context import Context

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
# path parameters (as the route's template names them), the body as received
Handler = Callable[[Request, dict[str, str], bytes], Awaitable[Response | None]]


@dataclass(frozen=True)
class DirectRoute:
    method: str
    template: str  # as the app's route declares it: /v2/Jobs/{job_id}
    handler: Handler
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", compile_path(self.template)[0])

    def match(self, path: str) -> dict[str, str] | None:
        found = self.regex.match(path)
        return None if found is None else found.groupdict()


@dataclass(frozen=True)
class Bound:
    """A direct route in an app: the paths of routes before its own that it must leave alone."""

    route: DirectRoute
    before: tuple[re.Pattern[str], ...]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.route.method:
            return None
        params = self.route.match(path)
        if params is None or any(earlier.match(path) for earlier in self.before):
            return None
        return params


def bind(direct: list[DirectRoute], routes: list[BaseRoute]) -> list[Bound]:
    """Each direct route beside the app's routes that come before its own and could match some
    of its paths (a literal where it has a parameter, say): their paths stay theirs. A direct
    route whose template the app does not serve is an error: it would answer for no route.
    Only those routes' patterns are compiled (compiling every route's, a thousand of them over
    the seven versions, was most of a server's first answer)."""
    flat = list(_flatten(routes))
    bound = []
    for route in direct:
        position = next(
            (
                index
                for index, (template, methods) in enumerate(flat)
                if template == route.template and route.method in (methods or ())
            ),
            None,
        )
        if position is None:
            raise ValueError(f"no app route {route.method} {route.template} to answer for")
        before = tuple(
            _pattern(template, methods)
            for template, methods in flat[:position]
            if (methods is None and route.template.startswith(template.rstrip("/") + "/"))
            or (
                methods is not None and _any_of(methods, route.method) and _overlap(template, route)
            )
        )
        bound.append(Bound(route, before))
    return bound


def _flatten(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, set[str] | None]]:
    """(template, methods) of every route in matching order; methods None: a mount, which
    matches whatever lies under it."""
    for route in routes:
        context: Any = getattr(route, "include_context", None)
        if context is not None:
            yield from _flatten(context.included_router.routes, prefix + context.prefix)
        elif isinstance(route, Mount):
            yield prefix + route.path, None
        else:
            yield prefix + getattr(route, "path", ""), set(getattr(route, "methods", None) or ())


def _pattern(template: str, methods: set[str] | None) -> re.Pattern[str]:
    """The paths a route takes: a mount's, all under it; another's, as Starlette compiles it."""
    if methods is None:
        return re.compile(f"^{re.escape(template)}(/.*)?$")
    return compile_path(template)[0]


def _any_of(methods: set[str], method: str) -> bool:
    return not methods or method in methods  # a route without methods takes every method


def _overlap(template: str, route: DirectRoute) -> bool:
    """Whether some path matches both: as many segments, each the same literal or a parameter
    in either."""
    a, b = template.split("/"), route.template.split("/")
    return len(a) == len(b) and all(
        x == y or x.startswith("{") or y.startswith("{") for x, y in zip(a, b, strict=True)
    )


def is_json(request: Request, body: bytes) -> bool:
    """Whether ``body`` is one ``json_body`` may take: sent as ``application/json`` (with or
    without parameters), and not empty."""
    content_type = request.headers.get("content-type", "")
    return bool(body) and content_type.partition(";")[0].strip().lower() == "application/json"


def json_body(request: Request, body: bytes, model: type[M]) -> M | None:
    """``body`` as ``model`` when FastAPI would take it without a word: a JSON content type
    (``is_json``), a body that parses and validates. ``None`` for anything else, which the
    FastAPI route then answers (its errors are the dialect's, and it decides on the rarer
    content types)."""
    if not is_json(request, body):
        return None
    state = request.scope.get("state") or {}
    try:
        # as FastAPI does: the standard library's parse (made by the edge's check already,
        # api.inputs), then validation of the Python value
        value = state[PARSED_BODY] if PARSED_BODY in state else json.loads(body)
        return model.model_validate(value, from_attributes=True)
    except Exception:
        return None


async def read(ctx: Context, work: Callable[[], T]) -> T:
    """A short catalog read from a direct handler: on SQLite (a local file in WAL mode, where a
    reader never waits for a writer) on the event loop, which saves the thread hop that costs
    more than the read; on PostgreSQL (a network round trip) on a worker thread."""
    if ctx.db.dialect == "sqlite":
        return work()
    return await run_in_threadpool(work)


async def write(now: Callable[[], T | None], later: Callable[[], T]) -> T:
    """A short catalog write from a direct handler: ``now`` on the event loop, which makes it
    only when it can begin at once (``Database.write_now``) and answers ``None`` otherwise,
    with nothing written; then ``later``, the same write, on a worker thread (where it may wait
    for the catalog's writer). A thread hop costs more than the write itself. The loop's
    writes go one at a time: while one waits on its thread, the next would find the writer
    busy with it and take a thread too, and under a burst of PUTs every write did (a convoy:
    728 PUTs a second under wrk with every one hopping, 2,225 taking turns)."""
    loop = asyncio.get_running_loop()
    turn = _turns.get(loop)
    if turn is None:
        turn = _turns[loop] = asyncio.Lock()
    async with turn:
        done = now()
        return done if done is not None else await run_in_threadpool(later)


# One turn to write per event loop (tests run several loops, each in a thread of its own).
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)
