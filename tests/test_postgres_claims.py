"""Claims and wake-ups on a shared PostgreSQL catalog, from several processes' points of view
(each claimer has its own ``Database``, as two proxies or servers would)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from keepstone.services import catalog, runs
from keepstone.services.context import Context
from keepstone.store.db import Database
from tests.conftest import Api
from tests.postgres_server import listening

pytestmark = pytest.mark.postgresql_catalog

DEADLINE = 30.0  # generous: the machine is shared


@pytest.fixture
def other(ctx: Context) -> Iterator[Context]:
    """A second process's view of the same catalog."""
    second = Context(Database(ctx.db.url), ctx.clock)
    yield second
    second.db.dispose()


def _local_proxy(ctx: Context) -> str:
    return next(p.id for p in catalog.list_proxies(ctx) if p.is_local)


@contextmanager
def first_claim_held(ctx: Context, proxy: str) -> Iterator[list[runs.ClaimedRun | None]]:
    """A claim by ``ctx`` held open right after it read (and locked) the queue, while the body
    runs: the moment another claimer must not take what it holds. Its result after the body."""
    paused, go = threading.Event(), threading.Event()

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM job_sessions JOIN jobs" in statement and not paused.is_set():
            paused.set()
            go.wait(DEADLINE)

    for engine in {ctx.db._reader, ctx.db._writer}:
        event.listen(engine, "after_cursor_execute", after)
    first: list[runs.ClaimedRun | None] = []
    claimer = threading.Thread(target=lambda: first.append(runs.claim_next(ctx, proxy)))
    claimer.start()
    try:
        assert paused.wait(DEADLINE), "the first claimer never read the queue"
        yield first
    finally:
        go.set()
        claimer.join(DEADLINE)


def test_two_concurrent_claimers_never_take_the_same_session(
    ctx: Context, other: Context, job: dict[str, Any]
) -> None:
    proxy = _local_proxy(ctx)
    queued = runs.start_job(ctx, job["id"], "test")
    assert queued is not None
    with first_claim_held(ctx, proxy) as first:
        # While the first claimer holds the session, the second passes it over at once (it
        # neither waits for the first to commit nor takes the same session).
        second: list[runs.ClaimedRun | None] = []
        rival = threading.Thread(target=lambda: second.append(runs.claim_next(other, proxy)))
        rival.start()
        rival.join(DEADLINE)
        assert not rival.is_alive(), "the second claimer waited for the first one's lock"
        assert second == [None]
    assert first and first[0] is not None and first[0].session_id == queued.id
    assert runs.get_session(other, queued.id).status == "Running"


def test_while_one_claimer_holds_a_session_another_takes_the_next(
    ctx: Context, other: Context, api: Api, job: dict[str, Any], org: dict[str, Any]
) -> None:
    second_job = api.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        {"name": "second", "backupType": "EntireOrganization", "repositoryId": job["repositoryId"]},
    ).json()
    proxy = _local_proxy(ctx)
    older = runs.start_job(ctx, job["id"], "test")
    newer = runs.start_job(ctx, second_job["id"], "test")
    assert older is not None and newer is not None
    with first_claim_held(ctx, proxy) as first:
        taken = runs.claim_next(other, proxy)
    assert taken is not None and taken.session_id == newer.id
    assert first and first[0] is not None and first[0].session_id == older.id


def test_a_session_freed_by_the_first_claimer_is_not_taken_twice(
    ctx: Context, other: Context, job: dict[str, Any]
) -> None:
    """Claimers racing in a loop: every session claimed exactly once across them."""
    proxy = _local_proxy(ctx)
    claimed: list[str] = []
    lock = threading.Lock()

    def claim_all(claimer: Context, stop: threading.Event) -> None:
        while not stop.is_set():
            run = runs.claim_next(claimer, proxy)
            if run is None:
                continue
            with lock:
                claimed.append(run.session_id)
            runs.end_attempt(claimer, run, proxy, runs.SessionStatus.SUCCESS, "done", {}, 100)

    started: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=claim_all, args=(c, stop)) for c in (ctx, other)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(8):
            session = runs.start_job(ctx, job["id"], "test", already_active_ok=True)
            if session is not None:
                started.append(session.id)
            _wait_until(lambda: runs.get_session(ctx, started[-1]).status == "Success")
    finally:
        stop.set()
        for thread in threads:
            thread.join(DEADLINE)
    assert sorted(claimed) == sorted(started)
    assert len(started) == 8


def _wait_until(condition: Any) -> None:
    done = threading.Event()
    for _ in range(int(DEADLINE / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError("condition not met in time")


def test_a_notify_from_one_process_wakes_a_listener_of_another(
    ctx: Context, other: Context
) -> None:
    with listening(ctx.db.url, "keepstone_test", DEADLINE) as woken:
        assert not woken.is_set()
        other.db.notify("keepstone_test")
        assert woken.wait(DEADLINE)
        woken.clear()
        other.db.notify("another_channel")
        assert not woken.wait(0.5)
