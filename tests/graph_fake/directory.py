"""Directory routes: `GET /v1.0/organization`, `GET /v1.0/users` (paged), `GET /v1.0/users/{id}`."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.graph_fake import paging
from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.errors import graph_error
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.query import BadQuery, parse_select, parse_top, project, refuse_options
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
    if "$skiptoken" in params:
        try:
            frozen = paging.unseal(fake_of(request).token_key, params["$skiptoken"])
        except paging.BadSkipToken as exc:
            raise BadQuery("Request_BadRequest", "The $skiptoken is invalid.") from exc
        return int(frozen["offset"]), int(frozen["top"]), frozen["select"]
    select = parse_select(params.get("$select"), USER_PROPERTIES, USER_TYPE)
    return 0, parse_top(params.get("$top"), 100, 999), select


@graph_route(*READ_USERS)
async def list_users(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    try:
        offset, top, select = _users_page_request(request)
    except BadQuery as exc:
        return graph_error(400, exc.code, exc.message, state.clock.now())
    with state.lock:
        users = list(state.tenants[caller.tenant_id].users.values())
    page = [project(u.to_json(), select) for u in users[offset : offset + top]]
    context = "users" if select is None else f"users({','.join(select)})"
    body: dict[str, object] = {"@odata.context": f"{graph_base(request)}/$metadata#{context}"}
    if offset + top < len(users):
        token = paging.seal(state.token_key, {"offset": offset + top, "top": top, "select": select})
        body["@odata.nextLink"] = f"{graph_base(request)}/users?" + urlencode({"$skiptoken": token})
    body["value"] = page
    return JSONResponse(body)


@graph_route(*READ_USERS)
async def get_user(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    key = request.path_params["user"]
    with state.lock:
        users = state.tenants[caller.tenant_id].users.values()
        user = next(
            (u for u in users if key in (u.id,) or key.lower() == u.user_principal_name.lower()),
            None,
        )
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
