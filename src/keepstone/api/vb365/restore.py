"""Restore points and restore sessions: explore, browse, save, put back."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse, Response, StreamingResponse

from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import WireModel, any_case
from keepstone.api.vb365.deps import Ctx, Link, json, principal
from keepstone.api.vb365.tasks import accepted, wants_async
from keepstone.domain.errors import InvalidInput
from keepstone.engine import Item
from keepstone.services import restore_points, restores
from keepstone.services.auth import Principal
from keepstone.services.restores import Collision

router = APIRouter()
Caller = Annotated[Principal, Depends(principal)]
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=10_000)]
KINDS = {"mailboxes": "mail", "onedrives": "file"}

# ---- restore points -----------------------------------------------------------------------------


@router.get("/RestorePoints")
def list_restore_points(
    ctx: Ctx,
    link: Link,
    jobId: str | None = None,
    organizationId: str | None = None,
    repositoryId: str | None = None,
) -> Response:
    points = restore_points.list_points(
        ctx, job_id=jobId, organization_id=organizationId, repository_id=repositoryId
    )
    return json([views.restore_point(p, link) for p in points])


@router.get("/RestorePoints/{point_id}")
def get_restore_point(point_id: str, ctx: Ctx, link: Link) -> Response:
    return json(views.restore_point(restore_points.get_point(ctx, point_id), link))


@router.get("/Jobs/{job_id}/RestorePoints")
def list_job_restore_points(job_id: str, ctx: Ctx, link: Link) -> Response:
    return json(
        [views.restore_point(p, link) for p in restore_points.list_points(ctx, job_id=job_id)]
    )


# ---- explore ------------------------------------------------------------------------------------


class ExploreBody(WireModel):
    date_time: str | None = None
    type: str | None = None
    show_deleted: bool | None = None
    show_all_versions: bool | None = None


def explore_time(text: str | None) -> datetime | None:
    """The vendor accepts ``yyyy-MM-dd HH:mm:ss.SSS``, ``yyyy.MM.dd hh:mm:ss`` and ISO 8601."""
    if text is None or not text.strip():
        return None
    normal = re.sub(r"^(\d{4})\.(\d{2})\.(\d{2})", r"\1-\2-\3", text.strip()).replace("Z", "+00:00")
    try:
        instant = datetime.fromisoformat(normal)
    except ValueError:
        raise InvalidInput(f"'{text}' is not a date and time", "dateTime") from None
    return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)


def explore_kind(text: str | None) -> str:
    kind = (text or "vex").lower()
    if kind not in ("vex", "veod"):
        raise InvalidInput(
            f"type '{text}' cannot be explored; use Vex (mail) or Veod (OneDrive)", "type"
        )
    return "Vex" if kind == "vex" else "Veod"


def start_explore(
    ctx: Any,
    caller: Principal,
    body: ExploreBody,
    link: views.LinkBuilder,
    *,
    job_id: str | None = None,
    organization_id: str | None = None,
) -> Response:
    session = restores.explore_at(
        ctx,
        at=explore_time(body.date_time),
        user_name=caller.user_name,
        job_id=job_id,
        organization_id=organization_id,
        kind=explore_kind(body.type),
    )
    return json(views.restore_session(session, link), 201 if link.root.endswith("/v8") else 200)


@router.post("/Jobs/{job_id}/explore")
def explore_job(job_id: str, body: ExploreBody, ctx: Ctx, link: Link, caller: Caller) -> Response:
    return start_explore(ctx, caller, body, link, job_id=job_id)


@router.post("/Organizations/{org_id}/explore")
def explore_organization(
    org_id: str, body: ExploreBody, ctx: Ctx, link: Link, caller: Caller
) -> Response:
    return start_explore(ctx, caller, body, link, organization_id=org_id)


# ---- sessions -----------------------------------------------------------------------------------


@router.get("/RestoreSessions")
def list_sessions(ctx: Ctx, link: Link) -> Response:
    return json([views.restore_session(s, link) for s in restores.list_sessions(ctx)])


@router.get("/RestoreSessions/{session_id}")
def get_session(session_id: str, ctx: Ctx, link: Link) -> Response:
    return json(views.restore_session(restores.get_session(ctx, session_id), link))


@router.post("/RestoreSessions/{session_id}/stop")
def stop_session(session_id: str, ctx: Ctx, link: Link) -> Response:
    return json(views.restore_session(restores.stop(ctx, session_id), link))


@router.post("/RestoreSessions/{session_id}/Action")
def session_action(session_id: str, body: dict[str, Any], ctx: Ctx, link: Link) -> Response:
    if [k.lower() for k in body] != ["stop"]:
        raise InvalidInput('the body must be {"stop": null}', "action")
    return json(views.restore_session(restores.stop(ctx, session_id), link))


# ---- browse -------------------------------------------------------------------------------------


def _kind(collection: str) -> str:
    kind = KINDS.get(collection.lower())
    if kind is None:
        raise InvalidInput(f"'{collection}' is not Mailboxes or OneDrives", "path")
    return kind


@router.get("/RestoreSessions/{session_id}/Organization/{collection}")
def list_owners(session_id: str, collection: str, ctx: Ctx, link: Link) -> Response:
    kind = _kind(collection)
    owners = restores.browser(ctx, session_id).owners_with(kind)
    return json([views.restore_owner(session_id, collection.lower(), o, link) for o in owners])


@router.get("/RestoreSessions/{session_id}/Organization/{collection}/{owner_id}/Folders")
def list_folders(
    session_id: str,
    collection: str,
    owner_id: str,
    ctx: Ctx,
    link: Link,
    parentId: str | None = None,
) -> Response:
    folders = restores.browser(ctx, session_id).folders(owner_id, _kind(collection))
    if parentId is not None:
        folders = [f for f in folders if f.parent_id == parentId]
    return json([views.restore_folder(f) for f in folders])


def _listing(
    session_id: str,
    collection: str,
    owner_id: str,
    ctx: Any,
    request: Request,
    folder_id: str | None,
    offset: int,
    limit: int,
) -> Response:
    items = restores.browser(ctx, session_id).contents(owner_id, _kind(collection), folder_id)
    page = [views.restore_item(i, restores.item_id(i.key)) for i in items[offset : offset + limit]]
    return json(views.page(page, offset, limit, len(items), str(request.url)))


@router.get("/RestoreSessions/{session_id}/Organization/Mailboxes/{owner_id}/Items")
def list_messages(
    session_id: str,
    owner_id: str,
    ctx: Ctx,
    request: Request,
    folderId: str | None = None,
    offset: Offset = 0,
    limit: Limit = 30,
) -> Response:
    return _listing(session_id, "mailboxes", owner_id, ctx, request, folderId, offset, limit)


@router.get("/RestoreSessions/{session_id}/Organization/OneDrives/{owner_id}/Documents")
def list_documents(
    session_id: str,
    owner_id: str,
    ctx: Ctx,
    request: Request,
    folderId: str | None = None,
    offset: Offset = 0,
    limit: Limit = 30,
) -> Response:
    return _listing(session_id, "onedrives", owner_id, ctx, request, folderId, offset, limit)


# ---- get data out ------------------------------------------------------------------------------


def _download(item: Item, chunks: Iterator[bytes]) -> StreamingResponse:
    media = "message/rfc822" if item.kind == "mail" else "application/octet-stream"
    name = restores.save_name(item)
    return StreamingResponse(
        chunks,
        media_type=media,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quote(name)}",
            "Content-Length": str(item.size),
        },
    )


def _quote(name: str) -> str:
    return quote(name, safe="")


@router.post("/RestoreSessions/{session_id}/Organization/Mailboxes/{owner_id}/Items/{item}/save")
@router.post(
    "/RestoreSessions/{session_id}/Organization/OneDrives/{owner_id}/Documents/{item}/save"
)
def save_one(session_id: str, owner_id: str, item: str, ctx: Ctx) -> Response:
    found, chunks = restores.stream_item(ctx, session_id, owner_id, item)
    return _download(found, chunks)


class ItemsBody(WireModel):
    ids: list[str] | None = None
    user_name: str | None = None
    folder: str | None = None
    collision_policy: Annotated[Collision, any_case(Collision)] | None = None


@router.post("/RestoreSessions/{session_id}/Organization/Mailboxes/{owner_id}/Items/save")
@router.post("/RestoreSessions/{session_id}/Organization/OneDrives/{owner_id}/Documents/save")
def save_many(session_id: str, owner_id: str, body: ItemsBody, ctx: Ctx) -> Response:
    target = Path(tempfile.mkstemp(suffix=".zip")[1])
    try:
        restores.write_zip(ctx, session_id, owner_id, body.ids or [], target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return FileResponse(
        target,
        media_type="application/zip",
        filename="restore.zip",
        background=BackgroundTask(target.unlink, missing_ok=True),
    )


# ---- put back ----------------------------------------------------------------------------------


def _put_back(
    request: Request,
    link: views.LinkBuilder,
    session_id: str,
    kind: str,
    owner_id: str,
    ids: list[str] | None,
    ctx: Any,
    body: ItemsBody | None,
    elsewhere: bool,
) -> Response:
    """Put items back; ``Prefer: respond-async`` makes it a task to poll (counts in its result)."""
    options = body or ItemsBody()
    if elsewhere and not options.user_name and not options.folder:
        raise InvalidInput("restoreTo needs userName and/or folder", "userName")
    restores.browser(ctx, session_id).user(owner_id)  # a wrong session or owner is a 4xx now

    def work() -> tuple[str, dict[str, Any]]:
        counts = restores.restore(
            ctx,
            session_id,
            owner_id,
            ids,
            kind=kind,
            to_user=options.user_name,
            to_folder=options.folder,
            collision=options.collision_policy or Collision.KEEP_BOTH,
        )
        return f"Restored {counts.restored} items", {"result": views.restore_counts(counts)}

    if wants_async(request):
        return accepted(ctx, link, "Restore", work)
    return json(work()[1]["result"])


ACTIONS = {"restore": False, "restoreTo": True, "copyTo": True}


def _handlers(kind: str, elsewhere: bool) -> tuple[Any, Any]:
    """The put-back handlers of one action: for listed (or all) items, and for one item."""

    def listed(
        session_id: str,
        owner_id: str,
        request: Request,
        ctx: Ctx,
        link: Link,
        body: ItemsBody | None = None,
    ) -> Response:
        ids = body.ids if body else None
        return _put_back(request, link, session_id, kind, owner_id, ids, ctx, body, elsewhere)

    def one(
        session_id: str,
        owner_id: str,
        item: str,
        request: Request,
        ctx: Ctx,
        link: Link,
        body: ItemsBody | None = None,
    ) -> Response:
        return _put_back(request, link, session_id, kind, owner_id, [item], ctx, body, elsewhere)

    return listed, one


def _owner_routes(collection: str, items: str) -> None:
    base = f"/RestoreSessions/{{session_id}}/Organization/{collection}/{{owner_id}}"
    for action, elsewhere in ACTIONS.items():
        all_items, one_item = _handlers(_kind(collection), elsewhere)
        router.add_api_route(
            f"{base}/{action}", all_items, methods=["POST"], name=f"{collection}-{action}"
        )
        router.add_api_route(
            f"{base}/{items}/{action}",
            all_items,
            methods=["POST"],
            name=f"{collection}-{items}-{action}",
        )
        router.add_api_route(
            f"{base}/{items}/{{item}}/{action}",
            one_item,
            methods=["POST"],
            name=f"{collection}-{items}-one-{action}",
        )


_owner_routes("Mailboxes", "Items")
_owner_routes("OneDrives", "Documents")
