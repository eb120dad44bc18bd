"""The console's job pages: the list, the form (every setting of the seed's PUT, the backup
window as a 7 x 24 grid), and the actions start, stop, enable and disable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.console.forms import ITEM_ROWS, job_edit, window_of
from keepstone.console.pages import Change, Changer, Viewer, context, start_and_follow
from keepstone.console.render import page, see_other, utc_offset
from keepstone.console.render import window_of as page_window
from keepstone.console.web_session import WebSession
from keepstone.domain.errors import InvalidInput, KeepstoneError
from keepstone.domain.jobs import BackupType
from keepstone.domain.policy import DailyType, Period, SchedulePolicy, ScheduleType
from keepstone.domain.window_text import DAY_NAMES, describe_window, week_hour
from keepstone.services import catalog, jobs, runs
from keepstone.services.context import Context
from keepstone.store.codecs import policy_from_record
from keepstone.store.tables import Job

router = APIRouter(include_in_schema=False)
RECENT_SESSIONS = 5


def _summary(job: Job) -> str:
    policy = policy_from_record(job.schedule_policy)
    return describe_window(policy.backup_window, policy.backup_window_enabled)


@router.get("/jobs")
def jobs_page(request: Request, session: Viewer) -> Response:
    ctx = context(request)
    window = page_window(request)
    rows = jobs.page_jobs(ctx, window.offset, window.limit)
    shown = rows[: window.size]
    return page(
        request,
        "jobs.html",
        session,
        title="Jobs",
        rows=[(job, _summary(job)) for job in shown],
        links=window.links(request, rows),
    )


@router.get("/fragments/window-summary")
def window_summary(request: Request, session: Viewer) -> Response:
    """The grid's hours in words, as the grid is painted."""
    enabled = bool(request.query_params.get("backupWindowEnabled"))
    try:
        text = describe_window(window_of(request.query_params.getlist("window")), enabled)
    except InvalidInput as error:
        text = error.message
    return page(request, "_window_summary.html", session, summary=text)


# ---- the form ---------------------------------------------------------------------------------


def _values_of_job(job: Job | None, ctx: Context) -> dict[str, Any]:
    """The form's values for ``job`` (a new job: the defaults, the window on the server's
    current offset from UTC)."""
    if job is None:
        policy = SchedulePolicy(minute_offset=utc_offset(ctx, ctx.clock.now()))
        items: list[dict[str, Any]] = []
        values: dict[str, Any] = {"name": "", "description": "", "backupType": "EntireOrganization"}
        values |= {"repositoryId": "", "proxyId": "", "version": ""}
    else:
        policy = policy_from_record(job.schedule_policy)
        items = [_item_row(item) for item in job.selected_items if item.get("type") == "User"]
        values = {
            "name": job.name,
            "description": job.description,
            "backupType": job.backup_type,
            "repositoryId": job.repository_id,
            "proxyId": job.proxy_id,
            "version": str(job.version),
        }
    return values | {
        "type": policy.type.value,
        "dailyType": policy.daily_type.value,
        "dailyTime": policy.daily_time.strftime("%H:%M"),
        "periodicallyEvery": policy.periodically_every.value,
        "backupWindowEnabled": policy.backup_window_enabled,
        "window": policy.backup_window,
        "minuteOffset": str(policy.minute_offset),
        "retryEnabled": policy.retry_enabled,
        "retryNumber": str(policy.retry_number),
        "retryWaitInterval": str(policy.retry_wait_interval),
        "items": items,
    }


def _item_row(item: dict[str, Any]) -> dict[str, Any]:
    user = item.get("user") or {}
    both = item.get("mailbox") is None and item.get("oneDrive") is None
    return {
        "id": item.get("id", ""),
        "name": user.get("name") or user.get("displayName") or user.get("id", ""),
        "mailbox": both or bool(item.get("mailbox")),
        "drive": both or bool(item.get("oneDrive")),
    }


def _values_of_form(change: Change, shown: dict[str, Any]) -> dict[str, Any]:
    """What the user sent over what the form showed, to show again beside the message saying
    what was wrong."""
    form = change.form
    try:
        window = window_of(change.all("window"))
    except InvalidInput:
        window = (False,) * len(SchedulePolicy().backup_window)
    rows = sorted(
        k.removesuffix("-name") for k in form if k.startswith("item-") and k.endswith("-name")
    )
    items = [
        {
            "id": form.get(f"{row}-id", ""),
            "name": form[f"{row}-name"],
            "mailbox": bool(form.get(f"{row}-mailbox")),
            "drive": bool(form.get(f"{row}-drive")),
        }
        for row in rows
        if form[f"{row}-name"].strip()
    ]
    flags = ("backupWindowEnabled", "retryEnabled")
    return (
        shown
        | {k: v for k, v in form.items() if not k.startswith("item-")}
        | {
            "window": window,
            "items": items,
            **{flag: bool(form.get(flag)) for flag in flags},
        }
    )


def _form(
    request: Request,
    session: WebSession,
    job: Job | None,
    values: dict[str, Any],
    error: str = "",
    status: int = 200,
) -> Response:
    ctx = context(request)
    window: tuple[bool, ...] = values["window"]
    recent = runs.list_sessions(ctx, job.id, 0, RECENT_SESSIONS) if job else []
    return page(
        request,
        "job.html",
        session,
        status,
        title=f"Job {job.name}" if job else "New job",
        job=job,
        v=values,
        error=error,
        organizations=catalog.list_organizations(ctx) if job is None else [],
        organization=catalog.get_organization(ctx, job.organization_id) if job else None,
        repositories=catalog.list_repositories(ctx),
        proxies=catalog.list_proxies(ctx),
        backup_types=[t.value for t in BackupType],
        schedule_types=[t.value for t in ScheduleType],
        daily_types=[t.value for t in DailyType],
        periods=[p.value for p in Period],
        days=[
            (day, name, [(week_hour(day, h), h) for h in range(24)])
            for day, name in enumerate(DAY_NAMES)
        ],
        summary=describe_window(window, bool(values["backupWindowEnabled"])),
        blank_rows=range(len(values["items"]), len(values["items"]) + ITEM_ROWS),
        recent=recent,
    )


@router.get("/jobs/new")
def new_job_page(request: Request, session: Viewer) -> Response:
    values = _values_of_job(None, context(request))
    values["organizationId"] = request.query_params.get("organization", "")
    return _form(request, session, None, values)


@router.post("/jobs/new")
def create_job(request: Request, change: Changer) -> Response:
    ctx = context(request)
    try:
        edit = job_edit(change.form, change.all("window"))
        org_id = change.form.get("organizationId", "")
        if not org_id:
            raise InvalidInput("organizationId is required", "organizationId")
        job = jobs.create_job(ctx, org_id, edit).job
    except KeepstoneError as error:
        shown = _values_of_form(change, _values_of_job(None, ctx))
        return _form(request, change.session, None, shown, error.message, 400)
    return see_other(f"/jobs/{job.id}")


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, session: Viewer) -> Response:
    job = jobs.get_job(context(request), job_id)
    return _form(request, session, job, _values_of_job(job, context(request)))


@router.post("/jobs/{job_id}")
def edit_job(request: Request, job_id: str, change: Changer) -> Response:
    ctx = context(request)
    version = change.form.get("version", "")
    try:
        edit = job_edit(change.form, change.all("window"))
        jobs.edit_job(ctx, job_id, edit, if_match=int(version) if version.isdigit() else None)
    except KeepstoneError as error:
        job = jobs.get_job(ctx, job_id)
        shown = _values_of_form(change, _values_of_job(job, ctx))
        return _form(request, change.session, job, shown, error.message, 400)
    return see_other(f"/jobs/{job_id}")


@router.post("/jobs/{job_id}/start")
def start_job(request: Request, job_id: str, change: Changer) -> Response:
    return start_and_follow(context(request), job_id)


@router.post("/jobs/{job_id}/stop")
def stop_job(request: Request, job_id: str, change: Changer) -> Response:
    runs.stop_job(context(request), job_id)
    return see_other(f"/jobs/{job_id}")


@router.post("/jobs/{job_id}/enable")
def enable_job(request: Request, job_id: str, change: Changer) -> Response:
    jobs.set_enabled(context(request), job_id, True)
    return see_other(f"/jobs/{job_id}")


@router.post("/jobs/{job_id}/disable")
def disable_job(request: Request, job_id: str, change: Changer) -> Response:
    jobs.set_enabled(context(request), job_id, False)
    return see_other(f"/jobs/{job_id}")
