"""The bearer check and permission check every Graph route makes before it does anything."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from tests.graph_fake import access_tokens
from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.errors import graph_error
from tests.graph_fake.state import FakeState

GraphHandler = Callable[[Request, Caller], Awaitable[Response]]

# What a 401 from Graph carries besides the body.
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    'authorize", client_id="00000003-0000-0000-c000-000000000000"'
)


def fake_of(request: Request) -> FakeState:
    state: FakeState = request.app.state.fake
    return state


def graph_route(
    *any_of_roles: str,
) -> Callable[[GraphHandler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a handler: 401 without a valid token, 403 unless the token has one of the roles."""

    def wrap(handler: GraphHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            state = fake_of(request)
            try:
                caller = access_tokens.verify(state, request.headers.get("authorization"))
            except access_tokens.TokenRefused as exc:
                return graph_error(
                    401,
                    "InvalidAuthenticationToken",
                    exc.message,
                    state.clock.now(),
                    {"WWW-Authenticate": WWW_AUTHENTICATE},
                )
            if any_of_roles and not caller.roles.intersection(any_of_roles):
                return graph_error(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                    state.clock.now(),
                )
            return await handler(request, caller)

        return endpoint

    return wrap
