"""Job runs: sessions from Queued to their end state, their attempts, retries and log.

A session is one run of a job. It is created by a manual start or by the scheduler for one
scheduled instant (unique per job), claimed by a proxy under a lease the proxy keeps renewing,
and retried in place when an attempt fails. A job never has two active sessions: every path that
creates one checks, inside the same write transaction, that none is active.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import ColumnElement, Row, false, func, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import Conflict, NotFound
from keepstone.domain.jobs import BackupType, SessionStatus
from keepstone.domain.policy import SchedulePolicy
from keepstone.domain.retries import next_attempt_at, window_deadline
from keepstone.domain.schedule import next_run, next_window_open, window_allows
from keepstone.services import licensing, metrics, notifications, proxies, task_sessions
from keepstone.services.catalog import get_job_in
from keepstone.services.context import Context, new_id
from keepstone.store import session_hours
from keepstone.store.codecs import policy_from_record
from keepstone.store.paging import page_of
from keepstone.store.tables import (
    CopyJob,
    CopyJobSession,
    Job,
    JobSession,
    LogItem,
    Organization,
    Proxy,
    Repository,
)

if TYPE_CHECKING:
    from keepstone.services.leadership import Fence

ACTIVE = (SessionStatus.QUEUED.value, SessionStatus.RUNNING.value)
# Sessions of copy jobs share the queue (services/copy_jobs.py); a backup job's own are these.
BACKUP_RUNS = ~JobSession.id.in_(select(CopyJobSession.session_id))
# How long a claim holds without a renewal (proxies renew every second or so); tests of
# takeover shorten it through the environment of the servers they start.
LEASE = timedelta(seconds=float(os.environ.get("KEEPSTONE_RUN_LEASE_SECONDS", "30")))
Statistics = dict[str, float | str]  # counters, seconds (with fractions) and the bottleneck
EMPTY_STATISTICS: Statistics = {
    "read_bytes": 0,
    "read_items": 0,
    "transferred_bytes": 0,
    "written_bytes": 0,
    "duration_seconds": 0,
    "bottleneck": "NA",
}


# ---- starting ---------------------------------------------------------------------------------


def start_job(
    ctx: Context, job_id: str, reason: str, *, already_active_ok: bool = False
) -> JobSession | None:
    """A manual start: runs now, whatever the schedule and the backup window say."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        job = get_job_in(s, job_id)
        active = _active_session(s, job.id)
        if active is not None:
            if already_active_ok:
                return None
            raise Conflict(f"job '{job.name}' is already running (session {active.id})")
        session = _new_session(s, job, now, reason, scheduled_for=None)
    ctx.wake_proxies()
    return session


@dataclass(frozen=True, slots=True)
class Dispatch:
    started: int
    skipped_busy: int


def dispatch_due(ctx: Context, fence: Fence | None = None) -> Dispatch:
    """The scheduler's tick: queue a run for every enabled job whose next run has come.

    Runs missed while the server was down collapse into one run now (if the window allows now),
    because the job's next run is recomputed from now, not from the missed slot. ``fence`` (the
    leader's, ``services/leadership.py``) refuses the whole transaction unless this server
    still leads.
    """
    now = ctx.clock.now()
    started = skipped = 0
    with ctx.db.write() as s:
        if fence is not None:
            fence(s)
        due = list(s.scalars(select(Job).where(Job.is_enabled.is_(True), Job.next_run <= now)))
        busy = _jobs_with_active_sessions(s, [job.id for job in due])
        for job in due:
            policy = policy_from_record(job.schedule_policy)
            slot = job.next_run
            assert slot is not None
            if job.id in busy:
                add_log_in(
                    s,
                    busy[job.id],
                    SessionStatus.WARNING,
                    f"Scheduled run at {log_time(slot)} skipped: this run was still active",
                    now,
                    end=now,
                )
                skipped += 1
            elif window_allows(policy, now):
                _new_session(s, job, now, f"Scheduled run for {log_time(slot)}", scheduled_for=slot)
                metrics.observe_scheduler_lag(slot, now)
                started += 1
            job.next_run = next_run(policy, now, ctx.tz)
    if started:
        ctx.wake_proxies()
    return Dispatch(started, skipped)


def earliest_next_run(ctx: Context) -> datetime | None:
    with ctx.db.read() as s:
        return s.scalar(select(func.min(Job.next_run)).where(Job.is_enabled.is_(True)))


def _new_session(
    s: Session, job: Job, now: datetime, reason: str, scheduled_for: datetime | None
) -> JobSession:
    session = new_session_in(s, job.id, now, reason, scheduled_for=scheduled_for)
    job.last_status = SessionStatus.QUEUED.value
    job.last_run = now
    return session


def new_session_in(
    s: Session,
    job_id: str,
    now: datetime,
    reason: str,
    *,
    scheduled_for: datetime | None = None,
    manual: bool | None = None,
) -> JobSession:
    """A queued session of a job (a backup's, or a copy job's run marked by its caller)."""
    session = JobSession(
        id=new_id(),
        job_id=job_id,
        status=SessionStatus.QUEUED.value,
        creation_time=now,
        end_time=None,
        progress=0,
        retry_count=0,
        statistics=dict(EMPTY_STATISTICS),
        details=reason,
        stop_requested=False,
        claimed_by=None,
        scheduled_for=scheduled_for,
        manual=scheduled_for is None if manual is None else manual,
        not_before=None,
        lease_expires_at=None,
        attempt_started_at=None,
    )
    s.add(session)
    add_log_in(
        s, session.id, SessionStatus.SUCCESS, f"Job started at {log_time(now)}", now, end=now, usn=1
    )
    return session


# ---- stopping ---------------------------------------------------------------------------------


def stop_job(ctx: Context, job_id: str) -> JobSession:
    with ctx.db.write() as s:
        job = get_job_in(s, job_id)
        session = stop_active_in(s, job, ctx.clock.now(), "stopped by user")
        if session is None:
            raise Conflict(f"job '{job.name}' is not running")
    ctx.wake_proxies()
    return session


def stop_session(ctx: Context, session_id: str) -> JobSession:
    """Stop one session, which must be the job's active one."""
    with ctx.db.write() as s:
        session = get_session_in(s, session_id)
        if session.status not in ACTIVE:
            raise Conflict(f"job session '{session_id}' is not running")
        if s.get(CopyJobSession, session.id) is not None:
            session.stop_requested = True
            if session.status == SessionStatus.QUEUED.value:
                finish_in(s, session, SessionStatus.STOPPED, "Job stopped by user", ctx.clock.now())
            stopped: JobSession | None = session
        else:
            stopped = stop_active_in(
                s, get_job_in(s, session.job_id), ctx.clock.now(), "stopped by user"
            )
        assert stopped is not None
    ctx.wake_proxies()
    return stopped


def failure_of(ctx: Context, session_id: str) -> str:
    """The message of a session's last failure log item ("" when none)."""
    failed = (SessionStatus.FAILED.value, SessionStatus.STOPPED.value)
    # The newest failure's number first, from the (session, status, usn) index: ordering the
    # session's log by number would walk all of it when nothing failed.
    last = (
        select(func.max(LogItem.usn))
        .where(LogItem.session_id == session_id, LogItem.status.in_(failed))
        .scalar_subquery()
    )
    with ctx.db.read() as s:
        message = s.scalar(
            select(LogItem.message)
            .where(LogItem.session_id == session_id, LogItem.usn == last)
            .where(LogItem.status.in_(failed))
            .limit(1)
        )
    return message or ""


def failures_of(ctx: Context, session_ids: list[str]) -> dict[str, str]:
    """``failure_of`` for several sessions (a page of them) in one query: session id -> the
    message of its last failure log item, for those that have one."""
    if not session_ids:
        return {}
    failed = (SessionStatus.FAILED.value, SessionStatus.STOPPED.value)
    last = (
        select(LogItem.session_id, func.max(LogItem.usn).label("usn"))
        .where(LogItem.session_id.in_(session_ids), LogItem.status.in_(failed))
        .group_by(LogItem.session_id)
        .subquery()
    )
    query = (
        select(LogItem.session_id, LogItem.message)
        .join(last, (LogItem.session_id == last.c.session_id) & (LogItem.usn == last.c.usn))
        .where(LogItem.status.in_(failed))
    )
    with ctx.db.read() as s:
        return {session_id: message for session_id, message in s.execute(query)}


def stop_active_in(s: Session, job: Job, now: datetime, why: str) -> JobSession | None:
    """Stop the job's active session: a queued one at once, a running one at its proxy's check."""
    session = _active_session(s, job.id)
    if session is None:
        return None
    session.stop_requested = True
    if session.status == SessionStatus.QUEUED.value:
        finish_in(s, session, SessionStatus.STOPPED, f"Job {why} before it started", now)
    return session


# ---- proxies: claiming, renewing, ending attempts ---------------------------------------------


@dataclass(frozen=True, slots=True)
class JobScope:
    """What the run backs up, and where to: read at claim time, fixed for the attempt."""

    backup_type: BackupType
    selected_items: list[dict[str, Any]]
    excluded_items: list[dict[str, Any]]
    repository_id: str
    repository_path: str


@dataclass(frozen=True, slots=True)
class CopyScope:
    """A copy job's run: its restore points go from the source repository to the scope's."""

    copy_job_id: str
    source_repository_id: str
    source_repository_path: str


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    session_id: str
    attempt: int  # the session's retry count when claimed: identifies this attempt
    job_id: str
    job_name: str
    organization: Organization
    policy: SchedulePolicy
    manual: bool
    deadline: datetime | None  # the backup window's close, for scheduled runs
    scope: JobScope
    copy: CopyScope | None = None  # set for a copy job's run
    # When this claim was made: with the retry count it names this claim and no other, so a
    # proxy that lost a run and later claims it again cannot act on the new claim with the old.
    claimed_at: datetime | None = None


def claim_next(ctx: Context, proxy_id: str) -> ClaimedRun | None:
    """Take the oldest startable queued session of this proxy's jobs and mark it Running.

    A scheduled run (or its retry) whose window is closed right now is not started: it waits,
    still Queued, for the window's next opening.
    """
    now = ctx.clock.now()
    if not _any_queued(ctx, now):  # every second, nearly always none: no claim transaction
        return None
    with ctx.db.claim() as s:
        waiting: list[str] = []  # passed over: their backup window is closed
        while (row := _next_queued(s, proxy_id, now, waiting)) is not None:
            session, job, org, copy = row
            owner: Job | CopyJob = job if copy is None else copy
            policy = policy_from_record(owner.schedule_policy)
            if not session.manual and not window_allows(policy, now):
                session.not_before = next_window_open(policy, now)
                add_log_in(
                    s,
                    session.id,
                    SessionStatus.WARNING,
                    f"Waiting for the backup window to open at {log_time(session.not_before)}"
                    if session.not_before
                    else "Waiting for the backup window to open",
                    now,
                    end=now,
                )
                waiting.append(session.id)
                continue
            session.status = SessionStatus.RUNNING.value
            session.claimed_by = proxy_id
            proxies.take_run_in(s, proxy_id)
            session.lease_expires_at = now + LEASE
            session.attempt_started_at = now
            session.not_before = None
            owner.last_status = SessionStatus.RUNNING.value
            attempt = "" if session.retry_count == 0 else f" (retry {session.retry_count})"
            add_log_in(
                s,
                session.id,
                SessionStatus.RUNNING,
                f"Processing organization {org.name}{attempt} on proxy {_proxy_name(s, proxy_id)}",
                now,
            )
            deadline = window_deadline(policy, now, manual=session.manual)
            return ClaimedRun(
                session.id,
                session.retry_count,
                job.id,
                job.name,
                org,
                policy,
                session.manual,
                deadline,
                _scope(s, job, owner),
                None if copy is None else _copy_scope(s, job, copy),
                now,
            )
    return None


def _scope(s: Session, job: Job, owner: Job | CopyJob) -> JobScope:
    repo = s.get(Repository, owner.repository_id)
    assert repo is not None  # a repository in use cannot be deleted
    return JobScope(
        BackupType(job.backup_type), job.selected_items, job.excluded_items, repo.id, repo.path
    )


def scope_of_in(s: Session, session: JobSession) -> tuple[Organization, JobScope, CopyScope | None]:
    """What a claimed session's attempt works on: its organization, the scope (the repository
    it writes to), and a copy's source; read again from the catalog, never from the claimer."""
    job = s.get(Job, session.job_id)
    assert job is not None  # deleting a job deletes its sessions
    org = s.get(Organization, job.organization_id)
    assert org is not None  # an organization with jobs cannot be deleted
    marker = s.get(CopyJobSession, session.id)
    copy = None if marker is None else s.get(CopyJob, marker.copy_job_id)
    owner: Job | CopyJob = job if copy is None else copy
    return org, _scope(s, job, owner), None if copy is None else _copy_scope(s, job, copy)


def _any_queued(ctx: Context, now: datetime) -> bool:
    """Whether any session is queued and startable now, whoever may claim it: a read, so an
    idle proxy's poll takes no write lock (a session queued just after is the next poll's, or
    its wake-up's)."""
    startable = (JobSession.not_before.is_(None)) | (JobSession.not_before <= now)
    queued = JobSession.status == SessionStatus.QUEUED.value
    with ctx.db.read() as s:
        return s.scalar(select(JobSession.id).where(queued, startable).limit(1)) is not None


def _next_queued(
    s: Session, proxy_id: str, now: datetime, passed: list[str]
) -> Row[JobSession, Job, Organization, CopyJob | None] | None:
    """The oldest startable queued session of the proxy's jobs (but ``passed``), locked by
    this claim. Several claimers may work at once on PostgreSQL: each locks the one row it takes
    and passes over rows another holds (SKIP LOCKED), so a session is handed to one claimer only
    and the others take the next. SQLite has one writer at a time and omits the clause."""
    query = (
        select(JobSession, Job, Organization, CopyJob)
        .join(Job, Job.id == JobSession.job_id)
        .join(Organization, Organization.id == Job.organization_id)
        .outerjoin(CopyJobSession, CopyJobSession.session_id == JobSession.id)
        .outerjoin(CopyJob, CopyJob.id == CopyJobSession.copy_job_id)
        .where(
            JobSession.status == SessionStatus.QUEUED.value,
            proxies.claimable_by(proxy_id, now),
            (JobSession.not_before.is_(None)) | (JobSession.not_before <= now),
        )
        .order_by(JobSession.creation_time)
        .limit(1)
        .with_for_update(skip_locked=True, of=JobSession)
    )
    if passed:
        query = query.where(JobSession.id.not_in(passed))
    return s.execute(query).first()


def _copy_scope(s: Session, job: Job, copy: CopyJob) -> CopyScope:
    source = s.get(Repository, job.repository_id)
    assert source is not None  # a repository in use cannot be deleted
    return CopyScope(copy.id, source.id, source.path)


def owner_of_in(s: Session, session: JobSession) -> Job | CopyJob | None:
    """Whose run a session is: its copy job's, or else its backup job's."""
    marker = s.get(CopyJobSession, session.id)
    if marker is not None:
        return s.get(CopyJob, marker.copy_job_id)
    return s.get(Job, session.job_id)


class Attempt(Protocol):
    """A claim of a session as a proxy names it: the session, its retry count at claim, and
    the instant of the claim (None: any claim of this attempt)."""

    @property
    def session_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...

    @property
    def claimed_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class AttemptOf:
    session_id: str
    attempt: int
    claimed_at: datetime | None = None


class RunState(enum.Enum):
    CONTINUE = "continue"
    STOP_REQUESTED = "stop requested"
    LOST = "lost"  # another party ended this attempt (lease expired and reaped, job deleted)


def renew_lease(
    ctx: Context,
    run: Attempt,
    proxy_id: str,
    statistics: Statistics | None = None,
    progress: int | None = None,
) -> RunState:
    """The running proxy's heartbeat: extend the lease, publish progress, learn of a stop."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        session = s.get(JobSession, run.session_id)
        if not _still_ours(session, run, proxy_id):
            return RunState.LOST
        assert session is not None
        session.lease_expires_at = now + LEASE
        metrics.LEASE_RENEWALS.labels(proxy_id).inc()
        if statistics is not None:
            session.statistics = statistics
        if progress is not None:
            session.progress = progress
        return RunState.STOP_REQUESTED if session.stop_requested else RunState.CONTINUE


def end_attempt(
    ctx: Context,
    run: Attempt,
    proxy_id: str,
    status: SessionStatus,
    message: str,
    statistics: Statistics,
    progress: int,
    *,
    retryable: bool = True,
) -> JobSession | None:
    """Record how an attempt ended; a failed one is retried in place when the policy allows."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        session = s.get(JobSession, run.session_id)
        if not _still_ours(session, run, proxy_id):
            return None  # reaped or deleted meanwhile: someone else has recorded its end
        assert session is not None
        proxies.release_run_in(s, proxy_id)
        session.statistics, session.progress = statistics, progress
        if status is SessionStatus.FAILED and retryable:
            owner = owner_of_in(s, session)
            assert owner is not None  # deleting a job deletes its sessions
            fail_attempt_in(s, session, policy_from_record(owner.schedule_policy), message, now)
        else:
            finish_in(s, session, status, message, now)
    return session


def fail_attempt_in(
    s: Session, session: JobSession, policy: SchedulePolicy, message: str, now: datetime
) -> None:
    retry_at = (
        None
        if session.stop_requested
        else next_attempt_at(policy, session.retry_count, now, manual=session.manual)
    )
    if retry_at is None:
        finish_in(s, session, SessionStatus.FAILED, message, now)
        return
    task_sessions.close_running_in(s, session.id, SessionStatus.FAILED, message, now)
    if notifications.mail_on_every_attempt_in(s):  # else only the last attempt is mailed
        notifications.enqueue_in(s, session, SessionStatus.FAILED.value, now)
    session.retry_count += 1
    session.status = SessionStatus.QUEUED.value
    session.claimed_by = None
    session.lease_expires_at = None
    session.not_before = retry_at
    add_log_in(
        s,
        session.id,
        SessionStatus.WARNING,
        f"{message}. Retry {session.retry_count} of {policy.retry_number} at {log_time(retry_at)}",
        now,
        end=now,
    )
    job = owner_of_in(s, session)
    if job is not None:
        job.last_status = SessionStatus.QUEUED.value


TAKEN_OVER = "Proxy {proxy} stopped renewing; the run continues on another proxy"


def reap_lost_runs(ctx: Context, fence: Fence | None = None) -> int:
    """Running sessions whose proxy stopped renewing its lease are handed back to the queue in
    the same session: not a failed attempt, the next eligible proxy claims the run and resumes
    it (what the first proxy finished is in the repository's index, so it is not stored again);
    the first proxy, if it comes back, finds its claim gone and commits nothing. Only while
    ``fence``, the leader's, lets this server write."""
    now = ctx.clock.now()
    lost = (JobSession.status == SessionStatus.RUNNING.value) & (JobSession.lease_expires_at < now)
    with ctx.db.read() as s:  # every second, nearly always nothing: no write lock for that
        if s.scalar(select(JobSession.id).where(lost).limit(1)) is None:
            return 0
    with ctx.db.write() as s:
        if fence is not None:
            fence(s)
        sessions = list(s.scalars(select(JobSession).where(lost)))
        for session in sessions:
            _hand_back_in(s, session, now)
    return len(sessions)


def _hand_back_in(s: Session, session: JobSession, now: datetime) -> None:
    message = TAKEN_OVER.format(proxy=_proxy_name(s, session.claimed_by))
    proxies.release_run_in(s, session.claimed_by)
    add_log_in(s, session.id, SessionStatus.WARNING, message, now, end=now)
    session.status = SessionStatus.QUEUED.value
    session.claimed_by = None
    session.lease_expires_at = None
    session.not_before = None
    owner = owner_of_in(s, session)
    if owner is not None:
        owner.last_status = SessionStatus.QUEUED.value


def abandon_runs_of(ctx: Context, proxy_id: str) -> int:
    """At a proxy's start: what it was running before it restarted can never finish."""
    return _fail_running(
        ctx, JobSession.claimed_by == proxy_id, "The proxy restarted while this run was in progress"
    )


def _fail_running(ctx: Context, which: Any, message: str, fence: Fence | None = None) -> int:
    """Fail the current attempt of the running sessions ``which`` selects (retries apply)."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        if fence is not None:
            fence(s)
        sessions = list(
            s.scalars(
                select(JobSession).where(JobSession.status == SessionStatus.RUNNING.value, which)
            )
        )
        for session in sessions:
            job = owner_of_in(s, session)
            assert job is not None  # deleting a job deletes its sessions
            proxies.release_run_in(s, session.claimed_by)
            fail_attempt_in(
                s,
                session,
                policy_from_record(job.schedule_policy),
                message.format(proxy=_proxy_name(s, session.claimed_by)),
                now,
            )
    return len(sessions)


def _still_ours(session: JobSession | None, run: Attempt, proxy_id: str) -> bool:
    return (
        session is not None
        and session.status == SessionStatus.RUNNING.value
        and session.claimed_by == proxy_id
        and session.retry_count == run.attempt
        and run.claimed_at in (None, session.attempt_started_at)
    )


# ---- ending and logging -----------------------------------------------------------------------


def finish_in(
    s: Session, session: JobSession, status: SessionStatus, message: str, now: datetime
) -> None:
    session.status = status.value
    session.end_time = now
    session.lease_expires_at = None
    session.not_before = None
    task_sessions.close_running_in(s, session.id, status, message, now)
    add_log_in(s, session.id, status, message, now, end=now)
    notifications.enqueue_in(s, session, status.value, now)  # sent later, never by the run
    job = owner_of_in(s, session)
    if job is not None:
        job.last_status = status.value
        if status in (SessionStatus.SUCCESS, SessionStatus.WARNING):
            job.last_backup = session.creation_time


def add_log(
    ctx: Context,
    session_id: str,
    status: SessionStatus,
    message: str,
    subject: tuple[str, str] | None = None,
) -> None:
    """Append a log item; ``subject`` (id, name) marks it as the outcome for one user."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        add_log_in(s, session_id, status, message, now, end=now, subject=subject)


def finish_task(
    ctx: Context,
    task_id: str,
    status: SessionStatus,
    tally: task_sessions.UserTally,
    *,
    reason: str,
    outcome: str,
) -> None:
    """A run is done with a user: its task session ends (``task_sessions.finish``) and, unless
    ``outcome`` is empty, the success log item about that user (which licenses it) is
    appended, in one transaction: a run's catalog work per user is two transactions, not
    three."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        task = task_sessions.finish_in(s, task_id, status, tally, reason, now)
        if task is not None and outcome:
            subject = (task.object_id, task.name)
            add_log_in(s, task.session_id, SessionStatus.SUCCESS, outcome, now, now, None, subject)


def add_log_in(
    s: Session,
    session_id: str,
    status: SessionStatus,
    message: str,
    now: datetime,
    end: datetime | None = None,
    usn: int | None = None,
    subject: tuple[str, str] | None = None,
) -> LogItem:
    """Append a log item; ``usn`` (its sequence number) is looked up unless the caller knows it.

    A successful item about a user (``subject``: id, name) is the run finishing that user: the
    user is licensed from then on (``services.licensing``). Each append costs the same few
    statements and index lookups however many items the session has.
    """
    if usn is None:
        s.flush()  # earlier items of this transaction count for the sequence number
        last = s.scalar(select(func.max(LogItem.usn)).where(LogItem.session_id == session_id))
        usn = (last or 0) + 1
    item = LogItem(
        id=new_id(),
        session_id=session_id,
        usn=usn,
        status=status.value,
        message=message,
        creation_time=now,
        end_time=end,
    )
    if subject is not None:
        item.subject_id, item.subject_name = subject
        if status is SessionStatus.SUCCESS:
            licensing.backed_up_in(s, session_id, subject, now)
    s.add(item)
    return item


# ---- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions a listing shows; ``created_until`` pins a listed set for paging."""

    job_id: str | None = None
    ended_after: datetime | None = None
    ended_before: datetime | None = None
    status: SessionStatus | None = None
    created_until: datetime | None = None
    job_type: str | None = None  # Backup or Copy (a copy job's runs); None: both
    # Any further condition on the sessions (an Enterprise Manager query's filter); an SQL
    # expression has no equality of its own, so it takes no part in comparing filters.
    condition: ColumnElement[bool] | None = field(default=None, compare=False)
    # Only the sessions of these (status, retried) pairs (None: any).
    kinds: frozenset[tuple[str, bool]] | None = None

    @property
    def tallied(self) -> bool:
        """Whether it keeps every session of its ``kinds`` (created until its cutoff): such a
        set is counted and paged by the hour of creation (store/session_hours.py)."""
        alike = SessionFilter(created_until=self.created_until, kinds=self.kinds)
        return self.condition is None and self == alike

    def apply(self, query: Any) -> Any:
        kind = (self.job_type or "").lower()
        conditions = [
            _of_job(self.job_id) if self.job_id else None,
            JobSession.end_time >= self.ended_after if self.ended_after else None,
            JobSession.end_time <= self.ended_before if self.ended_before else None,
            JobSession.status == self.status.value if self.status else None,
            JobSession.creation_time <= self.created_until if self.created_until else None,
            BACKUP_RUNS if kind == "backup" else ~BACKUP_RUNS if kind == "copy" else None,
            false() if kind not in ("", "backup", "copy") else None,
            self.condition,
            None if self.kinds is None else session_hours.session_of_kinds(self.kinds),
        ]
        return query.where(*(c for c in conditions if c is not None))


def _of_job(job_id: str) -> Any:
    """The sessions of a backup job (its own runs) or of a copy job: a UNION of two indexed
    lookups (an ``OR`` of them makes PostgreSQL scan every session)."""
    own = select(JobSession.id).where(JobSession.job_id == job_id, BACKUP_RUNS)
    of_copy = select(CopyJobSession.session_id).where(CopyJobSession.copy_job_id == job_id)
    return JobSession.id.in_(own.union_all(of_copy))


def list_sessions(
    ctx: Context,
    job_id: str | None = None,
    offset: int = 0,
    limit: int | None = None,
    where: SessionFilter | None = None,
    *,
    oldest_first: bool = False,
    total: int | None = None,
    after: tuple[datetime, str] | None = None,
) -> list[JobSession]:
    """Newest first (or oldest first); ``where`` filters (``job_id`` is a shorthand for its job
    filter); ``after`` (a session's :func:`session_key`) continues after that session."""
    where = where or SessionFilter(job_id=job_id)
    with ctx.db.read() as s:
        if where.job_id is not None and s.get(CopyJob, where.job_id) is None:
            get_job_in(s, where.job_id)
        if limit is not None and after is None and where.tallied:
            # A window of every session (of some kinds), found by the hour
            # (store/session_hours.py).
            return session_hours.page(
                s,
                offset,
                limit,
                descending=not oldest_first,
                cutoff=where.created_until,
                total=total,
                kinds=where.kinds,
            )
        if after is not None and not oldest_first:
            # Newest first, a session of the pinned set is older than its cutoff: the cutoff
            # adds nothing, and kept, it bounds the index scan instead of ``after`` (SQLite
            # then compares every session between the cutoff and ``after``).
            where = replace(where, created_until=None)
        return page_of(
            s,
            JobSession,
            _without_idle_cutoff(s, where).apply,
            (JobSession.creation_time, JobSession.id),
            descending=not oldest_first,
            offset=offset,
            limit=limit,
            total=total,
            after=after,
        )


def session_key(session: JobSession) -> tuple[datetime, str]:
    """Where a session stands in the listings' order (a keyset page continues after it)."""
    return session.creation_time, session.id


def count_sessions(ctx: Context, where: SessionFilter) -> int:
    with ctx.db.read() as s:
        if where.tallied:
            return session_hours.count(s, where.created_until, where.kinds)
        query = _without_idle_cutoff(s, where).apply(select(func.count()).select_from(JobSession))
        return s.scalar(query) or 0


def _without_idle_cutoff(s: Session, where: SessionFilter) -> SessionFilter:
    """``where`` less its creation cutoff when no session is newer (one index lookup): the
    cutoff then keeps every session, and without it a count reads the smallest index and a
    deep page skips index entries without comparing a million instants (4-5x faster)."""
    if where.created_until is None:
        return where
    newest = s.scalar(select(func.max(JobSession.creation_time)))
    if newest is None or newest <= where.created_until:
        return replace(where, created_until=None)
    return where


def get_session(ctx: Context, session_id: str) -> JobSession:
    with ctx.db.read() as s:
        return get_session_in(s, session_id)


def get_session_in(s: Session, session_id: str) -> JobSession:
    session = s.get(JobSession, session_id)
    if session is None:
        raise NotFound(f"job session '{session_id}' does not exist")
    return session


@dataclass(frozen=True)
class LogFilter:
    """Which log items of a session a listing shows, in which order; ``until_usn`` pins a
    listed set for paging (items appended later are not in it)."""

    session_id: str
    statuses: tuple[str, ...] | None = None  # None: every status
    ascending: bool = True
    until_usn: int | None = None

    def apply(self, query: Any) -> Any:
        query = query.where(LogItem.session_id == self.session_id)
        if self.statuses is not None:
            query = query.where(LogItem.status.in_(self.statuses))
        if self.until_usn is not None:
            query = query.where(LogItem.usn <= self.until_usn)
        return query


def list_log_items(
    ctx: Context,
    session_id: str,
    offset: int = 0,
    limit: int | None = None,
    *,
    total: int | None = None,
    after: tuple[int, str] | None = None,
    **kwargs: Any,
) -> list[LogItem]:
    """A session's log items (by default all, oldest first); ``kwargs`` are ``LogFilter``'s;
    ``after`` (an item's :func:`log_key`) continues after that item."""
    where = LogFilter(session_id, **kwargs)
    with ctx.db.read() as s:
        get_session_in(s, session_id)
        return page_of(
            s,
            LogItem,
            where.apply,
            (LogItem.usn, LogItem.id),
            descending=not where.ascending,
            offset=offset,
            limit=limit,
            total=total,
            after=after,
        )


def log_key(item: LogItem) -> tuple[int, str]:
    """Where a log item stands in its session's order (a keyset page continues after it)."""
    return item.usn, item.id


def count_log_items(ctx: Context, where: LogFilter) -> int:
    with ctx.db.read() as s:
        return s.scalar(where.apply(select(func.count()).select_from(LogItem))) or 0


def last_usn(ctx: Context, session_id: str) -> int:
    """The sequence number of the session's newest log item (0: none): a listed set's pin."""
    with ctx.db.read() as s:
        get_session_in(s, session_id)
        found = s.scalar(select(func.max(LogItem.usn)).where(LogItem.session_id == session_id))
        return found or 0


def get_log_item(ctx: Context, session_id: str, item_id: str) -> LogItem:
    with ctx.db.read() as s:
        item = s.get(LogItem, item_id)
        if item is None or item.session_id != session_id:
            raise NotFound(f"log item '{item_id}' of job session '{session_id}' does not exist")
        return item


def _active_session(s: Session, job_id: str) -> JobSession | None:
    return s.scalar(
        select(JobSession).where(
            JobSession.job_id == job_id, JobSession.status.in_(ACTIVE), BACKUP_RUNS
        )
    )


def _jobs_with_active_sessions(s: Session, job_ids: list[str]) -> dict[str, str]:
    """job id -> its active session's id, for the given jobs."""
    if not job_ids:
        return {}
    rows = s.execute(
        select(JobSession.job_id, JobSession.id).where(
            JobSession.job_id.in_(job_ids), JobSession.status.in_(ACTIVE), BACKUP_RUNS
        )
    )
    return {job_id: session_id for job_id, session_id in rows}


def _proxy_name(s: Session, proxy_id: str | None) -> str:
    proxy = s.get(Proxy, proxy_id) if proxy_id else None
    return proxy.host_name if proxy else str(proxy_id)


def log_time(instant: datetime) -> str:
    """The vendor's log style: ``4/4/2017 12:07:21 AM`` (UTC)."""
    hour = instant.hour % 12 or 12
    suffix = "AM" if instant.hour < 12 else "PM"
    return f"{instant.month}/{instant.day}/{instant.year} {hour}:{instant:%M:%S} {suffix}"
