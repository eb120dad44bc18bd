"""What every JSON-dialect handler needs: the services context, the caller, links, responses."""

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from keepstone.api.client_address import client_address
from keepstone.api.errors import JSON_MEDIA_TYPE
from keepstone.domain.errors import Unauthenticated
from keepstone.services import access, auth
from keepstone.services.audit import Origin
from keepstone.services.context import Context

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "authorization is required: send 'Authorization: Bearer <access_token>'"
        )
    return token.strip()


async def principal(request: Request) -> auth.Principal:
    """The authenticated caller, authorised for this request's method (reads vs writes). On the
    event loop: a token the catalog vouched for a moment ago costs no thread hop; only a token
    it must read again goes to a worker thread."""
    ctx, token = request.app.state.ctx, bearer_token(request)
    caller = auth.cached_principal(ctx, token)
    if caller is None:
        caller = await run_in_threadpool(auth.authenticate, ctx, token)
    request.state.user_name = caller.user_name  # for the access log
    if caller.scoped:  # no global role: its organization roles decide (and it is audited)
        origin = Origin(client_address(request), "vb365")
        return await run_in_threadpool(
            access.admit, ctx, caller, request.method, route_of(request), request.url.path, origin
        )
    action = auth.Action.READ if request.method in READ_METHODS else auth.Action.WRITE
    auth.authorize(caller, action)
    return caller


def route_of(request: Request) -> str:
    """The template of the route serving the request (``/v8/Organizations/{org_id}``)."""
    route = request.scope.get("route")
    return route.path if isinstance(route, APIRoute) else request.url.path


Ctx = Annotated[Context, Depends(context)]
Caller = Annotated[auth.Principal, Depends(principal)]


def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=JSON_MEDIA_TYPE)
