"""Pages of the console: the Jinja2 environment, the page policy, forms, paging.

Templates autoescape everything; a page runs only the console's own script files (no inline
script, no inline style, no eval), which the Content-Security-Policy below enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from keepstone.api.inputs import fields
from keepstone.console.web_session import WebSession
from keepstone.services.context import Context

if TYPE_CHECKING:
    import jinja2

HERE = Path(__file__).parent
STATIC_PATH = "/console/static"
PAGE_SIZE = 25
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@cache
def _environment() -> jinja2.Environment:
    """Made at the first page: the API's start does not import Jinja2 (tests/test_imports.py)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _when(instant: datetime | None, ctx: Context) -> str:
    """An instant on the server's clock, to the minute (the zone is named in the page footer)."""
    if instant is None:
        return "—"
    return instant.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M")


def _size(count: int | None) -> str:
    if count is None:
        return "—"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover (the loop returns at TiB)


def utc_offset(ctx: Context, now: datetime) -> int:
    """The server zone's offset from UTC now, in minutes (a backup window's ``minuteOffset``)."""
    offset = now.astimezone(ctx.tz).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


def page(
    request: Request,
    template: str,
    session: WebSession | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    ctx: Context = request.app.state.ctx
    now = ctx.clock.now()
    text = (
        _environment()
        .get_template(template)
        .render(
            request=request,
            session=session,
            csrf=session.csrf if session else "",
            static=STATIC_PATH,
            when=lambda instant: _when(instant, ctx),
            size=_size,
            zone=str(ctx.tz),
            offset=utc_offset(ctx, now),
            now=now,
            **values,
        )
    )
    return HTMLResponse(text, status_code=status, headers={"Content-Security-Policy": POLICY})


def see_other(location: str) -> RedirectResponse:
    """After a POST: the browser GETs the page showing the effect (no resubmission on reload)."""
    return RedirectResponse(location, status_code=303)


async def form_of(request: Request) -> list[tuple[str, str]]:
    """The fields of a urlencoded form body (already checked as UTF-8 by the edge)."""
    return fields(await request.body(), "form field")


@dataclass(frozen=True, slots=True)
class Window:
    """One page of a listing: ``offset`` and ``limit`` for the service; one row more than the page
    is read to know whether a next page exists, so no listing counts its whole set."""

    number: int
    size: int = PAGE_SIZE
    param: str = "page"  # the query parameter naming the page (a page with two listings: two)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def limit(self) -> int:
        return self.size + 1

    def links(self, request: Request, rows: list[Any]) -> dict[str, str | None]:
        """The rows to show are ``rows[: self.size]``; previous/next page URLs (None: none)."""
        query = dict(request.query_params)

        def at(number: int) -> str:
            return f"{request.url.path}?{urlencode(query | {self.param: str(number)})}"

        return {
            "previous": at(self.number - 1) if self.number > 1 else None,
            "next": at(self.number + 1) if len(rows) > self.size else None,
        }


def window_of(request: Request, param: str = "page") -> Window:
    raw = request.query_params.get(param, "1")
    number = int(raw) if raw.isdigit() and 0 < int(raw) < 10**9 else 1
    return Window(number, param=param)
