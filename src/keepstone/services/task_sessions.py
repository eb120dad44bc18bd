"""Task sessions: one row per protected user of a job session, its state, times and sizes.

The engine writes a user's row twice: once when it starts the user (Running) and once when it
finishes it (Success, Warning or Failed, with what was read and written), never per item. A row
still Running when its session's attempt ends (stopped, failed, crashed) is closed then, by
``close_running_in``, with the session's reason. A retried attempt takes its user's row over, so
a session keeps one row per user whatever its number of attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from keepstone.domain.errors import NotFound
from keepstone.domain.jobs import SessionStatus
from keepstone.services.context import Context, new_id
from keepstone.store.tables import Job, JobSession, TaskSession

ENDED = (SessionStatus.SUCCESS, SessionStatus.WARNING, SessionStatus.FAILED)


@dataclass(frozen=True, slots=True)
class UserTally:
    """What the engine did for one user: items in the restore point, their bytes, the bytes read
    from the source this run and the bytes new in the repository."""

    items: int = 0
    total_bytes: int = 0
    read_bytes: int = 0
    written_bytes: int = 0


def start(ctx: Context, session_id: str, subject: tuple[str, str]) -> str:
    """A user's task begins (Running); returns the task's id. Two statements, once per user."""
    object_id, name = subject
    now = ctx.clock.now()
    with ctx.db.write() as s:
        task = s.scalar(
            select(TaskSession).where(
                TaskSession.session_id == session_id, TaskSession.object_id == object_id
            )
        )
        if task is None:
            task = TaskSession(id=new_id(), session_id=session_id, object_id=object_id)
            s.add(task)
        task.name = name
        task.status = SessionStatus.RUNNING.value
        task.creation_time, task.end_time = now, None
        _set_tally(task, UserTally())
        task.reason = ""
        return task.id


def finish(
    ctx: Context, task_id: str, status: SessionStatus, tally: UserTally, reason: str = ""
) -> None:
    """A user's task ends with ``status`` (one of ``ENDED``) and what it did."""
    with ctx.db.write() as s:
        finish_in(s, task_id, status, tally, reason, ctx.clock.now())


def finish_in(
    s: Session,
    task_id: str,
    status: SessionStatus,
    tally: UserTally,
    reason: str,
    now: datetime,
) -> TaskSession | None:
    """``finish`` in the caller's transaction; the task, or None when its session was deleted
    meanwhile."""
    if status not in ENDED:
        raise ValueError(f"a task ends Success, Warning or Failed, not {status}")
    task = s.get(TaskSession, task_id)
    if task is None:
        return None
    task.status = status.value
    task.end_time = now
    _set_tally(task, tally)
    task.reason = reason
    return task


def close_running_in(
    s: Session, session_id: str, status: SessionStatus, reason: str, now: datetime
) -> None:
    """The session's attempt ended: its users still Running end as it did (Stopped, or Failed
    for any other end: a user left unfinished was not backed up)."""
    closed = SessionStatus.STOPPED if status is SessionStatus.STOPPED else SessionStatus.FAILED
    s.execute(
        update(TaskSession)
        .where(
            TaskSession.session_id == session_id,
            TaskSession.status == SessionStatus.RUNNING.value,
        )
        .values(status=closed.value, end_time=now, reason=reason)
    )


def _set_tally(task: TaskSession, tally: UserTally) -> None:
    task.items = tally.items
    task.total_bytes = tally.total_bytes
    task.read_bytes = tally.read_bytes
    task.written_bytes = tally.written_bytes


# ---- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task with what its representations name of its job session (one query for a list)."""

    task: TaskSession
    job_id: str
    job_name: str
    session_created: datetime
    session_status: str


def _views(s: Session, *conditions: object) -> list[TaskView]:
    rows = s.execute(
        select(TaskSession, Job.id, Job.name, JobSession.creation_time, JobSession.status)
        .join(JobSession, JobSession.id == TaskSession.session_id)
        .join(Job, Job.id == JobSession.job_id)
        .where(*conditions)  # type: ignore[arg-type]
        .order_by(TaskSession.creation_time.desc(), TaskSession.id)
    ).all()
    return [TaskView(*row) for row in rows]


def list_tasks(ctx: Context) -> list[TaskView]:
    """Every task of every session, the newest first."""
    with ctx.db.read() as s:
        return _views(s)


def tasks_of(ctx: Context, session_id: str) -> list[TaskView]:
    """One session's tasks (a 404 for an unknown session), the newest first."""
    with ctx.db.read() as s:
        if s.get(JobSession, session_id) is None:
            raise NotFound(f"job session '{session_id}' does not exist")
        return _views(s, TaskSession.session_id == session_id)


def get_task(ctx: Context, task_id: str) -> TaskView:
    with ctx.db.read() as s:
        found = _views(s, TaskSession.id == task_id)
    if not found:
        raise NotFound(f"task session '{task_id}' does not exist")
    return found[0]


def processed_objects(ctx: Context, session_id: str) -> list[TaskSession]:
    """The users a run is done with (a user still Running is not processed yet), one row each,
    in the order it took them."""
    return sorted(
        (
            view.task
            for view in tasks_of(ctx, session_id)
            if view.task.status != SessionStatus.RUNNING.value
        ),
        key=lambda task: (task.creation_time, task.id),
    )
