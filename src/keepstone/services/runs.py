"""Job runs: sessions from Queued to their end state, and their log.

A job never has two active sessions: starting one checks for an active session inside the same
write transaction that inserts the new one.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import Conflict, NotFound
from keepstone.domain.jobs import SessionStatus
from keepstone.services.context import Context, new_id
from keepstone.store.tables import Job, JobSession, LogItem, Organization

ACTIVE = (SessionStatus.QUEUED.value, SessionStatus.RUNNING.value)
EMPTY_STATISTICS: dict[str, int | str] = {
    "read_bytes": 0,
    "read_items": 0,
    "transferred_bytes": 0,
    "written_bytes": 0,
    "duration_seconds": 0,
    "bottleneck": "NA",
}


def start_job(
    ctx: Context, job_id: str, reason: str, *, already_active_ok: bool = False
) -> JobSession | None:
    now = ctx.clock.now()
    with ctx.db.write() as s:
        job = _job(s, job_id)
        active = _active_session(s, job.id)
        if active is not None:
            if already_active_ok:
                return None
            raise Conflict(f"job '{job.name}' is already running (session {active.id})")
        session = JobSession(
            id=new_id(),
            job_id=job.id,
            status=SessionStatus.QUEUED.value,
            creation_time=now,
            end_time=None,
            progress=0,
            retry_count=0,
            statistics=dict(EMPTY_STATISTICS),
            details=reason,
            stop_requested=False,
            claimed_by=None,
        )
        s.add(session)
        s.flush()
        add_log_in(
            s, session.id, SessionStatus.SUCCESS, f"Job started at {_us_time(now)}", now, end=now
        )
        job.last_status = SessionStatus.QUEUED.value
    ctx.wake_proxies()
    return session


def stop_job(ctx: Context, job_id: str) -> JobSession:
    with ctx.db.write() as s:
        job = _job(s, job_id)
        session = stop_active_in(s, job, ctx.clock.now(), "stopped by user")
        if session is None:
            raise Conflict(f"job '{job.name}' is not running")
    ctx.wake_proxies()
    return session


def stop_active_in(s: Session, job: Job, now: datetime, why: str) -> JobSession | None:
    """Stop the job's active session: a queued one at once, a running one at its proxy's check."""
    session = _active_session(s, job.id)
    if session is None:
        return None
    session.stop_requested = True
    if session.status == SessionStatus.QUEUED.value:
        finish_in(s, session, SessionStatus.STOPPED, f"Job {why} before it started", now)
    return session


def claim_next(ctx: Context, proxy_id: str) -> tuple[JobSession, Job, Organization] | None:
    """Take the oldest queued session for this proxy and mark it Running, atomically."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        row = s.execute(
            select(JobSession, Job, Organization)
            .join(Job, Job.id == JobSession.job_id)
            .join(Organization, Organization.id == Job.organization_id)
            .where(JobSession.status == SessionStatus.QUEUED.value, Job.proxy_id == proxy_id)
            .order_by(JobSession.creation_time)
            .limit(1)
        ).first()
        if row is None:
            return None
        session, job, org = row
        session.status = SessionStatus.RUNNING.value
        session.claimed_by = proxy_id
        job.last_status = SessionStatus.RUNNING.value
        job.last_run = session.creation_time
        add_log_in(
            s,
            session.id,
            SessionStatus.RUNNING,
            f"Processing organization {org.name} on proxy {proxy_id}",
            now,
        )
        return session, job, org


def add_log(ctx: Context, session_id: str, status: SessionStatus, message: str) -> None:
    now = ctx.clock.now()
    with ctx.db.write() as s:
        add_log_in(s, session_id, status, message, now, end=now)


def finish(ctx: Context, session_id: str, status: SessionStatus, message: str) -> JobSession:
    with ctx.db.write() as s:
        session = get_session_in(s, session_id)
        finish_in(s, session, status, message, ctx.clock.now())
        return session


def finish_in(
    s: Session, session: JobSession, status: SessionStatus, message: str, now: datetime
) -> None:
    session.status = status.value
    session.end_time = now
    add_log_in(s, session.id, status, message, now, end=now)
    job = s.get(Job, session.job_id)
    if job is not None:
        job.last_status = status.value
        job.last_run = session.creation_time
        if status in (SessionStatus.SUCCESS, SessionStatus.WARNING):
            job.last_backup = session.creation_time


def add_log_in(
    s: Session,
    session_id: str,
    status: SessionStatus,
    message: str,
    now: datetime,
    end: datetime | None = None,
) -> LogItem:
    usn = (s.scalar(select(func.max(LogItem.usn)).where(LogItem.session_id == session_id)) or 0) + 1
    item = LogItem(
        id=new_id(),
        session_id=session_id,
        usn=usn,
        status=status.value,
        message=message,
        creation_time=now,
        end_time=end,
    )
    s.add(item)
    return item


def list_sessions(
    ctx: Context, job_id: str | None = None, offset: int = 0, limit: int | None = None
) -> list[JobSession]:
    with ctx.db.read() as s:
        query = select(JobSession).order_by(JobSession.creation_time.desc(), JobSession.id)
        if job_id is not None:
            _job(s, job_id)
            query = query.where(JobSession.job_id == job_id)
        return list(s.scalars(query.offset(offset).limit(limit)))


def get_session(ctx: Context, session_id: str) -> JobSession:
    with ctx.db.read() as s:
        return get_session_in(s, session_id)


def get_session_in(s: Session, session_id: str) -> JobSession:
    session = s.get(JobSession, session_id)
    if session is None:
        raise NotFound(f"job session '{session_id}' does not exist")
    return session


def list_log_items(ctx: Context, session_id: str) -> list[LogItem]:
    with ctx.db.read() as s:
        get_session_in(s, session_id)
        return list(
            s.scalars(select(LogItem).where(LogItem.session_id == session_id).order_by(LogItem.usn))
        )


def fail_orphans(ctx: Context, proxy_id: str) -> int:
    """At start-up, sessions this proxy ran when the server died can never finish: fail them."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        orphans = list(
            s.scalars(
                select(JobSession).where(
                    JobSession.status == SessionStatus.RUNNING.value,
                    JobSession.claimed_by == proxy_id,
                )
            )
        )
        for session in orphans:
            finish_in(
                s,
                session,
                SessionStatus.FAILED,
                "The server stopped while this session was running",
                now,
            )
        return len(orphans)


def _active_session(s: Session, job_id: str) -> JobSession | None:
    return s.scalar(
        select(JobSession).where(JobSession.job_id == job_id, JobSession.status.in_(ACTIVE))
    )


def _job(s: Session, job_id: str) -> Job:
    job = s.get(Job, job_id)
    if job is None:
        raise NotFound(f"job '{job_id}' does not exist")
    return job


def _us_time(instant: datetime) -> str:
    """The vendor's log style: ``4/4/2017 12:07:21 AM`` (UTC)."""
    hour = instant.hour % 12 or 12
    suffix = "AM" if instant.hour < 12 else "PM"
    return f"{instant.month}/{instant.day}/{instant.year} {hour}:{instant:%M:%S} {suffix}"
