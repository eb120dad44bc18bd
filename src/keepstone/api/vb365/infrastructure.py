"""Proxies, backup repositories and the encryption keys of encrypted repositories."""

from functools import partial
from typing import Any

from fastapi import Request
from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365 import object_storage as object_storage_api
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import NewProxyBody, ProxyBody, RemoveProxyBody, RepositoryBody
from keepstone.api.vb365.deps import Caller, Ctx, json
from keepstone.api.vb365.pages import Paging, listing
from keepstone.api.vb365.tasks import accepted, wants_async
from keepstone.api.vb365.versions import ApiVersion, Version, VersionedRouter
from keepstone.domain.errors import InvalidInput, NotFound
from keepstone.services import catalog, maintenance, proxies, vault
from keepstone.services.context import Context
from keepstone.services.object_storage import storage_of_repository, storages_by_repository
from keepstone.store.tables import ObjectStorage, Repository

router = VersionedRouter()


def _edited(api: ApiVersion, body: dict[str, Any]) -> Response:
    """An edited proxy or repository: shown up to v5; v6/v7 answer 200 and v8 204, both empty."""
    if api.number <= 5:
        return json(body)
    return plain(204 if api.at_least(8) else 200)


# ---- proxies -----------------------------------------------------------------------------------
# The built-in proxy of each server, and remote proxies (services/proxies.py); what each reports
# of itself (status, version, load) is read from its row.


@router.get("/Proxies")
def list_proxies(
    request: Request, ctx: Ctx, api: Version, paging: Paging, extendedView: bool = True
) -> Response:
    now = ctx.clock.now()
    render = partial(views.proxy, api=api, now=now)
    rows = partial(catalog.list_proxies, ctx)
    return json(listing(request, api, "proxies", rows, render, paging, now))


@router.post("/Proxies")
def add_proxy(body: NewProxyBody, ctx: Ctx, api: Version) -> Response:
    """A remote proxy that ``keepstone proxy --name <hostName>`` then registers as."""
    proxy = proxies.add_proxy(ctx, body.to_spec())
    return json(views.proxy(proxy, api, ctx.clock.now()), api.created)


@router.get("/Proxies/{proxy_id}")
def get_proxy(proxy_id: str, ctx: Ctx, api: Version, extendedView: bool = True) -> Response:
    proxy = catalog.get_proxy(ctx, proxy_id)
    return json(views.proxy(proxy, api, ctx.clock.now()))


@router.put("/Proxies/{proxy_id}", response_class=Response)
def edit_proxy(proxy_id: str, body: ProxyBody, ctx: Ctx, api: Version) -> Response:
    proxy = catalog.edit_proxy(ctx, proxy_id, body.to_edit())
    return _edited(api, views.proxy(proxy, api, ctx.clock.now()))


@router.post("/Proxies/{proxy_id}/Remove", since=6, response_class=Response)
def remove_proxy(
    proxy_id: str, ctx: Ctx, api: Version, body: RemoveProxyBody | None = None
) -> Response:
    """v6/v7 answer 200, v8 204, both empty."""
    proxies.remove_proxy(ctx, proxy_id)
    return plain(204 if api.at_least(8) else 200)


@router.post("/Proxies/{proxy_id}/maintenance/enable", since=8, status_code=204)
def enable_maintenance(proxy_id: str, ctx: Ctx, body: dict[str, Any] | None = None) -> Response:
    """The body (``RESTProxyCredentialsFromClient``: credentials to reach a Windows or Linux
    host) is the vendor's; a Keepstone proxy learns of it at its next claim."""
    proxies.set_maintenance(ctx, proxy_id, True)
    return plain(204)


@router.post("/Proxies/{proxy_id}/maintenance/disable", since=8, status_code=204)
def disable_maintenance(proxy_id: str, ctx: Ctx, body: dict[str, Any] | None = None) -> Response:
    proxies.set_maintenance(ctx, proxy_id, False)
    return plain(204)


# ---- repositories ------------------------------------------------------------------------------


def _repository(
    ctx: Context, row: Repository, api: ApiVersion, storages: dict[str, ObjectStorage] | None = None
) -> dict[str, Any]:
    encrypted = vault.password_of(ctx, row.id) is not None
    storage = storages.get(row.id) if storages is not None else storage_of_repository(ctx, row.id)
    body = views.repository(row, api, encrypted)
    links = body.pop("_links")
    return body | object_storage_api.repository_fields(storage, api, encrypted) | {"_links": links}


@router.get("/BackupRepositories")
def list_repositories(
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    proxyId: str | None = None,
    proxyPoolId: str | None = None,
    longTerm: bool | None = None,
) -> Response:
    def rows() -> list[Repository]:
        if longTerm:  # Keepstone has no long-term (archive) repositories
            return []
        return [
            r
            for r in catalog.list_repositories(ctx)
            if proxyId in (None, r.proxy_id) and proxyPoolId in (None, r.proxy_pool_id)
        ]

    render = partial(_repository, ctx, api=api, storages=storages_by_repository(ctx))
    return json(listing(request, api, "repositories", rows, render, paging, ctx.clock.now()))


@router.get("/BackupRepositories/{repo_id}")
def get_repository(repo_id: str, ctx: Ctx, api: Version) -> Response:
    return json(_repository(ctx, catalog.get_repository(ctx, repo_id), api))


@router.post("/BackupRepositories")
def create_repository(body: RepositoryBody, ctx: Ctx, api: Version) -> Response:
    if body.proxy_pool_id is not None and not api.at_least(8):
        raise InvalidInput("proxy pools exist from v8 on", "proxyPoolId")
    if body.object_storage_encryption_enabled and body.encryption_password is None:
        raise InvalidInput(
            "an encrypted object storage repository needs an encryptionPassword",
            "objectStorageEncryptionEnabled",
        )
    if body.object_storage_id is None and body.object_storage is None:
        row, _ = maintenance.add_repository(ctx, body.to_edit(), body.encryption_password)
    else:
        row = object_storage_api.add_repository(ctx, body)
    return json(_repository(ctx, row, api), api.created)


@router.put("/BackupRepositories/{repo_id}", response_class=Response)
def edit_repository(repo_id: str, body: RepositoryBody, ctx: Ctx, api: Version) -> Response:
    if body.encryption_password is not None:
        raise InvalidInput("a repository's password cannot be changed", "encryptionPassword")
    object_storage_api.refuse_storage_change(ctx, repo_id, body)
    row = catalog.edit_repository(ctx, repo_id, body.to_edit())
    return _edited(api, _repository(ctx, row, api))


@router.delete("/BackupRepositories/{repo_id}", status_code=204)
def delete_repository(repo_id: str, ctx: Ctx) -> Response:
    catalog.delete_repository(ctx, repo_id)
    return plain(204)


@router.post("/BackupRepositories/{repo_id}/verify")
def verify_repository(
    repo_id: str, request: Request, ctx: Ctx, api: Version, caller: Caller
) -> Response:
    """Reads the whole repository back: ``Prefer: respond-async`` makes it a task to poll."""
    catalog.get_repository(ctx, repo_id)

    def work() -> tuple[str, dict[str, Any]]:
        report = verify_report(maintenance.verify(ctx, repo_id))
        return (
            "Repository is intact" if report["ok"] else "Repository is damaged",
            {"result": report},
        )

    if wants_async(request):
        return accepted(ctx, api.link, "VerifyRepository", work, caller)
    return json(work()[1]["result"])


def verify_report(result: maintenance.VerifyResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "checkedBytes": result.checked_bytes,
        "damagedPacks": result.damaged_packs,
        "damagedRestorePoints": result.damaged_restore_points,
        "damagedItems": [
            {"restorePointId": point, "item": key} for point, key in result.damaged_items
        ],
    }


@router.post("/BackupRepositories/{repo_id}/applyRetention")
def apply_retention(repo_id: str, ctx: Ctx) -> Response:
    result = maintenance.apply_retention(ctx, repo_id)
    return json(
        {
            "removedRestorePoints": result.removed_restore_points,
            "removedItems": result.removed_items,
            "freedBytes": result.freed_bytes,
        }
    )


# ---- encryption keys ---------------------------------------------------------------------------


def _encrypted(ctx: Context) -> list[Repository]:
    return [r for r in catalog.list_repositories(ctx) if vault.password_of(ctx, r.id) is not None]


@router.get("/EncryptionKeys", since=6)
def list_encryption_keys(ctx: Ctx, api: Version, description: str | None = None) -> Response:
    keys = [views.encryption_key(r, api) for r in _encrypted(ctx)]
    wanted = (description or "").lower()
    return json([k for k in keys if wanted in k["description"].lower()])


@router.get("/EncryptionKeys/{key_id}", since=6)
def get_encryption_key(key_id: str, ctx: Ctx, api: Version) -> Response:
    for repo in _encrypted(ctx):
        if views.encryption_key_id(repo.id) == key_id:
            return json(views.encryption_key(repo, api))
    raise NotFound(f"encryption key '{key_id}' does not exist")
