"""Summary figures for dashboards (the Enterprise Manager summary reports)."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import structlog
from sqlalchemy import case, func, select

from keepstone.domain.errors import InvalidInput
from keepstone.domain.jobs import SessionStatus
from keepstone.services import catalog, object_storage
from keepstone.services.context import Context
from keepstone.store.tables import (
    Job,
    JobSession,
    ObjectStorage,
    Proxy,
    Repository,
    RestorePoint,
    TaskSession,
)

log = structlog.get_logger(__name__)

GiB = 1024**3
ACTIVE = (SessionStatus.QUEUED.value, SessionStatus.RUNNING.value)


@dataclass(frozen=True, slots=True)
class Overview:
    proxies: int
    repositories: int
    running_jobs: int
    scheduled_jobs: int
    # How many jobs' latest runs ended in each status (``SessionStatus`` values; the vendor
    # counts VMs, Keepstone's protected unit is the job). A dialect names them in its own words.
    latest: dict[str, int]


def overview(ctx: Context) -> Overview:
    with ctx.db.read() as s:
        counted = s.execute(select(Job.last_status, func.count()).group_by(Job.last_status))
        latest = {status: count for status, count in counted if status is not None}
        return Overview(
            proxies=s.scalar(select(func.count()).select_from(Proxy)) or 0,
            repositories=s.scalar(select(func.count()).select_from(Repository)) or 0,
            running_jobs=_running(ctx),
            scheduled_jobs=_scheduled(ctx),
            latest=latest,
        )


@dataclass(frozen=True, slots=True)
class JobStatistics:
    running_jobs: int
    scheduled_jobs: int
    runs: dict[str, int]  # how many runs are in each status (``SessionStatus`` values)
    longest_seconds: int
    longest_job: str

    @property
    def total_runs(self) -> int:
        return sum(self.runs.values())


def job_statistics(ctx: Context) -> JobStatistics:
    """Two aggregate queries: the catalog counts and finds the longest run, so the report
    transfers a handful of rows however many runs there were."""
    with ctx.db.read() as s:
        counts = dict(
            s.execute(select(JobSession.status, func.count()).group_by(JobSession.status)).all()
        )
        duration = _seconds_between(ctx, JobSession.creation_time, JobSession.end_time)
        slowest = s.execute(
            select(JobSession.creation_time, JobSession.end_time, Job.name)
            .join(Job, Job.id == JobSession.job_id)
            .where(JobSession.end_time.is_not(None))
            .order_by(duration.desc(), Job.name.desc())
            .limit(1)
        ).first()
    longest = (0.0, "")
    if slowest is not None and slowest.end_time is not None:
        longest = ((slowest.end_time - slowest.creation_time).total_seconds(), slowest.name)
    return JobStatistics(
        running_jobs=_running(ctx),
        scheduled_jobs=_scheduled(ctx),
        runs=counts,
        longest_seconds=int(longest[0]),
        longest_job=longest[1],
    )


def _seconds_between(ctx: Context, start: Any, end: Any) -> Any:
    """``end - start`` in seconds, as the catalog's dialect computes it (for ordering)."""
    if ctx.db.dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400


@dataclass(frozen=True, slots=True)
class RepositoryUse:
    name: str
    capacity: int
    free: int
    backup_size: int  # bytes the repository's files take on disk


def repository_use(ctx: Context) -> list[RepositoryUse]:
    in_buckets = object_storage.storages_by_repository(ctx)
    return [_use(ctx, row, in_buckets.get(row.id)) for row in catalog.list_repositories(ctx)]


def _use(ctx: Context, row: Repository, storage: ObjectStorage | None) -> RepositoryUse:
    space = catalog.disk_space(row.path)
    if storage is None:
        return RepositoryUse(row.name, space.capacity, space.free, bytes_in_directory(row.path))
    used = used_in_bucket(ctx, storage)
    if storage.size_limit_gb is None:  # a bucket has no capacity: the cache path's disk stands in
        return RepositoryUse(row.name, space.capacity, space.free, used)
    limit = storage.size_limit_gb * GiB  # the object storage's size limit is the capacity
    return RepositoryUse(row.name, limit, max(0, limit - used), used)


def bytes_in_directory(path: str) -> int:
    """What the regular files under ``path`` take, read without following a link; a file that
    disappears meanwhile (a prune, a pack being written) does not count, nor does a directory
    that cannot be read."""
    total = 0
    for top, _directories, files in os.walk(path):
        for name in files:
            try:
                status = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if stat.S_ISREG(status.st_mode):
                total += status.st_size
    return total


def used_in_bucket(ctx: Context, storage: ObjectStorage) -> int:
    """The objects' sizes from the bucket's listing: the cache path holds none of them. A bucket
    that cannot be listed is a warning and a 0 in the report, not a failed report."""
    try:
        return object_storage.used_bytes(ctx, storage)
    except object_storage.unreachable(InvalidInput) as e:
        log.warning("reports.bucket_unlisted", storage=storage.name, error=str(e))
        return 0


def _running(ctx: Context) -> int:
    with ctx.db.read() as s:
        return (
            s.scalar(
                select(func.count(func.distinct(JobSession.job_id))).where(
                    JobSession.status.in_(ACTIVE)
                )
            )
            or 0
        )


def _scheduled(ctx: Context) -> int:
    with ctx.db.read() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.is_enabled.is_(True), Job.next_run.is_not(None))
            )
            or 0
        )


# ---- protected objects: the vendor's "VMs" are Keepstone's users (mailbox and OneDrive owners) --

BACKED_UP = (SessionStatus.SUCCESS.value, SessionStatus.WARNING.value)


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What the protection reports read of one task session (one user of one run)."""

    object_id: str
    status: str  # the task's
    session_id: str
    session_status: str  # its job session's: only a run that ended well left a restore point
    creation_time: datetime
    end_time: datetime | None
    total_bytes: int
    written_bytes: int

    @property
    def backed_up(self) -> bool:
        """The user's items reached a restore point in this run."""
        return self.status in BACKED_UP and self.session_status in BACKED_UP


@dataclass(frozen=True, slots=True)
class PointFacts:
    """A restore point: its job, time and the job session that wrote it."""

    job_id: str | None
    backup_time: datetime
    session_id: str | None


@dataclass(frozen=True, slots=True)
class VmsOverview:
    protected: int  # users some run processed
    backed_up: int  # users with their items in a restore point
    restore_points: int
    full_points_size: int  # bytes the first restore point of each job added to its repository
    incremental_points_size: int  # bytes every later restore point added
    source_size: int  # the backed-up users' data, as of each one's latest backup
    success_percents: int  # of ended tasks, those that backed their user up


def vms_overview(tasks: Sequence[TaskFacts], points: Sequence[PointFacts]) -> VmsOverview:
    """The vendor's VM overview for users. Pure: the catalog's facts in, the figures out."""
    backed = [t for t in tasks if t.backed_up]
    latest: dict[str, TaskFacts] = {}
    for task in sorted(backed, key=lambda t: t.creation_time):
        latest[task.object_id] = task
    written: dict[str, int] = {}
    for task in backed:
        written[task.session_id] = written.get(task.session_id, 0) + task.written_bytes
    first_of_job: dict[str | None, PointFacts] = {}
    for point in sorted(points, key=lambda p: p.backup_time):
        first_of_job.setdefault(point.job_id, point)
    full = {p.session_id for p in first_of_job.values()}
    ended = [t for t in tasks if t.status != SessionStatus.RUNNING.value]
    return VmsOverview(
        protected=len({t.object_id for t in tasks}),
        backed_up=len(latest),
        restore_points=len(points),
        full_points_size=sum(
            written.get(p.session_id or "", 0) for p in points if p.session_id in full
        ),
        incremental_points_size=sum(
            written.get(p.session_id or "", 0) for p in points if p.session_id not in full
        ),
        source_size=sum(t.total_bytes for t in latest.values()),
        success_percents=(100 * sum(t.backed_up for t in ended)) // len(ended) if ended else 0,
    )


def vms_overview_of(ctx: Context) -> VmsOverview:
    """``vms_overview`` of every task and restore point, aggregated in the catalog: two
    statements of one row each, whatever the history's length (the pure function is its
    specification; tests hold them equal). A user's latest task is the newest by creation time
    (ties broken by id)."""
    task, run = TaskSession, JobSession
    tasks = select(task).join(run, run.id == task.session_id).subquery()
    backed = task.status.in_(BACKED_UP) & run.status.in_(BACKED_UP)
    newest = func.row_number().over(
        partition_by=task.object_id, order_by=(task.creation_time.desc(), task.id.desc())
    )
    latest = (
        select(task.total_bytes, newest.label("rank"))
        .join(run, run.id == task.session_id)
        .where(backed)
        .subquery()
    )
    ended = task.status != SessionStatus.RUNNING.value
    written = (
        select(task.session_id, func.sum(task.written_bytes).label("bytes"))
        .join(run, run.id == task.session_id)
        .where(backed)
        .group_by(task.session_id)
        .subquery()
    )
    point = RestorePoint
    first = func.row_number().over(
        partition_by=point.job_id, order_by=(point.backup_time, point.id)
    )
    firsts = select(point.session_id, first.label("rank")).subquery()
    full = select(firsts.c.session_id).where(firsts.c.rank == 1, firsts.c.session_id.is_not(None))
    size = func.coalesce(written.c.bytes, 0)
    is_full = point.session_id.in_(full)

    def total(value: Any) -> Any:
        return func.coalesce(func.sum(value), 0)

    with ctx.db.read() as s:
        figures = s.execute(
            select(
                select(func.count(func.distinct(tasks.c.object_id))).scalar_subquery(),
                select(func.count(func.distinct(task.object_id)))
                .join(run, run.id == task.session_id)
                .where(backed)
                .scalar_subquery(),
                select(total(latest.c.total_bytes)).where(latest.c.rank == 1).scalar_subquery(),
                select(func.count())
                .select_from(task)
                .join(run, run.id == task.session_id)
                .where(ended)
                .scalar_subquery(),
                select(func.count())
                .select_from(task)
                .join(run, run.id == task.session_id)
                .where(ended, backed)
                .scalar_subquery(),
            )
        ).one()
        points = s.execute(
            select(
                func.count(),
                total(case((is_full, size), else_=0)),
                total(case((is_full, 0), else_=size)),
            ).select_from(
                point.__table__.outerjoin(written, written.c.session_id == point.session_id)
            )
        ).one()
    protected, backed_up, source, ended_count, succeeded = (int(v) for v in figures)
    return VmsOverview(
        protected=protected,
        backed_up=backed_up,
        restore_points=int(points[0]),
        full_points_size=int(points[1]),
        incremental_points_size=int(points[2]),
        source_size=source,
        success_percents=(100 * succeeded) // ended_count if ended_count else 0,
    )


@dataclass(frozen=True, slots=True)
class ProcessedDay:
    start: datetime  # the day's midnight, in the server's time zone
    backed_up: int  # distinct users whose items reached a restore point that day


def processed_per_day(
    tasks: Sequence[TaskFacts], today: date, tz: tzinfo, days: int = 7
) -> list[ProcessedDay]:
    """Users backed up on each of the last ``days`` days (today first, days without any too), a
    task counting on the day it ended. Pure."""
    users_on: dict[date, set[str]] = {}
    for task in tasks:
        if task.backed_up and task.end_time is not None:
            users_on.setdefault(task.end_time.astimezone(tz).date(), set()).add(task.object_id)
    result = []
    for back in range(days):
        day = today - timedelta(days=back)
        midnight = datetime.combine(day, time(), tzinfo=tz)
        result.append(ProcessedDay(midnight, len(users_on.get(day, ()))))
    return result


def processed_days(ctx: Context, days: int = 7) -> list[ProcessedDay]:
    """``processed_per_day`` for the last ``days`` days up to now, reading only the tasks that
    ended in them (not every task of the history)."""
    today = ctx.clock.now().astimezone(ctx.tz).date()
    since = datetime.combine(today - timedelta(days=days - 1), time(), tzinfo=ctx.tz)
    return processed_per_day(task_facts(ctx, ended_since=since), today, ctx.tz, days)


def task_facts(ctx: Context, ended_since: datetime | None = None) -> list[TaskFacts]:
    """Every task's facts, or those of the tasks that ended at or after ``ended_since``."""
    query = select(
        TaskSession.object_id,
        TaskSession.status,
        TaskSession.session_id,
        JobSession.status,
        TaskSession.creation_time,
        TaskSession.end_time,
        TaskSession.total_bytes,
        TaskSession.written_bytes,
    ).join(JobSession, JobSession.id == TaskSession.session_id)
    if ended_since is not None:
        query = query.where(TaskSession.end_time >= ended_since)
    with ctx.db.read() as s:
        rows = s.execute(query).all()
    return [TaskFacts(*row) for row in rows]


def point_facts(ctx: Context) -> list[PointFacts]:
    with ctx.db.read() as s:
        rows = s.execute(
            select(RestorePoint.job_id, RestorePoint.backup_time, RestorePoint.session_id)
        ).all()
    return [PointFacts(*row) for row in rows]
