"""Tasks: asynchronous operations a client polls until they are ``Finished``.

A task row is written before its work starts and finished by the worker thread that does it, so
a task survives a restart of the server (a task that was running then is finished as failed),
and records its server: when that server stops heartbeating, the scheduler's leader fails it.
Finished tasks are kept for ``KEEP_FINISHED`` and then forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, select

from keepstone.domain.errors import KeepstoneError, NotFound
from keepstone.services.context import Context
from keepstone.services.proxies import HEARTBEAT_STALE_AFTER
from keepstone.store.tables import Proxy, Task

if TYPE_CHECKING:
    from keepstone.services.auth import Principal
    from keepstone.services.leadership import Fence

log = structlog.get_logger(__name__)
KEEP_FINISHED = timedelta(hours=24)
LARGEST_NUMBER = 2**63 - 1  # task numbers are SQLite INTEGER keys
Work = Callable[[], tuple[str, dict[str, Any]]]  # returns (message, related links)

_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="keepstone-task")


def stop_workers() -> None:
    """At server stop: tasks not started yet are dropped (the next start fails them, as it does
    every task left running), and the running ones are waited for."""
    _pool.shutdown(wait=True, cancel_futures=True)


def submit(
    ctx: Context,
    logon_session_id: str | None,
    operation: str,
    work: Work,
    started_by: str | None = None,
) -> Task:
    """Record a Running task, by the user ``started_by`` (its id) if given, and do ``work`` on a
    worker thread; its outcome finishes the task."""
    with ctx.db.write() as s:
        task = Task(
            logon_session_id=logon_session_id,
            started_by=started_by,
            operation=operation,
            state="Running",
            success=None,
            message="",
            related={},
            created_at=ctx.clock.now(),
            finished_at=None,
            server_id=ctx.server_id or None,
        )
        s.add(task)
        s.flush()
    _pool.submit(_run, ctx, task.number, work)
    return task


def _run(ctx: Context, number: int, work: Work) -> None:
    with ctx.db.read() as s:
        if s.get(Task, number) is None:  # deleted (cancelled) before it started
            return
    try:
        message, related = work()
        _finish(ctx, number, True, message, related)
    except KeepstoneError as error:
        _finish(ctx, number, False, error.message, {})
    except Exception:
        log.exception("task failed", task=number)
        _finish(ctx, number, False, "The operation failed unexpectedly; see the server log", {})


def _finish(
    ctx: Context, number: int, success: bool, message: str, related: dict[str, Any]
) -> None:
    with ctx.db.write() as s:
        task = s.get(Task, number)
        if task is None or task.state == "Finished":
            return
        task.state, task.success, task.message = "Finished", success, message
        task.related, task.finished_at = related, ctx.clock.now()


def get(ctx: Context, number: int, caller: Principal | None = None) -> Task:
    """The task; for a ``caller`` without a global role (an organization role's operator) only
    one it started: anyone else's is a 404, as one that does not exist."""
    _forget_old(ctx)
    if not 0 < number <= LARGEST_NUMBER:  # SQLite could not even look it up
        raise NotFound(f"task 'task-{number}' does not exist")
    with ctx.db.read() as s:
        task = s.get(Task, number)
    if task is None or (caller is not None and caller.scoped and task.started_by != caller.user_id):
        raise NotFound(f"task 'task-{number}' does not exist")
    return task


def list_for(ctx: Context, logon_session_id: str) -> list[Task]:
    _forget_old(ctx)
    with ctx.db.read() as s:
        return list(
            s.scalars(
                select(Task).where(Task.logon_session_id == logon_session_id).order_by(Task.number)
            )
        )


def cancel(ctx: Context, number: int) -> None:
    """Delete a task: one not started yet never runs; a running one's result is not recorded."""
    get(ctx, number)
    with ctx.db.write() as s:
        s.execute(delete(Task).where(Task.number == number))


def fail_interrupted(ctx: Context, alone: bool) -> int:
    """At start-up: this server's tasks that were running when it stopped can never finish; nor
    can tasks of no recorded server (made before servers were recorded) when ``alone``, no other
    server of the catalog being online to work them."""
    mine = Task.server_id == ctx.server_id
    which = (mine | Task.server_id.is_(None)) if alone else mine
    return _fail_running(ctx, which, "The server stopped before this operation finished")


def fail_orphaned(ctx: Context, fence: Fence | None = None) -> int:
    """The scheduler's leader: running tasks whose server stopped heartbeating (its built-in
    proxy is offline) can never finish; they are failed. Only while ``fence`` lets it write."""
    online = select(Proxy.server_id).where(
        Proxy.server_id.is_not(None),
        Proxy.heartbeat_at > ctx.clock.now() - HEARTBEAT_STALE_AFTER,
    )
    which = Task.server_id.is_not(None) & Task.server_id.not_in(online)
    return _fail_running(ctx, which, "The server working this operation stopped", fence)


def _fail_running(ctx: Context, which: Any, message: str, fence: Fence | None = None) -> int:
    running_now = (Task.state == "Running") & which
    with ctx.db.read() as s:  # the leader asks every second; nearly always none: no write lock
        if s.scalar(select(Task.number).where(running_now).limit(1)) is None:
            return 0
    with ctx.db.write() as s:
        if fence is not None:
            fence(s)
        running = list(s.scalars(select(Task).where(Task.state == "Running", which)))
        for task in running:
            task.state, task.success, task.finished_at = "Finished", False, ctx.clock.now()
            task.message = message
        return len(running)


def _forget_old(ctx: Context) -> None:
    with ctx.db.write() as s:
        s.execute(
            delete(Task).where(
                Task.state == "Finished", Task.finished_at < ctx.clock.now() - KEEP_FINISHED
            )
        )
