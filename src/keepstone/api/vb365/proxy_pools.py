"""v8 ``/ProxyPools``: pools of proxies that own repositories and balance their jobs by load
(``services/proxies.py``). Shapes: ``RESTProxyPool``, ``RESTProxyPoolFromClient``,
``RESTProxyIdFromClient``."""

from functools import partial

from fastapi import Request
from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import ProxyIdBody, ProxyPoolBody
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.pages import Paging, listing
from keepstone.api.vb365.versions import Version, VersionedRouter
from keepstone.services import proxies

router = VersionedRouter()
SINCE = 8


@router.get("/ProxyPools", since=SINCE)
def list_pools(request: Request, ctx: Ctx, api: Version, paging: Paging) -> Response:
    render = partial(views.proxy_pool, api=api)
    rows = partial(proxies.list_pools, ctx)
    return json(listing(request, api, "proxyPools", rows, render, paging, ctx.clock.now()))


@router.post("/ProxyPools", since=SINCE)
def create_pool(body: ProxyPoolBody, ctx: Ctx, api: Version) -> Response:
    return json(views.proxy_pool(proxies.create_pool(ctx, body.to_edit()), api), api.created)


@router.get("/ProxyPools/{pool_id}", since=SINCE)
def get_pool(pool_id: str, ctx: Ctx, api: Version) -> Response:
    return json(views.proxy_pool(proxies.get_pool(ctx, pool_id), api))


@router.put("/ProxyPools/{pool_id}", since=SINCE, status_code=204)
def edit_pool(pool_id: str, body: ProxyPoolBody, ctx: Ctx) -> Response:
    proxies.edit_pool(ctx, pool_id, body.to_edit())
    return plain(204)


@router.delete("/ProxyPools/{pool_id}", since=SINCE, status_code=204)
def delete_pool(pool_id: str, ctx: Ctx) -> Response:
    proxies.delete_pool(ctx, pool_id)
    return plain(204)


@router.get("/ProxyPools/{pool_id}/proxies", since=SINCE)
def list_members(
    pool_id: str, request: Request, ctx: Ctx, api: Version, paging: Paging
) -> Response:
    now = ctx.clock.now()
    render = partial(views.proxy, api=api, now=now)
    rows = partial(proxies.pool_proxies, ctx, pool_id)
    return json(listing(request, api, "proxies", rows, render, paging, now))


@router.post("/ProxyPools/{pool_id}/proxies", since=SINCE, status_code=204)
def add_members(pool_id: str, body: list[ProxyIdBody], ctx: Ctx) -> Response:
    proxies.add_to_pool(ctx, pool_id, [p.proxy_id for p in body])
    return plain(204)


@router.delete("/ProxyPools/{pool_id}/proxies", since=SINCE, status_code=204)
def remove_members(pool_id: str, body: list[ProxyIdBody], ctx: Ctx) -> Response:
    proxies.remove_from_pool(ctx, pool_id, [p.proxy_id for p in body])
    return plain(204)
