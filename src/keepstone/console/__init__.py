"""The web console: server-rendered pages at ``/`` over the same services as both API dialects
(docs/console.md; the choice of technology in docs/architecture.md)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from keepstone.api.deferred import DeferredRoutes
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


class Pages(DeferredRoutes):
    """Where the console's routes go in the app, until the first request for a console path
    (``api.deferred``): importing the pages and analysing their 47 routes was about a tenth of
    a server's start (docs/benchmarks.md), for a part of the app that a server driven by
    scripts may never be asked for."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app, SEGMENTS, _routers)


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
