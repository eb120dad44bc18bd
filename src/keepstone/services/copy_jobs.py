"""Backup copy jobs: a backup job's restore points copied to a second repository (3-2-1).

A copy job belongs to one backup job (the vendor allows one per backup job) and names the
target repository; it has a schedule of its own (daily, periodic, or ``Immediate``: as soon as
the backup job has a restore point the copy lacks). Its runs are job sessions like a backup's,
marked by a ``CopyJobSession`` row: the same queue, claims, leases, retries and log, claimed by
the backup job's proxy. What a run does is ``proxy/copy.py``; the engine's ``copy`` module
does the copying.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import Conflict, InvalidInput, NotFound
from keepstone.domain.jobs import ScheduleEdit, SessionStatus
from keepstone.domain.policy import SchedulePolicy, ScheduleType
from keepstone.domain.schedule import next_run, window_allows
from keepstone.services import runs
from keepstone.services.catalog import get_job_in, get_repository_in
from keepstone.services.context import Context, new_id
from keepstone.services.jobs import check_version
from keepstone.store.codecs import policy_from_record, policy_to_record
from keepstone.store.tables import CopyJob, CopyJobSession, Job, JobSession, RestorePoint

if TYPE_CHECKING:
    from keepstone.services.leadership import Fence


@dataclass(frozen=True, slots=True)
class CopyJobEdit:
    """A create or edit; ``None`` leaves a property as it is. ``immediate`` is the vendor's
    ``Immediate`` schedule type (``schedule`` then carries only the copy window)."""

    backup_job_id: str | None = None
    repository_id: str | None = None
    organization_id: str | None = None
    immediate: bool | None = None
    schedule: ScheduleEdit | None = None
    is_enabled: bool | None = None


# ---- the catalog of copy jobs -------------------------------------------------------------------


def create_copy_job(ctx: Context, spec: CopyJobEdit) -> CopyJob:
    if spec.backup_job_id is None:
        raise InvalidInput("backupJobId is required", "backupJobId")
    if spec.repository_id is None:
        raise InvalidInput("repositoryId is required", "repositoryId")
    with ctx.db.write() as s:
        job = _backup_job_in(s, spec.backup_job_id)
        if s.scalar(select(CopyJob).where(CopyJob.backup_job_id == job.id)) is not None:
            raise Conflict(f"backup job '{job.name}' already has a copy job")
        copy = CopyJob(
            id=new_id(),
            backup_job_id=job.id,
            repository_id="",
            name=f"{job.name} copy",
            schedule_policy=policy_to_record(SchedulePolicy(type=ScheduleType.MANUAL_ONLY)),
            immediate=True,
            is_enabled=True,
            last_run=None,
            last_backup=None,
            last_status=None,
            next_run=None,
            version=1,
        )
        _apply(s, copy, job, spec, ctx)
        s.add(copy)
    return copy


def edit_copy_job(
    ctx: Context, copy_id: str, edit: CopyJobEdit, if_match: int | None = None
) -> CopyJob:
    with ctx.db.write() as s:
        copy = get_copy_job_in(s, copy_id)
        check_version(f"copy job '{copy.name}'", copy.version, if_match)
        if edit.backup_job_id not in (None, copy.backup_job_id):
            raise InvalidInput("a copy job stays with its backup job", "backupJobId")
        before = _values(copy)
        _apply(s, copy, _backup_job_in(s, copy.backup_job_id), edit, ctx)
        if _values(copy) != before:  # an edit that changes nothing keeps the version (ETag)
            copy.version += 1
    return copy


_COPY_COLUMNS = tuple(column.key for column in CopyJob.__table__.columns)


def _values(copy: CopyJob) -> tuple[Any, ...]:
    return tuple(getattr(copy, name) for name in _COPY_COLUMNS)


def delete_copy_job(ctx: Context, copy_id: str) -> None:
    """The copy job and its sessions go; the copies it made stay in the target repository."""
    with ctx.db.write() as s:
        copy = get_copy_job_in(s, copy_id)
        # One statement however many runs it had (their log items and tasks cascade), none of
        # them loaded.
        of_copy = select(CopyJobSession.session_id).where(CopyJobSession.copy_job_id == copy.id)
        s.execute(
            delete(JobSession)
            .where(JobSession.id.in_(of_copy))
            .execution_options(synchronize_session=False)
        )
        s.delete(copy)


def list_copy_jobs(
    ctx: Context, repository_id: str | None = None, organization_id: str | None = None
) -> list[CopyJob]:
    with ctx.db.read() as s:
        query = select(CopyJob).join(Job, Job.id == CopyJob.backup_job_id).order_by(CopyJob.name)
        if repository_id is not None:
            query = query.where(CopyJob.repository_id == repository_id)
        if organization_id is not None:
            query = query.where(Job.organization_id == organization_id)
        return list(s.scalars(query))


def get_copy_job(ctx: Context, copy_id: str) -> CopyJob:
    with ctx.db.read() as s:
        return get_copy_job_in(s, copy_id)


def copy_job_of(ctx: Context, job_id: str) -> CopyJob:
    """The copy job of a backup job (404 when it has none)."""
    with ctx.db.read() as s:
        job = get_job_in(s, job_id)
        copy = s.scalar(select(CopyJob).where(CopyJob.backup_job_id == job.id))
    if copy is None:
        raise NotFound(f"backup job '{job.name}' has no copy job")
    return copy


def organization_of(ctx: Context, copy: CopyJob) -> str:
    with ctx.db.read() as s:
        return get_job_in(s, copy.backup_job_id).organization_id


def get_copy_job_in(s: Session, copy_id: str) -> CopyJob:
    copy = s.get(CopyJob, copy_id)
    if copy is None:
        raise NotFound(f"copy job '{copy_id}' does not exist")
    return copy


def schedule_of(copy: CopyJob) -> SchedulePolicy:
    return policy_from_record(copy.schedule_policy)


def _backup_job_in(s: Session, job_id: str) -> Job:
    job = s.get(Job, job_id)
    if job is None:
        raise InvalidInput(f"backup job '{job_id}' does not exist", "backupJobId")
    return job


def _apply(s: Session, copy: CopyJob, job: Job, edit: CopyJobEdit, ctx: Context) -> None:
    """Validate every property of ``edit``, then change ``copy`` in place."""
    if edit.organization_id not in (None, job.organization_id):
        raise InvalidInput(
            f"backup job '{job.name}' belongs to another organization", "organizationId"
        )
    if edit.repository_id is not None:
        target = get_repository_in(s, edit.repository_id, prop="repositoryId")
        if target.id == job.repository_id:
            raise InvalidInput(
                "a copy must go to another repository than the backup job's", "repositoryId"
            )
        copy.repository_id = target.id
    if edit.schedule is not None:
        policy = edit.schedule.apply(schedule_of(copy))
        copy.schedule_policy = policy_to_record(policy)
    if edit.immediate is not None:
        copy.immediate = edit.immediate
    if copy.immediate:  # the window still applies; the slots are the source's restore points
        copy.schedule_policy = {**copy.schedule_policy, "type": ScheduleType.MANUAL_ONLY.value}
    if edit.is_enabled is not None:
        copy.is_enabled = edit.is_enabled
    copy.next_run = _next_run(copy, ctx)


def _next_run(copy: CopyJob, ctx: Context) -> datetime | None:
    if not copy.is_enabled or copy.immediate:
        return None
    return next_run(schedule_of(copy), ctx.clock.now(), ctx.tz)


# ---- runs ---------------------------------------------------------------------------------------


def start_copy_job(ctx: Context, copy_id: str, reason: str = "Started by user") -> JobSession:
    """A manual start: runs now, whatever the schedule says."""
    with ctx.db.write() as s:
        copy = get_copy_job_in(s, copy_id)
        active = active_session_in(s, copy.id)
        if active is not None:
            raise Conflict(f"copy job '{copy.name}' is already running (session {active.id})")
        session = _new_session(s, copy, ctx.clock.now(), reason, None)
    ctx.wake_proxies()
    return session


def stop_copy_job(ctx: Context, copy_id: str) -> JobSession:
    with ctx.db.write() as s:
        copy = get_copy_job_in(s, copy_id)
        session = stop_active_in(s, copy, ctx.clock.now(), "stopped by user")
    ctx.wake_proxies()
    return session


def stop_active_in(s: Session, copy: CopyJob, now: datetime, why: str) -> JobSession:
    session = active_session_in(s, copy.id)
    if session is None:
        raise Conflict(f"copy job '{copy.name}' is not running")
    session.stop_requested = True
    if session.status == SessionStatus.QUEUED.value:
        runs.finish_in(s, session, SessionStatus.STOPPED, f"Job {why} before it started", now)
    return session


def dispatch_due(ctx: Context, fence: Fence | None = None) -> int:
    """The scheduler's tick for copy jobs: scheduled ones whose slot has come, and immediate
    ones whose backup job made a restore point since their last run (only while ``fence``, the
    leader's, lets this server write)."""
    now = ctx.clock.now()
    started = 0
    with ctx.db.write() as s:
        if fence is not None:
            fence(s)
        for copy in _due(s, now):
            policy = schedule_of(copy)
            slot = copy.next_run
            if active_session_in(s, copy.id) is None and window_allows(policy, now):
                why = f"Scheduled run for {runs.log_time(slot)}" if slot else "New restore point"
                _new_session(s, copy, now, why, slot)
                started += 1
            copy.next_run = _next_run(copy, ctx)
    if started:
        ctx.wake_proxies()
    return started


def _due(s: Session, now: datetime) -> list[CopyJob]:
    enabled = select(CopyJob).join(Job, Job.id == CopyJob.backup_job_id)
    enabled = enabled.where(CopyJob.is_enabled.is_(True))
    scheduled = enabled.where(CopyJob.immediate.is_(False), CopyJob.next_run <= now)
    # A restore point's time is its commit: one committed after the copy's last start is new
    # to it, even from a backup that was already running then.
    newer_point = exists().where(
        RestorePoint.job_id == CopyJob.backup_job_id,
        RestorePoint.repository_id == Job.repository_id,
        CopyJob.last_run.is_(None) | (RestorePoint.backup_time > CopyJob.last_run),
    )
    fresh = enabled.where(CopyJob.immediate.is_(True), newer_point)
    return [*s.scalars(scheduled), *s.scalars(fresh)]


def earliest_next_run(ctx: Context) -> datetime | None:
    with ctx.db.read() as s:
        return s.scalar(select(func.min(CopyJob.next_run)).where(CopyJob.is_enabled.is_(True)))


def active_session_in(s: Session, copy_id: str) -> JobSession | None:
    return s.scalar(
        select(JobSession)
        .join(CopyJobSession, CopyJobSession.session_id == JobSession.id)
        .where(CopyJobSession.copy_job_id == copy_id, JobSession.status.in_(runs.ACTIVE))
    )


def _new_session(
    s: Session, copy: CopyJob, now: datetime, reason: str, slot: datetime | None
) -> JobSession:
    job = s.get(Job, copy.backup_job_id)
    assert job is not None  # deleting the backup job deletes its copy job
    session = runs.new_session_in(s, job.id, now, reason, manual=slot is None)
    s.flush()  # the session row first: the marker refers to it
    s.add(CopyJobSession(session_id=session.id, copy_job_id=copy.id, scheduled_for=slot))
    copy.last_status = SessionStatus.QUEUED.value
    copy.last_run = now
    return session


def copy_jobs_of_sessions(ctx: Context, session_ids: list[str]) -> dict[str, CopyJob]:
    """Session id -> its copy job, for those of ``session_ids`` that are copy runs (one query)."""
    if not session_ids:
        return {}
    with ctx.db.read() as s:
        rows = s.execute(
            select(CopyJobSession.session_id, CopyJob)
            .join(CopyJob, CopyJob.id == CopyJobSession.copy_job_id)
            .where(CopyJobSession.session_id.in_(session_ids))
        )
        return {session_id: copy for session_id, copy in rows}
