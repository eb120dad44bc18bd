"""Directory routes: `GET /v1.0/organization`, `GET /v1.0/users` (paged), `GET /v1.0/users/{id}`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.graph_fake import paging
from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.errors import graph_error
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.query import BadQuery, parse_select, project, refuse_options
from tests.graph_fake.state import USER_PROPERTIES

USER_TYPE = "Microsoft.DirectoryServices.User"
READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All")


def graph_base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/v1.0"


@graph_route("Organization.Read.All", "Directory.Read.All")
async def organization(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    with state.lock:
        org = state.tenants[caller.tenant_id].to_organization()
    return JSONResponse(
        {"@odata.context": f"{graph_base(request)}/$metadata#organization", "value": [org]}
    )


def _users_page_request(request: Request) -> tuple[int, int, list[str] | None]:
    """(offset, page size, select) from a first request or from a `$skiptoken` link."""
    params = request.query_params
    refuse_options(params.keys(), {"$select", "$top", "$skiptoken"})
    try:
        offset, top, frozen, raw = paging.page_of(fake_of(request).token_key, params, 100, 999)
    except paging.BadSkipToken as exc:
        raise BadQuery("Request_BadRequest", "The $skiptoken is invalid.") from exc
    if "$skiptoken" in params:
        return offset, top, frozen
    return offset, top, parse_select(raw, USER_PROPERTIES, USER_TYPE)


@graph_route(*READ_USERS)
async def list_users(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    try:
        offset, top, select = _users_page_request(request)
    except BadQuery as exc:
        return graph_error(400, exc.code, exc.message, state.clock.now())
    with state.lock:
        users = [u.to_json() for u in state.tenants[caller.tenant_id].users.values()]
    context = "users" if select is None else f"users({','.join(select)})"
    base = graph_base(request)
    return JSONResponse(
        paging.list_body(
            state.token_key,
            users,
            offset,
            top,
            select,
            f"{base}/$metadata#{context}",
            f"{base}/users",
        )
    )


@graph_route(*READ_USERS)
async def get_user(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    key = request.path_params["user"]
    with state.lock:
        user = state.tenants[caller.tenant_id].find_user(key)
    if user is None:
        return graph_error(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or one of its queried reference-property objects "
            "are not present.",
            state.clock.now(),
        )
    try:
        refuse_options(request.query_params.keys(), {"$select"})
        select = parse_select(request.query_params.get("$select"), USER_PROPERTIES, USER_TYPE)
    except BadQuery as exc:
        return graph_error(400, exc.code, exc.message, state.clock.now())
    return JSONResponse(
        {"@odata.context": f"{graph_base(request)}/$metadata#users/$entity"}
        | project(user.to_json(), select)
    )
