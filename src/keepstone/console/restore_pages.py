"""The console's Restore pages: restore points by day, opening a restore session on one (the
API's explore), browsing it (mailboxes or drives, their folders and items, every list one page
at a time, searched on the server), previewing a message as text, and getting items out: an
``.eml`` or a file, a zip of the items ticked, or a put-back followed on a progress page.

Thin, like every console page: the caller's principal goes to the same services the JSON
routers call, so a scoped operator's reach applies. A user without a global role is admitted
here by its organization roles (``access.admit_for``, audited like its API requests); it reaches
no other console page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from keepstone.api.downloads import item_download, zip_download
from keepstone.console import calendar_grid as calendar
from keepstone.console.pages import Change, context
from keepstone.console.render import form_of, page, see_other, window_of
from keepstone.console.web_session import WebSession, check_csrf, current, origin
from keepstone.domain.errors import InvalidInput, NotFound
from keepstone.engine.model import Item
from keepstone.services import access, auth, catalog, jobs, restore_points, restores, tasks
from keepstone.services.access import Access
from keepstone.services.context import Context
from keepstone.services.message_preview import PREVIEW_BYTES, preview
from keepstone.services.restores import Collision

router = APIRouter(include_in_schema=False)
# What a console user browses: the session's type and the item kind of its owners.
KINDS = {"mail": ("Vex", "Mailboxes"), "file": ("Veod", "Drives")}
TYPES = {vex: kind for kind, (vex, _label) in KINDS.items()}
COLLISIONS = {
    Collision.KEEP_BOTH: "Keep both (the restored copy gets a new name)",
    Collision.SKIP: "Skip items already there",
    Collision.OVERWRITE: "Overwrite items already there",
}
EVENTS_SHOWN = 25  # a progress page's newest events
RESTORE_TASK = "Restore"


def _admitting(
    need: Access, action: auth.Action
) -> Callable[[Request, WebSession], Awaitable[WebSession]]:
    """A page's door: a global role by ``action`` (a ReadOnly user reads, never restores), a
    user without one by its organization roles (``need``), every such request audited."""

    async def admitted(request: Request, session: WebSession) -> WebSession:
        caller = session.principal
        if not caller.scoped:
            auth.authorize(caller, action)
            return session
        route = request.scope.get("route")
        operation = (request.method, str(getattr(route, "path", request.url.path)))
        path = request.url.path
        ctx = context(request)
        with_scope = await run_in_threadpool(
            access.admit_for, ctx, caller, need, operation, path, origin(request)
        )
        return dataclasses.replace(session, principal=with_scope)

    return admitted


_read = _admitting(Access.READ_ONLY, auth.Action.READ)
_browse = _admitting(Access.RESTORE, auth.Action.READ)
_restore = _admitting(Access.RESTORE, auth.Action.WRITE)


async def reader(request: Request) -> WebSession:
    return await _read(request, await current(request))


async def browser_user(request: Request) -> WebSession:
    return await _browse(request, await current(request))


async def content_reader(request: Request) -> WebSession:
    """Reads an item's content (a preview): as a save does, so never a ReadOnly user."""
    return await _restore(request, await current(request))


async def restorer(request: Request) -> Change:
    session = await current(request)
    form = await form_of(request)
    check_csrf(request, session, dict(form))
    return Change(await _restore(request, session), form)


Reader = Annotated[WebSession, Depends(reader)]
Browsing = Annotated[WebSession, Depends(browser_user)]
ContentReader = Annotated[WebSession, Depends(content_reader)]
Restorer = Annotated[Change, Depends(restorer)]


def _kind(text: str) -> str:
    if text not in KINDS:
        raise InvalidInput(f"'{text}' is not mail or file", "kind")
    return text


# ---- restore points ---------------------------------------------------------------------------


@router.get("/restore")
def points_page(
    request: Request,
    session: Reader,
    organization: str = "",
    job: str = "",
    before: str = "",
    day: str = "",
    month: str = "",
) -> Response:
    """Restore points, newest first and headed by day, of the organization or job chosen (of
    all by default), taken on the day chosen or on or before it; above them a month's calendar
    whose days that hold points link to them (the newest point's month by default)."""
    ctx, caller = context(request), session.principal
    window = window_of(request)
    chosen_day = calendar.parse_day(day, "day") if day else None
    where = restore_points.PointFilter(
        job_id=job or None,
        organization_id=organization or None,
        organizations=access.organizations_of(caller),
    )
    listed = dataclasses.replace(
        where,
        taken_before=_day_after(before, ctx) if before else None,
        taken_from=calendar.start_of(chosen_day, ctx.tz) if chosen_day else None,
    )
    if chosen_day is not None:
        listed = dataclasses.replace(
            listed, taken_before=calendar.start_of(chosen_day + timedelta(days=1), ctx.tz)
        )
    rows = restore_points.page_points(ctx, listed, window.offset, window.limit)
    shown = rows[: window.size]
    days: dict[str, list[Any]] = {}
    for point in shown:
        days.setdefault(point.backup_time.astimezone(ctx.tz).strftime("%A %Y-%m-%d"), []).append(
            point
        )
    names = {o.id: o.name for o in catalog.list_organizations(ctx, caller)}
    found_jobs = jobs.jobs_by_id(ctx, {p.job_id for p in shown if p.job_id})
    chosen = {"organization": organization, "job": job, "before": before, "day": day}
    shown_month = _calendar(ctx, where, chosen, month, chosen_day)
    return page(
        request,
        "restore_points.html",
        session,
        title="Restore",
        days=days,
        organizations=names,
        jobs={job_id: j.name for job_id, j in found_jobs.items()},
        chosen=chosen,
        links=window.links(request, rows),
        kinds=KINDS,
        restorable=_restorable(session),
        month=shown_month,
        month_links=_month_links(chosen, shown_month),
        weekdays=calendar.WEEKDAYS,
    )


def _calendar(
    ctx: Context,
    where: restore_points.PointFilter,
    chosen: dict[str, str],
    month: str,
    chosen_day: date | None,
) -> calendar.Month:
    """The month asked for, else the chosen day's, else the newest point's (else this one), its
    days holding points ``where`` selects linked to their points (one aggregate query)."""
    if month:
        first = calendar.parse_month(month)
    elif chosen_day is not None:
        first = chosen_day.replace(day=1)
    elif chosen["before"]:
        first = calendar.parse_day(chosen["before"], "before").replace(day=1)
    else:
        newest = restore_points.newest_time(ctx, where)
        first = (newest or ctx.clock.now()).astimezone(ctx.tz).date().replace(day=1)
    filters = _filters(chosen)
    with_points = restore_points.days_with_points(ctx, where, calendar.bounds(first, ctx.tz))

    def link(day: date) -> str:
        return f"/restore?{urlencode(filters | {'day': day.isoformat()})}"

    return calendar.month_grid(first, with_points, link)


def _restorable(session: WebSession) -> frozenset[str] | None:
    """The organizations whose points the user may open (None: every one)."""
    caller = session.principal
    scope = access.reach(caller)
    if scope is not None:
        return scope.organizations(Access.RESTORE)
    return None if caller.role is auth.Role.ADMINISTRATOR else frozenset()


def _may_restore(session: WebSession) -> bool:
    restorable = _restorable(session)
    return restorable is None or bool(restorable)


def _filters(chosen: dict[str, str]) -> dict[str, str]:
    """The organization and job chosen, which the calendar's links keep."""
    return {k: chosen[k] for k in ("organization", "job") if chosen[k]}


def _month_links(chosen: dict[str, str], month: calendar.Month) -> dict[str, str]:
    filters = _filters(chosen)

    def at(first: date) -> str:
        return f"/restore?{urlencode(filters | {'month': first.strftime('%Y-%m')})}"

    return {
        "previous": at(month.previous),
        "next": at(month.next),
        "every_day": f"/restore?{urlencode(filters)}",
    }


def _day_after(text: str, ctx: Context) -> datetime:
    """The start of the day after ``text`` (YYYY-MM-DD) on the server's clock."""
    return calendar.start_of(calendar.parse_day(text, "before") + timedelta(days=1), ctx.tz)


@router.post("/restore/explore")
def explore(request: Request, change: Restorer) -> Response:
    """Open a restore session on the chosen point, as the API's explore does."""
    ctx, caller = context(request), change.session.principal
    kind = _kind(change.form.get("kind", "mail"))
    if not change.form.get("point"):
        raise InvalidInput("choose a restore point to open", "point")
    point = restore_points.get_point(ctx, change.form["point"], caller)
    opened = restores.explore_at(
        ctx,
        at=point.backup_time,
        user_name=caller.user_name,
        job_id=point.job_id,
        organization_id=None if point.job_id else point.organization_id,
        kind=KINDS[kind][0],
        caller=caller,
    )
    return see_other(f"/restore/sessions/{opened.id}?kind={kind}")


# ---- browsing ---------------------------------------------------------------------------------


def _base(session_id: str, owner_id: str | None = None) -> str:
    base = f"/restore/sessions/{quote(session_id, safe='')}"
    return base if owner_id is None else f"{base}/owners/{quote(owner_id, safe='')}"


@router.get("/restore/sessions/{session_id}")
def owners_page(request: Request, session_id: str, session: Browsing, kind: str = "") -> Response:
    """The session's mailboxes (or drives), one page of them."""
    ctx = context(request)
    window = window_of(request)
    opened = restores.get_session(ctx, session_id, session.principal)
    kind = _kind(kind or TYPES.get(opened.type, "mail"))
    owners = restores.browser(ctx, session_id, session.principal).owners_with(kind)
    rows = owners[window.offset : window.offset + window.limit]
    return page(
        request,
        "restore_owners.html",
        session,
        title=f"Restore: {KINDS[kind][1].lower()}",
        base=_base(session_id),
        opened=opened,
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
    session: Browsing,
    kind: str = "mail",
    folder: str = "",
    q: str = "",
) -> Response:
    """One mailbox's (or drive's) folder: its subfolders, then one page of its items; or one
    page of what a search of the whole mailbox or drive found."""
    ctx = context(request)
    window = window_of(request)
    browser = restores.browser(ctx, session_id, session.principal)
    kind, text = _kind(kind), q.strip()
    name = browser.user(owner_id)
    folders = browser.folders(owner_id, kind)
    here = None
    if text:  # a search of the whole mailbox or drive
        items = browser.search(owner_id, kind, text)
    elif folder:  # the service's 404 for a folder not in this point
        items = browser.contents(owner_id, kind, folder)
        here = next(f for f in folders if f.id == folder)
    else:  # the top: the items in no folder
        items = browser.top(owner_id, kind)
    children = [f for f in folders if f.parent_id == (here.id if here else None)]
    rows = items[window.offset : window.offset + window.limit]
    return page(
        request,
        "restore_folder.html",
        session,
        title=f"Restore: {name}",
        base=_base(session_id),
        owner_base=_base(session_id, owner_id),
        owner=name,
        kind=kind,
        here=here,
        parent=here.parent_id if here else None,
        folders=[] if text else children,
        q=text,
        found=len(items) if text else None,
        rows=[(restores.item_id(i.key), _label(i), i) for i in rows[: window.size]],
        links=window.links(request, rows),
        collisions=COLLISIONS,
        may_restore=_may_restore(session),
        back=_here(request),
    )


def _here(request: Request) -> str:
    """This page's path and query, where a form's result comes back to."""
    query = urlencode(list(request.query_params.multi_items()))
    return request.url.path + (f"?{query}" if query else "")


def _label(item: Item) -> str:
    """What a list shows of an item: a message's subject, a file's name."""
    subject = item.meta.get("subject")
    return str(subject) if subject else PurePosixPath(item.path).name


@router.get("/restore/sessions/{session_id}/owners/{owner_id}/items/{item}")
def preview_page(
    request: Request, session_id: str, owner_id: str, item: str, session: ContentReader
) -> Response:
    """A message as text: its markup is never sent (services.message_preview)."""
    ctx = context(request)
    caller = session.principal
    found, head, more = restores.read_start(
        ctx, session_id, owner_id, item, PREVIEW_BYTES, by=caller.user_name, caller=caller
    )
    if found.kind != "mail":
        raise NotFound(f"item '{item}' is not a message; download it instead")
    shown = preview(head, more)
    return page(
        request,
        "restore_message.html",
        session,
        title=shown.subject or "(no subject)",
        message=shown,
        item_id=item,
        owner_base=_base(session_id, owner_id),
        item=found,
    )


# ---- getting items out ------------------------------------------------------------------------


@router.post("/restore/sessions/{session_id}/owners/{owner_id}/items/{item}/save")
def save_one(
    request: Request, session_id: str, owner_id: str, item: str, change: Restorer
) -> Response:
    """One message as ``.eml`` or one file, saved as the API's save does (and audited so)."""
    caller = change.session.principal
    found, chunks = restores.stream_item(
        context(request), session_id, owner_id, item, by=caller.user_name, caller=caller
    )
    return item_download(found, chunks)


@router.post("/restore/sessions/{session_id}/owners/{owner_id}/zip")
def save_zip(request: Request, session_id: str, owner_id: str, change: Restorer) -> Response:
    """The items ticked, as one zip file (the API's save of several items)."""
    ctx, caller = context(request), change.session.principal
    return zip_download(ctx, session_id, owner_id, change.all("ids"), caller)


@router.post("/restore/sessions/{session_id}/owners/{owner_id}/restore")
def put_back(request: Request, session_id: str, owner_id: str, change: Restorer) -> Response:
    """Put the items ticked (or, with none ticked, all of the owner's) back: to their place,
    or to another user and/or folder, with a collision policy; it runs as a task whose progress
    the next page follows."""
    ctx, caller, form = context(request), change.session.principal, change.form
    kind = _kind(form.get("kind", "mail"))
    view = restores.browser(ctx, session_id, caller)
    view.user(owner_id)  # a wrong session or owner (or one out of the caller's scope): a 404
    ids = change.all("ids") or None
    elsewhere = form.get("to", "original") == "elsewhere"
    to_user = form.get("user", "").strip() if elsewhere else ""
    to_folder = form.get("folder", "").strip() if elsewhere else ""
    if elsewhere and not to_user and not to_folder:
        raise InvalidInput("restoring elsewhere needs a user and/or a folder", "user")
    collision = _collision(form.get("collision", Collision.KEEP_BOTH.value))
    target = restores.session_target(ctx, session_id)  # a refusal is a 400 now, not in a task

    def work() -> tuple[str, dict[str, Any]]:
        counts = restores.restore(
            ctx,
            session_id,
            owner_id,
            ids,
            kind=kind,
            to_user=to_user or None,
            to_folder=to_folder or None,
            collision=collision,
            by=caller.user_name,
            target=target,
            caller=caller,
        )
        message = (
            f"Restored {counts.restored} items ({counts.skipped} skipped, {counts.failed} failed)"
        )
        return message, {}

    started_by = change.session.principal.user_id
    task = tasks.submit(ctx, change.session.session_id, RESTORE_TASK, work, started_by)
    return see_other(f"{_base(session_id)}/progress?task={task.number}")


def _collision(text: str) -> Collision:
    try:
        return Collision(text)
    except ValueError:
        raise InvalidInput(f"'{text}' is not a collision policy", "collision") from None


# ---- progress ---------------------------------------------------------------------------------


@router.get("/restore/sessions/{session_id}/progress")
def progress_page(request: Request, session_id: str, session: Browsing, task: str = "") -> Response:
    """A restore session's counts and newest events; polled while the put-back named runs."""
    view = _progress(context(request), session_id, session, task)
    return page(request, "restore_progress.html", session, title="Restore progress", **view)


@router.get("/fragments/restore/{session_id}")
def progress_fragment(
    request: Request, session_id: str, session: Browsing, task: str = ""
) -> Response:
    view = _progress(context(request), session_id, session, task)
    return page(request, "_restore_live.html", session, **view)


def _progress(ctx: Context, session_id: str, session: WebSession, task: str) -> dict[str, Any]:
    opened = restores.get_session(ctx, session_id, session.principal, Access.RESTORE)
    running = None
    if task:
        number = int(task) if task.isdigit() and len(task) < 19 else 0
        running = tasks.get(ctx, number)
        if running.logon_session_id != session.session_id or running.operation != RESTORE_TASK:
            raise NotFound(f"task 'task-{task}' does not exist")  # another login's task
    last = restores.last_event(ctx, session_id)
    events = restores.list_events(ctx, session_id, max(0, last - EVENTS_SHOWN), EVENTS_SHOWN)
    return {
        "opened": opened,
        "task": running,
        "task_number": task,
        "events": list(reversed(events)),
        "stats": opened.statistics or {},
        "base": _base(session_id),
        "kind": TYPES.get(opened.type, "mail"),
    }
