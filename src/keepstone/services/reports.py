"""Summary figures for dashboards (the Enterprise Manager summary reports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from keepstone.domain.jobs import SessionStatus
from keepstone.services import catalog
from keepstone.services.context import Context
from keepstone.store.tables import Job, JobSession, Proxy, Repository

ACTIVE = (SessionStatus.QUEUED.value, SessionStatus.RUNNING.value)


@dataclass(frozen=True, slots=True)
class Overview:
    proxies: int
    repositories: int
    running_jobs: int
    scheduled_jobs: int
    # Latest state of each job (the vendor counts VMs; Keepstone's protected unit is the job).
    successful: int
    warning: int
    failed: int


def overview(ctx: Context) -> Overview:
    with ctx.db.read() as s:
        statuses = list(s.scalars(select(Job.last_status)))
        return Overview(
            proxies=s.scalar(select(func.count()).select_from(Proxy)) or 0,
            repositories=s.scalar(select(func.count()).select_from(Repository)) or 0,
            running_jobs=_running(ctx),
            scheduled_jobs=_scheduled(ctx),
            successful=statuses.count(SessionStatus.SUCCESS.value),
            warning=statuses.count(SessionStatus.WARNING.value),
            failed=statuses.count(SessionStatus.FAILED.value),
        )


@dataclass(frozen=True, slots=True)
class JobStatistics:
    running_jobs: int
    scheduled_jobs: int
    total_runs: int
    successful_runs: int
    warning_runs: int
    failed_runs: int
    longest_seconds: int
    longest_job: str


def job_statistics(ctx: Context) -> JobStatistics:
    with ctx.db.read() as s:
        counts = dict(
            s.execute(select(JobSession.status, func.count()).group_by(JobSession.status))
            .tuples()
            .all()
        )
        ended = s.execute(
            select(JobSession.creation_time, JobSession.end_time, Job.name)
            .join(Job, Job.id == JobSession.job_id)
            .where(JobSession.end_time.is_not(None))
        ).all()
    durations = [
        ((end - start).total_seconds(), name) for start, end, name in ended if end is not None
    ]
    longest = max(durations) if durations else (0.0, "")
    return JobStatistics(
        running_jobs=_running(ctx),
        scheduled_jobs=_scheduled(ctx),
        total_runs=sum(counts.values()),
        successful_runs=counts.get(SessionStatus.SUCCESS.value, 0),
        warning_runs=counts.get(SessionStatus.WARNING.value, 0),
        failed_runs=counts.get(SessionStatus.FAILED.value, 0),
        longest_seconds=int(longest[0]),
        longest_job=longest[1],
    )


@dataclass(frozen=True, slots=True)
class RepositoryUse:
    name: str
    capacity: int
    free: int
    backup_size: int  # bytes the repository's files take on disk


def repository_use(ctx: Context) -> list[RepositoryUse]:
    result = []
    for row in catalog.list_repositories(ctx):
        space = catalog.disk_space(row.path)
        used = sum(p.stat().st_size for p in Path(row.path).rglob("*") if p.is_file())
        result.append(RepositoryUse(row.name, space.capacity, space.free, used))
    return result


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
