"""What every Enterprise Manager handler needs: the logged-on caller, its links, the answer.

Each resource module of the dialect has its own router (see ``resources``); they share these.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from keepstone.api import public_url
from keepstone.api.client_address import client_address
from keepstone.api.errors import JSON_MEDIA_TYPE
from keepstone.api.plumbing import loggable_path
from keepstone.api.vb365.deps import route_of
from keepstone.domain.errors import Unauthenticated
from keepstone.services import access, auth
from keepstone.services.audit import Origin
from keepstone.services.context import Context

if TYPE_CHECKING:
    from lxml import etree

SESSION_HEADER = "X-RestSvcSessionId"


@dataclass(frozen=True, slots=True)
class Caller:
    principal: auth.Principal
    logon_session_id: str
    base: str  # https://host:port/api

    def href(self, *parts: str) -> str:
        return "/".join((self.base, *parts))


def ctx_of(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def base_of(request: Request) -> str:
    return f"{public_url.base_url(request)}/api"


def presented_token(request: Request) -> str | None:
    """The logon session's token a request carries: its cookie's, which wins as in EM, or its
    header's."""
    return request.cookies.get(SESSION_HEADER) or request.headers.get(SESSION_HEADER)


async def logged_on(request: Request) -> Caller:
    """The logon session's user: the token from the cookie (which wins, as in EM) or header. No
    role check: logging off changes only one's own session, so ReadOnly users may do it too.
    A session the catalog vouched for a moment ago costs no thread hop (``auth.cached_logon``)."""
    token = presented_token(request)
    if not token:
        raise Unauthenticated(f"log on first (POST /api/sessionMngr/) and send {SESSION_HEADER}")
    ctx = ctx_of(request)
    resumed = auth.cached_logon(ctx, token)
    if resumed is None:
        resumed = await run_in_threadpool(auth.resume_logon, ctx, token)
    principal, session_id = resumed
    request.state.user_name = principal.user_name
    return Caller(principal, session_id, base_of(request))


async def caller(request: Request) -> Caller:
    """The logged-on user, authorised for this request's method (reads vs writes)."""
    who = await logged_on(request)
    if who.principal.scoped:  # no global role: its organization roles decide (and it is audited)
        admitted = await run_in_threadpool(
            access.admit,
            ctx_of(request),
            who.principal,
            request.method,
            route_of(request),
            loggable_path(request.url.path),
            origin_of(request),
        )
        return Caller(admitted, who.logon_session_id, who.base)
    action = auth.Action.READ if request.method in ("GET", "HEAD") else auth.Action.WRITE
    auth.authorize(who.principal, action)
    return who


Who = Annotated[Caller, Depends(caller)]
LoggedOn = Annotated[Caller, Depends(logged_on)]


def origin_of(request: Request) -> Origin:
    return Origin(client_address(request), "em")


def answer(
    request: Request,
    document: "etree._Element",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """XML, or JSON when the client asks for it."""
    # here: the credential gate needs this module at the start, lxml only the first EM answer
    from keepstone.api.em.xml import render, to_json

    if "json" in request.headers.get("accept", "").lower():
        return JSONResponse(to_json(document), status, headers, media_type=JSON_MEDIA_TYPE)
    return Response(render(document), status, headers, media_type="application/xml; charset=utf-8")


def boolean(value: bool) -> str:
    """An ``xsd:boolean`` as EM writes it."""
    return "true" if value else "false"
