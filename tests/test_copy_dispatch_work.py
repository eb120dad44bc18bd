"""The scheduler's copy-job pass counts its statements: linear in the copy jobs that are due."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from keepstone.clock import ManualClock
from keepstone.domain.jobs import JobEdit, ScheduleEdit
from keepstone.domain.policy import Period, ScheduleType
from keepstone.services import catalog, copy_jobs, jobs
from keepstone.services.catalog import RepositoryEdit
from keepstone.services.context import Context
from keepstone.services.copy_jobs import CopyJobEdit

HOURLY = ScheduleEdit(type=ScheduleType.PERIODICALLY, periodically_every=Period.HOURS1)


@contextmanager
def counted(ctx: Context) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    engines = {ctx.db._reader, ctx.db._writer}  # reads and writes run on their own engines
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def _copy_jobs(ctx: Context, org: dict[str, Any], tmp_path: Path, count: int, tag: str) -> None:
    target = catalog.create_repository(
        ctx, RepositoryEdit(name=f"copies {tag}", path=str(tmp_path / f"copies-{tag}"))
    )
    source = catalog.list_repositories(ctx)[0]
    for n in range(count):
        job = jobs.create_job(
            ctx, org["id"], JobEdit(name=f"job {tag} {n}", repository_id=source.id)
        ).job
        edit = CopyJobEdit(job.id, target.id, immediate=False, schedule=HOURLY)
        copy_jobs.create_copy_job(ctx, edit)


def _dispatch_statements(ctx: Context, clock: ManualClock) -> tuple[int, int]:
    due = min(c.next_run for c in copy_jobs.list_copy_jobs(ctx) if c.next_run is not None)
    clock.set(due)
    with counted(ctx) as statements:
        started = copy_jobs.dispatch_due(ctx)
    return started, len(statements)


def test_dispatching_copy_jobs_is_linear(
    ctx: Context, clock: ManualClock, org: dict[str, Any], tmp_path: Path
) -> None:
    _copy_jobs(ctx, org, tmp_path, 3, "a")
    started_n, statements_n = _dispatch_statements(ctx, clock)
    _copy_jobs(ctx, org, tmp_path, 9, "b")  # 12 in all, 3 of them with a run already queued
    started_4n, statements_4n = _dispatch_statements(ctx, clock)
    assert (started_n, started_4n) == (3, 9)
    assert statements_4n <= 4 * statements_n + 4
