"""Job sessions, their log items and the objects (users) each run processed."""

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from fastapi import Request
from starlette.responses import Response

from keepstone.api.vb365 import views
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.pages import Continuation, Paging, listing, query_listing
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

    def render(rows: Sequence[Any]) -> list[dict[str, Any]]:
        by_id = jobs.jobs_by_id(ctx, {r.job_id for r in rows})
        copies = copy_jobs.copy_jobs_of_sessions(ctx, [r.id for r in rows])
        return [views.job_session(r, api, by_id.get(r.job_id), copies.get(r.id)) for r in rows]

    def pinned(cutoff: datetime | None) -> runs.SessionFilter:
        return where if cutoff is None else dataclasses.replace(where, created_until=cutoff)

    def page(
        cutoff: datetime | None, offset: int, limit: int | None, total: int | None
    ) -> list[Any]:
        return runs.list_sessions(ctx, None, offset, limit, pinned(cutoff), total=total)

    def after(cutoff: datetime | None, key: tuple[Any, ...], limit: int) -> list[Any]:
        return runs.list_sessions(ctx, None, 0, limit, pinned(cutoff), after=(key[0], key[1]))

    def count(cutoff: datetime | None) -> int:
        return runs.count_sessions(ctx, pinned(cutoff))

    now = ctx.clock.now()
    walk = Continuation(runs.session_key, after)
    return query_listing(
        request, api, "jobSessions", lambda: now, page, count, render, paging, now, walk
    )


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

    statuses = None if wanted is None else tuple(views.statuses_of_log_type(wanted))
    where = runs.LogFilter(session_id, statuses, orderAsc)

    def page(
        until: int | None,
        offset: int,
        limit: int | None,
        total: int | None,
        after: tuple[int, str] | None = None,
    ) -> list[LogItem]:
        return runs.list_log_items(
            ctx,
            session_id,
            offset,
            limit,
            total=total,
            after=after,
            statuses=statuses,
            ascending=orderAsc,
            until_usn=until,
        )

    def following(until: int | None, key: tuple[Any, ...], limit: int) -> list[LogItem]:
        return page(until, 0, limit, None, (key[0], key[1]))

    def count(until: int | None) -> int:
        return runs.count_log_items(ctx, dataclasses.replace(where, until_usn=until))

    def render(rows: Sequence[LogItem]) -> list[dict[str, Any]]:
        return [views.log_item(row, api) for row in rows]

    pin = partial(runs.last_usn, ctx, session_id)
    now = ctx.clock.now()
    walk = Continuation(runs.log_key, following)
    return json(
        query_listing(request, api, "logItems", pin, page, count, render, paging, now, walk)
    )


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
