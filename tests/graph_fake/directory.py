"""Directory routes: `GET /v1.0/organization`, `GET /v1.0/users` (paged), `GET /v1.0/users/{id}`,
`GET /v1.0/groups` (the Teams `$filter`, `$count`), `GET /v1.0/groups/{id}/members`,
`GET /v1.0/sites/getAllSites`."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSON
from starlette.responses import Response

from tests.graph_fake import paging
from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.errors import graph_error
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.groups import GROUP_PROPERTIES, MEMBER_PROPERTIES
from tests.graph_fake.query import BadQuery, parse_select, project, refuse_options
from tests.graph_fake.sites import SITE_PROPERTIES
from tests.graph_fake.state import USER_PROPERTIES, FakeState

USER_TYPE = "Microsoft.DirectoryServices.User"
READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All")


class JSONResponse(StarletteJSON):
    """JSON with every character past ASCII escaped (``\\u00e9``), which is as valid as UTF-8
    text and is how a directory's lone surrogate (a broken name, "\\ud800") crosses JSON at
    all: what a client must read either way."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


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


# ---- groups, members, sites (the organization cache's sources) ------------------------------

GROUP_TYPE = "microsoft.graph.group"
READ_GROUPS = ("Group.Read.All", "Group.ReadWrite.All", "Directory.Read.All")
READ_MEMBERS = ("GroupMember.Read.All", *READ_GROUPS)
READ_SITES = ("Sites.Read.All", "Sites.ReadWrite.All", "Sites.FullControl.All")
# The one `$filter` the fake knows on groups: Microsoft's documented way to list Teams.
TEAMS_FILTER = "resourceProvisioningOptions/Any(x:x eq 'Team')"


def _page_request(
    request: Request, allowed: frozenset[str], type_name: str, extra: set[str]
) -> tuple[int, int, list[str] | None]:
    params = request.query_params
    refuse_options(params.keys(), {"$select", "$top", "$skiptoken", *extra})
    try:
        offset, top, frozen, raw = paging.page_of(fake_of(request).token_key, params, 100, 999)
    except paging.BadSkipToken as exc:
        raise BadQuery("Request_BadRequest", "The $skiptoken is invalid.") from exc
    if "$skiptoken" in params:
        return offset, top, frozen
    return offset, top, parse_select(raw, allowed, type_name)


def _count(request: Request, total: int) -> dict[str, int]:
    """`$count=true` needs `ConsistencyLevel: eventual` (an advanced query), as in Graph."""
    raw = request.query_params.get("$count")
    if raw is None:
        return {}
    if raw.lower() not in ("true", "false"):
        raise BadQuery("Request_BadRequest", f"Invalid $count value '{raw}'.")
    if request.headers.get("consistencylevel", "").lower() != "eventual":
        raise BadQuery(
            "Request_BadRequest",
            "$count is not currently supported without the ConsistencyLevel header set to "
            "'eventual'.",
        )
    return {"@odata.count": total} if raw.lower() == "true" else {}


def _groups_filter(request: Request) -> tuple[str, bool]:
    """(the link's query to keep, whether only Teams are listed)."""
    raw = request.query_params.get("$filter")
    if raw is None:
        return "", False
    if raw.replace(" ", "").lower() != TEAMS_FILTER.replace(" ", "").lower():
        raise BadQuery(
            "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause: {raw}"
        )
    return "?" + urlencode({"$filter": raw}), True


@graph_route(*READ_GROUPS)
async def list_groups(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    try:
        offset, top, select = _page_request(
            request, GROUP_PROPERTIES, GROUP_TYPE, {"$filter", "$count"}
        )
        kept, teams_only = _groups_filter(request)
        with state.lock:
            groups = [g.to_json() for g in state.tenants[caller.tenant_id].groups.values()]
        if teams_only:
            groups = [g for g in groups if "Team" in g["resourceProvisioningOptions"]]
        counted = _count(request, len(groups))
    except BadQuery as exc:
        return graph_error(400, exc.code, exc.message, state.clock.now())
    base = graph_base(request)
    context = "groups" if select is None else f"groups({','.join(select)})"
    body = paging.list_body(
        state.token_key,
        groups,
        offset,
        top,
        select,
        f"{base}/$metadata#{context}",
        f"{base}/groups{kept}",
    )
    return JSONResponse(counted | body)


def _member_json(state: FakeState, tenant_id: str, member_id: str) -> dict[str, Any] | None:
    tenant = state.tenants[tenant_id]
    user = tenant.users.get(member_id)
    if user is not None:
        return {"@odata.type": "#microsoft.graph.user"} | user.to_json()
    group = tenant.groups.get(member_id)
    if group is not None:
        return {"@odata.type": "#microsoft.graph.group"} | group.to_json()
    return None  # removed from the directory since: Graph no longer lists it


@graph_route(*READ_MEMBERS)
async def group_members(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    key = request.path_params["group"]
    with state.lock:
        group = state.tenants[caller.tenant_id].groups.get(key)
        found = [_member_json(state, caller.tenant_id, m) for m in group.members] if group else []
    if group is None:
        return graph_error(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or one of its queried reference-property objects "
            "are not present.",
            state.clock.now(),
        )
    try:
        offset, top, select = _page_request(request, MEMBER_PROPERTIES, "directoryObject", set())
    except BadQuery as exc:
        return graph_error(400, exc.code, exc.message, state.clock.now())
    members = [m for m in found if m is not None]
    base = graph_base(request)
    body = paging.list_body(
        state.token_key,
        members,
        offset,
        top,
        None,
        f"{base}/$metadata#directoryObjects",
        f"{base}/groups/{key}/members",
    )
    if select is not None:  # @odata.type stays: a client tells users from groups by it
        body["value"] = [
            {"@odata.type": m["@odata.type"]} | {n: m.get(n) for n in select} for m in body["value"]
        ]
        if "@odata.nextLink" in body:
            token = paging.seal(
                state.token_key, {"offset": offset + top, "top": top, "select": select}
            )
            body["@odata.nextLink"] = f"{base}/groups/{key}/members?" + urlencode(
                {"$skiptoken": token}
            )
    return JSONResponse(body)


@graph_route(*READ_SITES)
async def all_sites(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    try:
        offset, top, select = _page_request(request, SITE_PROPERTIES, "microsoft.graph.site", set())
    except BadQuery as exc:
        return graph_error(400, exc.code, exc.message, state.clock.now())
    with state.lock:
        sites = [s.to_json() for s in state.tenants[caller.tenant_id].sites]
    base = graph_base(request)
    return JSONResponse(
        paging.list_body(
            state.token_key,
            sites,
            offset,
            top,
            select,
            f"{base}/$metadata#sites",
            f"{base}/sites/getAllSites",
        )
    )
