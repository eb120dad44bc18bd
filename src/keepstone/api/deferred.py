"""Routers imported and put in the app at the first request for one of their paths.

Importing a part of the app and analysing its routes is CPU that every start spends before its
first answer, for parts a given server may never be asked for (the console's pages by a server
driven by scripts; the Enterprise Manager dialect by a client of the JSON one). A
``DeferredRoutes`` stands where those routers go in the app's routes. It takes every path of its
first segments (which no other route of the app uses) and, the first time, puts its routers in
its own place and sends the request through the app's routing again, which then finds the route
(or answers 404 or 405, or redirects a trailing slash, as it always did). The prefix routing and
the credential gate read ``segments`` (they index routes by first segment, and would otherwise
take this route for one that may match any path).
"""

import threading
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

_installs = 0  # of every DeferredRoutes, so far
# One install at a time: a request installs on the event loop, but ``url_path_for`` may be
# called from a worker thread, and two installs would splice the same routes in twice.
_installing = threading.Lock()


def routes_state(routes: list[BaseRoute]) -> tuple[int, int]:
    """What an index of an app's routes (the prefix routing, the direct routes, the credential
    gate) is built for, rebuilt when it changes: the number of routes, which routes added after
    the first request change, and the deferred routes put in, which may not (one router in the
    place of its ``DeferredRoutes``)."""
    return len(routes), _installs


class DeferredRoutes(BaseRoute):
    """``load`` imports and answers the routers, in the order the app includes them, each with
    ``tags``; ``templates`` are then their routes' path templates."""

    def __init__(
        self,
        app: FastAPI,
        segments: frozenset[str],
        load: Callable[[], Sequence[APIRouter]],
        *,
        tags: list[str | Enum] | None = None,
    ) -> None:
        self._app = app
        self.segments = segments
        self._load = load
        self._tags = tags
        self.templates: list[str] = []

    def owns(self, path: str) -> bool:
        return path.split("/", 2)[1] in self.segments if path.startswith("/") else False

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and self.owns(scope["path"]):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.install()
        await self._app.router(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """A deferred route's path by name: the routers are put in first (a name of another
        route's: that route answers, after this one, as the router goes on)."""
        self.install()
        return self._app.router.url_path_for(name, **path_params)

    def install(self) -> None:
        """The routers in this route's place (nothing when a request before has put them in)."""
        with _installing:
            self._install()

    def _install(self) -> None:
        global _installs
        routes = self._app.router.routes
        if self not in routes:
            return
        at, count = routes.index(self), len(routes)
        routers = self._load()
        for router in routers:
            self._app.include_router(router, tags=self._tags)
        added = routes[count:]
        del routes[count:]
        routes[at : at + 1] = added
        _installs += 1
        self.templates = [
            route.path
            for router in routers
            for route in router.routes
            if isinstance(route, APIRoute)
        ]
        strays = [path for path in self.templates if not self.owns(path)]
        if strays:  # a path this route did not take would have had no route until now
            raise ValueError(f"deferred routes outside {sorted(self.segments)}: {strays}")


def install_all(app: FastAPI) -> None:
    """Every deferred part of ``app`` put in (its OpenAPI document, or a walk of every route)."""
    for route in list(app.router.routes):
        if isinstance(route, DeferredRoutes):
            route.install()
