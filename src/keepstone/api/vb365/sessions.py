"""Job sessions, their log items and the objects (users) each run processed."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import Request
from starlette.responses import Response

from keepstone.api.vb365 import views
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.pages import Paging, envelope, listing, page_sets
from keepstone.api.vb365.versions import Version, VersionedRouter
from keepstone.domain.errors import InvalidInput
from keepstone.domain.jobs import SessionStatus
from keepstone.services import copy_jobs, jobs, runs, task_sessions
from keepstone.services.context import Context
from keepstone.store.tables import LogItem

router = VersionedRouter()
# v8 filters by "Succeeded" where bodies say "Success".
STATUS_FILTER = {s.value.lower(): s for s in SessionStatus} | {"succeeded": SessionStatus.SUCCESS}
LOG_TYPE_FILTER = {t.lower(): t for t in set(views.LOG_TYPES.values())}


def _status(text: str | None) -> SessionStatus | None:
    if text is None:
        return None
    status = STATUS_FILTER.get(text.lower())
    if status is None:
        raise InvalidInput(
            f"'{text}' is not a session status (Stopped, Running, Succeeded, Failed, Warning)",
            "status",
        )
    return status


def _sessions(
    request: Request, ctx: Context, api: Version, paging: Paging, where: runs.SessionFilter
) -> Any:
    """Sessions newest first, paged in the database; a set is pinned by its creation cutoff."""
    by_id = {j.id: j for j in jobs.list_jobs(ctx)}

    def render(rows: list[Any]) -> list[dict[str, Any]]:
        copies = copy_jobs.copy_jobs_of_sessions(ctx, [r.id for r in rows])
        return [views.job_session(r, api, by_id.get(r.job_id), copies.get(r.id)) for r in rows]

    if not api.pages("jobSessions"):
        return render(runs.list_sessions(ctx, None, paging.offset, paging.limit, where))
    now = ctx.clock.now()
    set_id, cutoff = page_sets(request).snapshot("jobSessions", paging.set_id, lambda: now, now)
    where = dataclasses.replace(where, created_until=cutoff)
    rows = runs.list_sessions(ctx, None, paging.offset, paging.size, where)
    total = runs.count_sessions(ctx, where)
    return envelope(request, render(rows), paging, total, set_id)


@router.get("/JobSessions")
def list_sessions(
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    jobId: str | None = None,
    jobType: str | None = None,
    endTimeLowerBound: datetime | None = None,
    endTimeUpperBound: datetime | None = None,
    status: str | None = None,
) -> Response:
    if jobType is not None and jobType.lower() not in ("backup", "copy"):
        raise InvalidInput(f"'{jobType}' is not a job type (Backup, Copy)", "jobType")
    where = runs.SessionFilter(
        job_id=jobId,
        ended_after=endTimeLowerBound,
        ended_before=endTimeUpperBound,
        status=_status(status),
        job_type=jobType,
    )
    return json(_sessions(request, ctx, api, paging, where))


@router.get("/Jobs/{job_id}/JobSessions", until=6)
def list_job_sessions(
    job_id: str, request: Request, ctx: Ctx, api: Version, paging: Paging
) -> Response:
    return json(_sessions(request, ctx, api, paging, runs.SessionFilter(job_id=job_id)))


@router.get("/JobSessions/{session_id}")
def get_session(session_id: str, ctx: Ctx, api: Version) -> Response:
    session = runs.get_session(ctx, session_id)
    copy = copy_jobs.copy_jobs_of_sessions(ctx, [session.id]).get(session.id)
    return json(views.job_session(session, api, jobs.get_job(ctx, session.job_id), copy))


@router.get("/JobSessions/{session_id}/LogItems")
def list_log_items(
    session_id: str,
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    type: str | None = None,
    orderAsc: bool = True,
) -> Response:
    wanted = LOG_TYPE_FILTER.get(type.lower()) if type else None
    if type and wanted is None:
        raise InvalidInput(
            f"'{type}' is not a log item type ({', '.join(LOG_TYPE_FILTER.values())})", "type"
        )

    def rows() -> list[LogItem]:
        items = runs.list_log_items(ctx, session_id)
        kept = [i for i in items if wanted in (None, views.LOG_TYPES.get(i.status))]
        return kept if orderAsc else kept[::-1]

    render = partial(views.log_item, api=api)
    return json(listing(request, api, "logItems", rows, render, paging, ctx.clock.now()))


@router.get("/JobSessions/{session_id}/LogItems/{item_id}")
def get_log_item(session_id: str, item_id: str, ctx: Ctx, api: Version) -> Response:
    return json(views.log_item(runs.get_log_item(ctx, session_id, item_id), api))


@router.get("/JobSessions/{session_id}/ProcessedObjects", since=7)
def processed_objects(
    session_id: str, request: Request, ctx: Ctx, api: Version, paging: Paging
) -> Response:
    rows = partial(task_sessions.processed_objects, ctx, session_id)
    render = partial(views.processed_object, api=api)
    return json(listing(request, api, "processedObjects", rows, render, paging, ctx.clock.now()))
