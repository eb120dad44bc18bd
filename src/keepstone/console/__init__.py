"""The web console: server-rendered pages at ``/`` over the same services as both API dialects
(docs/console.md; the choice of technology in docs/architecture.md)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from keepstone.api.errors import status_of
from keepstone.console import (
    admin_pages,
    job_pages,
    org_pages,
    pages,
    restore_pages,
    role_pages,
    user_pages,
)
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
    app.include_router(pages.router)
    app.include_router(job_pages.router)
    app.include_router(org_pages.router)
    app.include_router(admin_pages.router)
    app.include_router(restore_pages.router)
    app.include_router(user_pages.router)
    app.include_router(role_pages.router)
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
