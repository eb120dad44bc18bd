"""The console's Restore pages: restore points by time, opening a restore session on one (the
API's explore), and browsing it: mailboxes or drives, their folders and items, every list one
page at a time. The caller's principal goes to the services, as the JSON routers pass it, so a
scoped operator's reach applies."""

from __future__ import annotations

from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.console.pages import Changer, Viewer, context
from keepstone.console.render import page, see_other, window_of
from keepstone.domain.errors import InvalidInput
from keepstone.engine.model import Item, folder_of
from keepstone.services import access, restore_points, restores

router = APIRouter(include_in_schema=False)
# What a console user browses: the session's type and the item kind of its owners.
KINDS = {"mail": ("Vex", "Mailboxes"), "file": ("Veod", "Drives")}


def _kind(text: str) -> str:
    if text not in KINDS:
        raise InvalidInput(f"'{text}' is not mail or file", "kind")
    return text


@router.get("/restore")
def points_page(
    request: Request, session: Viewer, organization: str = "", job: str = ""
) -> Response:
    """Restore points, newest first, of the organization or job chosen (of all by default)."""
    window = window_of(request)
    where = restore_points.PointFilter(
        job_id=job or None,
        organization_id=organization or None,
        organizations=access.organizations_of(session.principal),
    )
    rows = restore_points.page_points(context(request), where, window.offset, window.limit)
    return page(
        request,
        "restore_points.html",
        session,
        title="Restore",
        rows=rows[: window.size],
        links=window.links(request, rows),
        kinds=KINDS,
    )


@router.post("/restore/explore")
def explore(request: Request, change: Changer) -> Response:
    """Open a restore session on the chosen point, as the API's explore does."""
    ctx, caller = context(request), change.session.principal
    kind = _kind(change.form.get("kind", "mail"))
    point = restore_points.get_point(ctx, change.form.get("point", ""), caller)
    opened = restores.explore_at(
        ctx,
        at=point.backup_time,
        user_name=caller.user_name,
        job_id=point.job_id,
        kind=KINDS[kind][0],
        caller=caller,
    )
    return see_other(f"/restore/sessions/{opened.id}?kind={kind}")


@router.get("/restore/sessions/{session_id}")
def owners_page(request: Request, session_id: str, session: Viewer, kind: str = "mail") -> Response:
    """The session's mailboxes (or drives), one page of them."""
    window = window_of(request)
    owners = restores.browser(context(request), session_id, session.principal).owners_with(
        _kind(kind)
    )
    rows = owners[window.offset : window.offset + window.limit]
    return page(
        request,
        "restore_owners.html",
        session,
        title=f"Restore: {KINDS[kind][1].lower()}",
        session_id=session_id,
        kind=kind,
        kinds=KINDS,
        rows=rows[: window.size],
        links=window.links(request, rows),
    )


@router.get("/restore/sessions/{session_id}/owners/{owner_id}")
def folder_page(
    request: Request,
    session_id: str,
    owner_id: str,
    session: Viewer,
    kind: str = "mail",
    folder: str = "",
    q: str = "",
) -> Response:
    """One mailbox's (or drive's) folder: its subfolders, then one page of its items."""
    window = window_of(request)
    browser = restores.browser(context(request), session_id, session.principal)
    kind = _kind(kind)
    name = browser.user(owner_id)
    folders = browser.folders(owner_id, kind)
    if q.strip():  # a search of the whole mailbox or drive
        items, here = browser.search(owner_id, kind, q.strip()), None
    elif folder:  # the service's 404 for a folder not in this point
        items = browser.contents(owner_id, kind, folder)
        here = next(f for f in folders if f.id == folder)
    else:  # the top: the items in no folder
        items = [i for i in browser.contents(owner_id, kind, None) if folder_of(i) in ("", ".")]
        here = None
    children = [f for f in folders if f.parent_id == (here.id if here else None)]
    rows = items[window.offset : window.offset + window.limit]
    return page(
        request,
        "restore_folder.html",
        session,
        title=f"Restore: {name}",
        session_id=session_id,
        owner_id=owner_id,
        owner=name,
        kind=kind,
        here=here,
        parent=here.parent_id if here else None,
        folders=[] if q.strip() else children,
        q=q,
        rows=[(restores.item_id(i.key), _label(i), i) for i in rows[: window.size]],
        links=window.links(request, rows),
    )


def _label(item: Item) -> str:
    """What a list shows of an item: a message's subject, a file's name."""
    subject = item.meta.get("subject")
    return str(subject) if subject else PurePosixPath(item.path).name
