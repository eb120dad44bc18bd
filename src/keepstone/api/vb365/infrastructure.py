"""Proxies and backup repositories."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import ProxyBody, RepositoryBody
from keepstone.api.vb365.deps import Ctx, Link, json
from keepstone.api.vb365.tasks import accepted, wants_async
from keepstone.domain.errors import InvalidInput
from keepstone.services import catalog, maintenance, vault

router = APIRouter()


@router.get("/Proxies")
def list_proxies(ctx: Ctx, link: Link) -> Response:
    now = ctx.clock.now()
    return json([views.proxy(p, link, now) for p in catalog.list_proxies(ctx)])


@router.get("/Proxies/{proxy_id}")
def get_proxy(proxy_id: str, ctx: Ctx, link: Link) -> Response:
    return json(views.proxy(catalog.get_proxy(ctx, proxy_id), link, ctx.clock.now()))


@router.put("/Proxies/{proxy_id}")
def edit_proxy(proxy_id: str, body: ProxyBody, ctx: Ctx, link: Link) -> Response:
    return json(
        views.proxy(catalog.edit_proxy(ctx, proxy_id, body.to_edit()), link, ctx.clock.now())
    )


@router.get("/BackupRepositories")
def list_repositories(ctx: Ctx, link: Link, proxyId: str | None = None) -> Response:
    repos = catalog.list_repositories(ctx)
    return json(
        [
            views.repository(r, link, vault.password_of(ctx, r.id) is not None)
            for r in repos
            if proxyId in (None, r.proxy_id)
        ]
    )


@router.get("/BackupRepositories/{repo_id}")
def get_repository(repo_id: str, ctx: Ctx, link: Link) -> Response:
    return json(
        views.repository(
            catalog.get_repository(ctx, repo_id), link, vault.password_of(ctx, repo_id) is not None
        )
    )


@router.post("/BackupRepositories")
def create_repository(body: RepositoryBody, ctx: Ctx, link: Link) -> Response:
    row, _ = maintenance.add_repository(ctx, body.to_edit(), body.encryption_password)
    return json(views.repository(row, link, encrypted=body.encryption_password is not None))


@router.post("/BackupRepositories/{repo_id}/verify")
def verify_repository(repo_id: str, request: Request, ctx: Ctx, link: Link) -> Response:
    """Reads the whole repository back: ``Prefer: respond-async`` makes it a task to poll."""
    catalog.get_repository(ctx, repo_id)

    def work() -> tuple[str, dict[str, Any]]:
        report = verify_report(maintenance.verify(ctx, repo_id))
        return (
            "Repository is intact" if report["ok"] else "Repository is damaged",
            {"result": report},
        )

    if wants_async(request):
        return accepted(ctx, link, "VerifyRepository", work)
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


@router.put("/BackupRepositories/{repo_id}")
def edit_repository(repo_id: str, body: RepositoryBody, ctx: Ctx, link: Link) -> Response:
    if body.encryption_password is not None:
        raise InvalidInput("a repository's password cannot be changed", "encryptionPassword")
    return json(
        views.repository(
            catalog.edit_repository(ctx, repo_id, body.to_edit()),
            link,
            vault.password_of(ctx, repo_id) is not None,
        )
    )


@router.delete("/BackupRepositories/{repo_id}", status_code=204)
def delete_repository(repo_id: str, ctx: Ctx) -> Response:
    catalog.delete_repository(ctx, repo_id)
    return plain(204)
