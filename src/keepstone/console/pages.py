"""The console's routes: login, dashboard, sessions. Thin: each reads the request, calls the same
service functions the API handlers call, and renders a template. Rules live in the services."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from keepstone.console.render import form_of, page, see_other, window_of
from keepstone.console.web_session import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    WebSession,
    check_csrf,
    check_login_secret,
    current,
    log_in,
    log_out,
    login_secret,
    set_cookie,
)
from keepstone.domain.errors import BadCredentials, InvalidInput, KeepstoneError
from keepstone.domain.jobs import SessionStatus
from keepstone.services import auth, catalog, jobs, proxies, runs
from keepstone.services.context import Context
from keepstone.store.tables import Job, JobSession

router = APIRouter(include_in_schema=False)
DASHBOARD_ROWS = 10
LOG_PAGE = 100  # log lines shown at once on a session page (the newest)


async def viewer(request: Request) -> WebSession:
    session = await current(request)
    auth.authorize(session.principal, auth.Action.READ)
    return session


class Change:
    """A POST from a console page: its session (CSRF-checked, allowed to write) and form."""

    def __init__(self, session: WebSession, form: list[tuple[str, str]]) -> None:
        self.session, self.fields = session, form
        self.form = dict(form)  # single-valued fields; ``all`` for repeated ones

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]


async def changer(request: Request) -> Change:
    session = await current(request)
    form = await form_of(request)
    check_csrf(request, session, dict(form))
    auth.authorize(session.principal, auth.Action.WRITE)
    return Change(session, form)


Viewer = Annotated[WebSession, Depends(viewer)]
Changer = Annotated[Change, Depends(changer)]


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


# ---- login -------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, why: str = "") -> Response:
    secret = login_secret(request)
    response = page(
        request, "login.html", None, title="Log in", why=why, secret=secret, error="", name=""
    )
    set_cookie(request, response, LOGIN_COOKIE, secret)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = dict(await form_of(request))
    check_login_secret(request, form)
    response = see_other(_local(form.get("next", "/")))
    name = form.get("username", "")
    try:
        await _in_thread(log_in, request, response, name, form.get("password", ""))
    except (BadCredentials, InvalidInput) as error:
        secret = form.get(CSRF_FIELD, "")
        return page(
            request,
            "login.html",
            None,
            401,
            title="Log in",
            why="",
            secret=secret,
            error=error.message,
            name=name,
        )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await current(request)
    check_csrf(request, session, dict(await form_of(request)))
    response = see_other("/login")
    await _in_thread(log_out, request, response, session)
    return response


async def _in_thread(function: Any, *args: Any) -> Any:
    return await run_in_threadpool(function, *args)


def _local(target: str) -> str:
    """Where to go after login: a path on this server only (never an open redirect)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


# ---- dashboard --------------------------------------------------------------------------------


@router.get("/")
def dashboard(request: Request, session: Annotated[WebSession, Depends(current)]) -> Response:
    if session.principal.scoped:  # a restore operator's console is the Restore pages
        return see_other("/restore")
    auth.authorize(session.principal, auth.Action.READ)
    ctx = context(request)
    now = ctx.clock.now()
    job_rows = jobs.page_jobs(ctx, 0, DASHBOARD_ROWS + 1)
    failures = runs.list_sessions(
        ctx, limit=DASHBOARD_ROWS, where=runs.SessionFilter(status=SessionStatus.FAILED)
    )
    repositories = catalog.list_repositories(ctx)[:DASHBOARD_ROWS]
    proxy_rows = catalog.list_proxies(ctx)[:DASHBOARD_ROWS]
    return page(
        request,
        "dashboard.html",
        session,
        title="Dashboard",
        jobs=job_rows[:DASHBOARD_ROWS],
        more_jobs=len(job_rows) > DASHBOARD_ROWS,
        running=_running(ctx),
        failures=failures,
        why=runs.failures_of(ctx, [f.id for f in failures]),
        names=_job_names(ctx, failures),
        repositories=[(r, catalog.disk_space(r.path)) for r in repositories],
        proxies=[(p, proxies.proxy_status(p, now)) for p in proxy_rows],
    )


def _running(ctx: Context) -> dict[str, Any]:
    rows = runs.list_sessions(
        ctx, limit=DASHBOARD_ROWS, where=runs.SessionFilter(status=SessionStatus.RUNNING)
    )
    return {"sessions": rows, "names": _job_names(ctx, rows)}


@router.get("/fragments/running")
def running_fragment(request: Request, session: Viewer) -> Response:
    """The dashboard's running sessions, which the page polls while it is open."""
    return page(request, "_running.html", session, running=_running(context(request)))


def _job_names(ctx: Context, sessions: list[JobSession]) -> dict[str, str]:
    found: dict[str, Job] = jobs.jobs_by_id(ctx, {s.job_id for s in sessions})
    return {job_id: job.name for job_id, job in found.items()}


# ---- sessions ---------------------------------------------------------------------------------


@router.get("/sessions")
def sessions_page(
    request: Request, session: Viewer, status: str = "", job: str = "", since: str = ""
) -> Response:
    ctx = context(request)
    window = window_of(request)
    error = ""
    try:
        where = runs.SessionFilter(
            job_id=job or None,
            status=_status(status),
            ended_after=_day(since, ctx) if since else None,
        )
        rows = runs.list_sessions(ctx, offset=window.offset, limit=window.limit, where=where)
    except KeepstoneError as failure:
        error, rows = failure.message, []
    return page(
        request,
        "sessions.html",
        session,
        title="Sessions",
        rows=rows[: window.size],
        names=_job_names(ctx, rows),
        links=window.links(request, rows),
        statuses=[s.value for s in SessionStatus],
        chosen={"status": status, "job": job, "since": since},
        error=error,
    )


def _status(text: str) -> SessionStatus | None:
    if not text:
        return None
    try:
        return SessionStatus(text)
    except ValueError:
        raise InvalidInput(f"status '{text}' is not a session status", "status") from None


def _day(text: str, ctx: Context) -> datetime:
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise InvalidInput(f"'{text}' is not a date (YYYY-MM-DD)", "since") from None
    return day.replace(tzinfo=ctx.tz)


@router.get("/sessions/{session_id}")
def session_page(request: Request, session_id: str, session: Viewer) -> Response:
    return page(
        request,
        "session.html",
        session,
        title="Session",
        **_session_view(context(request), session_id),
    )


@router.get("/fragments/sessions/{session_id}")
def session_fragment(request: Request, session_id: str, session: Viewer) -> Response:
    """A session's progress and newest log lines, which its page polls while it runs."""
    view = _session_view(context(request), session_id)
    return page(request, "_session_live.html", session, **view)


def _session_view(ctx: Context, session_id: str) -> dict[str, Any]:
    row = runs.get_session(ctx, session_id)
    log = runs.list_log_items(ctx, session_id, 0, LOG_PAGE, ascending=False)
    job = jobs.jobs_by_id(ctx, [row.job_id]).get(row.job_id)
    stats = row.statistics or {}
    seconds = float(stats.get("duration_seconds", 0)) or 0.0
    rate = {
        "bytes_ps": int(stats.get("read_bytes", 0)) / seconds if seconds else 0.0,
        "items_ps": int(stats.get("read_items", 0)) / seconds if seconds else 0.0,
        "processed": int(stats.get("read_items", 0)),
    }
    active = SessionStatus(row.status).is_active
    return {"row": row, "log": log, "job": job, "rate": rate, "active": active}


@router.post("/sessions/{session_id}/stop")
def stop_session(request: Request, session_id: str, change: Changer) -> Response:
    runs.stop_session(context(request), session_id)
    return see_other(f"/sessions/{session_id}")


@router.post("/sessions/{session_id}/retry")
def retry_session(request: Request, session_id: str, change: Changer) -> Response:
    """Run the session's job again now (a manual start, as the API's ``start``)."""
    ctx = context(request)
    return start_and_follow(ctx, runs.get_session(ctx, session_id).job_id)


def start_and_follow(ctx: Context, job_id: str) -> Response:
    """A manual start, as the API's ``start``; the browser goes to the new session's page."""
    started = runs.start_job(ctx, job_id, "Started by user")
    assert started is not None  # a start refuses (409) while a run is active; it never skips
    return see_other(f"/sessions/{started.id}")
