"""Asynchronous tasks among several servers: each task records the server working it; a server
that starts fails only its own interrupted tasks (and tasks of no recorded server when it is
alone); the scheduler's leader fails the running tasks of a server that stopped heartbeating,
and only while its fence lets it write."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from keepstone.clock import ManualClock
from keepstone.domain.errors import Conflict
from keepstone.services import catalog, tasks
from keepstone.services.context import Context
from keepstone.services.proxies import HEARTBEAT_STALE_AFTER
from keepstone.store.tables import Task


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # no worker thread outlives the test


def _task(ctx: Context, server_id: str, release: threading.Event) -> int:
    """A task of ``server_id`` that stays Running until ``release``."""

    def work() -> tuple[str, dict[str, Any]]:
        release.wait(60)
        return "done", {}

    ctx.server_id = server_id
    try:
        return tasks.submit(ctx, None, "test", work).number
    finally:
        ctx.server_id = ""


def _state(ctx: Context, number: int) -> tuple[str, bool | None, str]:
    task = tasks.get(ctx, number)
    return task.state, task.success, task.message


def test_the_leader_fails_the_tasks_of_a_server_that_stopped(
    ctx: Context, clock: ManualClock, release: threading.Event
) -> None:
    a, b = catalog.ensure_local_proxy(ctx, "server-a"), catalog.ensure_local_proxy(ctx, "server-b")
    catalog.heartbeat(ctx, a.id)
    catalog.heartbeat(ctx, b.id)
    of_a, of_b = _task(ctx, "server-a", release), _task(ctx, "server-b", release)
    assert tasks.fail_orphaned(ctx) == 0  # both servers alive
    clock.advance(HEARTBEAT_STALE_AFTER + timedelta(seconds=1))
    catalog.heartbeat(ctx, a.id)  # only server-a goes on

    def refused(_: object) -> None:
        raise Conflict("not leading")

    with pytest.raises(Conflict):
        tasks.fail_orphaned(ctx, refused)  # a fenced former leader writes nothing
    assert _state(ctx, of_b)[0] == "Running"
    assert tasks.fail_orphaned(ctx) == 1
    assert _state(ctx, of_b) == ("Finished", False, "The server working this operation stopped")
    assert _state(ctx, of_a)[0] == "Running"
    release.set()


def test_a_starting_server_fails_its_own_interrupted_tasks_only(
    ctx: Context, release: threading.Event
) -> None:
    mine, theirs = _task(ctx, "server-a", release), _task(ctx, "server-b", release)
    legacy = _task(ctx, "server-c", release)
    with ctx.db.write() as s:  # a task from before servers were recorded
        s.execute(update(Task).where(Task.number == legacy).values(server_id=None))
    ctx.server_id = "server-a"
    assert tasks.fail_interrupted(ctx, alone=False) == 1
    assert [_state(ctx, n)[0] for n in (mine, theirs, legacy)] == ["Finished", "Running", "Running"]
    assert tasks.fail_interrupted(ctx, alone=True) == 1  # alone: the unrecorded one too
    assert _state(ctx, legacy)[0] == "Finished" and _state(ctx, theirs)[0] == "Running"
    ctx.server_id = ""
    release.set()
