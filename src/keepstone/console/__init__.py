"""The web console: server-rendered pages at ``/`` over the same services as both API dialects
(docs/console.md; the choice of technology in docs/architecture.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import URLPath
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from keepstone.api.errors import status_of
from keepstone.console.render import HERE, STATIC_PATH, page
from keepstone.console.web_session import LoginRequired
from keepstone.domain.errors import KeepstoneError

# First path segments that are the console's (every other one is an API's or Swagger's).
SEGMENTS = frozenset(
    {"", "login", "logout", "fragments", "jobs", "sessions", "organizations", "console"}
    | {"repositories", "audit", "restore"}
    | {"users", "roles"}
)


def owns(path: str) -> bool:
    return path.split("/", 2)[1] in SEGMENTS if path.startswith("/") else False


def install(app: FastAPI) -> None:
    """The console's pages (imported at the first request for one: ``Pages``), its static
    files, and its answer to a page asked for without a web session."""
    app.router.routes.append(Pages(app))
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, error: LoginRequired) -> Response:
        query = {"next": request.url.path} if request.method == "GET" else {}
        if error.why:
            query["why"] = error.why
        target = "/login" + (f"?{urlencode(query)}" if query else "")
        if request.headers.get("hx-request"):  # a polled fragment: htmx moves the whole page
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)


def error_page(request: Request, error: KeepstoneError) -> Response:
    """A service's refusal on a console page, as a page (the API answers it in its dialect)."""
    status = status_of(error)
    return page(request, "error.html", None, status, title="Not done", message=error.message)


class Pages(BaseRoute):
    """Where the console's routes go in the app, until the first request for a console path.

    Importing the pages and analysing their 47 routes was about a tenth of a server's start
    (docs/benchmarks.md), for a part of the app that a server driven by scripts may never be
    asked for. This route takes every path of the console's first segments (``SEGMENTS``, which
    no other route of the app uses) and, the first time, puts the console's routers in its own
    place in the app and sends the request through the app's routing again, which then finds
    the page (or answers 404 or 405, or redirects a trailing slash, as it always did). The
    prefix routing and the credential gate read ``segments`` (they index routes by first
    segment, and would otherwise take this route for one that may match any path)."""

    segments = SEGMENTS

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and owns(scope["path"]):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._install()
        await self._app.router(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """A console route's path by name: the pages are put in first (a name of another
        route's: that route answers, after this one, as the router goes on)."""
        self._install()
        return self._app.router.url_path_for(name, **path_params)

    def _install(self) -> None:
        routes = self._app.router.routes
        if self in routes:  # else a request that came before has put the pages in
            at, count = routes.index(self), len(routes)
            for router in _routers():
                self._app.include_router(router)
            added = routes[count:]
            del routes[count:]
            routes[at : at + 1] = added


def _routers() -> list[APIRouter]:
    from keepstone.console import (  # here: see Pages
        admin_pages,
        job_pages,
        org_pages,
        pages,
        restore_pages,
        role_pages,
        user_pages,
    )

    return [
        pages.router,
        job_pages.router,
        org_pages.router,
        admin_pages.router,
        restore_pages.router,
        user_pages.router,
        role_pages.router,
    ]
