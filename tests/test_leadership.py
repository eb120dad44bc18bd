"""Leader election among the servers of one catalog (``services/leadership.py``), with a manual
clock: exactly one leads, a lapsed lease passes to another with the next epoch, and the former
leader's scheduler writes are refused inside their own transaction, writing nothing. On both
catalogs; the PostgreSQL idle-in-transaction timeout is tested here too."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from keepstone.clock import ManualClock
from keepstone.scheduler import Scheduler
from keepstone.services import copy_jobs, leadership, maintenance, runs
from keepstone.services.context import Context
from keepstone.services.leadership import Leadership, NotLeading
from keepstone.store.db import Database
from keepstone.store.postgres import IDLE_IN_TRANSACTION_ENV
from keepstone.store.tables import Job, JobSession, Repository
from tests.conftest import Api
from tests.scheduler.conftest import at, set_policy

LEASE = timedelta(seconds=30)
SERVER_A = "00000000-0000-4000-8000-00000000000a"
SERVER_B = "00000000-0000-4000-8000-00000000000b"


def pair(ctx: Context) -> tuple[Leadership, Leadership]:
    return Leadership(ctx, SERVER_A, lease=LEASE), Leadership(ctx, SERVER_B, lease=LEASE)


def test_exactly_one_server_leads_and_renewals_keep_its_term(
    ctx: Context, clock: ManualClock
) -> None:
    a, b = pair(ctx)
    assert a.campaign() and not b.campaign()
    assert a.is_leading() and not b.is_leading()
    for _ in range(5):  # renewing every third of the lease: the term goes on, b never gets in
        clock.advance(a.renew_every)
        assert a.campaign() and not b.campaign()
    row = leadership.current_leader(ctx)
    assert row is not None and (row.holder, row.epoch) == (SERVER_A, 1)
    assert row.expires_at == clock.now() + LEASE


def test_a_lapsed_lease_passes_to_the_other_server_with_the_next_epoch(
    ctx: Context, clock: ManualClock
) -> None:
    a, b = pair(ctx)
    assert a.campaign()
    clock.advance(LEASE - timedelta(seconds=1))
    assert a.is_leading() and not b.campaign()  # not expired yet: b waits
    clock.advance(timedelta(seconds=1))
    assert not a.is_leading()  # a leader that did not renew in time stops at once
    assert b.campaign() and b.is_leading()
    row = leadership.current_leader(ctx)
    assert row is not None and (row.holder, row.epoch) == (SERVER_B, 2)
    assert not a.campaign()  # the thawed former leader finds b's running term
    assert a.term is None and not a.is_leading()


def test_a_restarted_server_takes_its_own_unexpired_term_over_at_once(
    ctx: Context, clock: ManualClock
) -> None:
    first_life = Leadership(ctx, SERVER_A, lease=LEASE)
    assert first_life.campaign()
    second_life = Leadership(ctx, SERVER_A, lease=LEASE)  # same server id, killed and restarted
    assert second_life.campaign()
    row = leadership.current_leader(ctx)
    assert row is not None and (row.holder, row.epoch) == (SERVER_A, 2)
    with pytest.raises(NotLeading), ctx.db.write() as s:
        first_life.fence(s)  # the dead incarnation's term is over


def test_a_resigning_leader_hands_over_at_the_next_round(ctx: Context) -> None:
    a, b = pair(ctx)
    assert a.campaign() and not b.campaign()
    a.resign()
    assert not a.is_leading()
    assert b.campaign()
    row = leadership.current_leader(ctx)
    assert row is not None and (row.holder, row.epoch) == (SERVER_B, 2)


def _due_job(api: Api, job: dict[str, Any], clock: ManualClock) -> dict[str, Any]:
    job = set_policy(api, job, type="Periodically", periodicallyEvery="Minutes5")
    clock.set(at(job["nextRun"]))
    return job


def _state(ctx: Context, job_id: str, repo_id: str) -> tuple[Any, ...]:
    with ctx.db.read() as s:
        job = s.get(Job, job_id)
        repo = s.get(Repository, repo_id)
        assert job is not None and repo is not None
        sessions = sorted(
            (r.id, r.status, r.retry_count)
            for r in s.scalars(select(JobSession).where(JobSession.job_id == job_id))
        )
        return job.next_run, job.last_status, repo.retention_applied_at, sessions


def test_the_former_leaders_dispatch_reap_and_retention_write_nothing(
    ctx: Context, clock: ManualClock, api: Api, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    a, b = pair(ctx)
    assert a.campaign()
    # a running attempt whose proxy stopped renewing, and a scheduled slot that has come
    running = runs.start_job(ctx, job["id"], "manual")
    assert running is not None
    with ctx.db.read() as s:
        proxy = s.scalar(select(Job.proxy_id).where(Job.id == job["id"]))
    assert proxy is not None and runs.claim_next(ctx, proxy) is not None
    clock.advance(LEASE + runs.LEASE)  # a froze past its lease; b took over
    job = _due_job(api, job, clock)
    assert b.campaign()
    before = _state(ctx, job["id"], repo["id"])
    for write in (
        lambda: runs.reap_lost_runs(ctx, a.fence),
        lambda: runs.dispatch_due(ctx, a.fence),
        lambda: copy_jobs.dispatch_due(ctx, a.fence),
        lambda: maintenance.apply_retention(ctx, repo["id"], a.fence),
    ):
        with pytest.raises(NotLeading):
            write()
        assert _state(ctx, job["id"], repo["id"]) == before
    # the new leader's own writes go through
    assert runs.reap_lost_runs(ctx, b.fence) == 1
    after = _state(ctx, job["id"], repo["id"])
    assert after[3] != before[3]


def test_only_the_leading_servers_scheduler_ticks(
    ctx: Context, clock: ManualClock, api: Api, job: dict[str, Any]
) -> None:
    job = _due_job(api, job, clock)
    a, b = pair(ctx)
    first, second = Scheduler(ctx, a), Scheduler(ctx, b)
    assert first.leading() and not second.leading()
    assert first.tick().started == 1
    clock.advance(LEASE)  # a froze: b leads from its next round
    assert second.leading()
    with pytest.raises(NotLeading):
        first.tick()  # a's clock says its term is over; even forced, the tick writes nothing
    with ctx.db.read() as s:
        assert len(list(s.scalars(select(JobSession)))) == 1


@pytest.mark.postgresql_catalog
def test_postgresql_ends_a_writer_idle_in_its_transaction(
    ctx: Context, catalog_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frozen process inside a write transaction holds the writers' lock: PostgreSQL ends its
    session after the timeout, the others write again, and the frozen one commits nothing."""
    assert catalog_url is not None
    monkeypatch.setenv(IDLE_IN_TRANSACTION_ENV, "1")
    frozen_db, other_db = Database(catalog_url), Database(catalog_url)
    inside, thaw = threading.Event(), threading.Event()
    outcome: list[BaseException | None] = []

    def frozen() -> None:
        try:
            with frozen_db.write() as s:
                s.execute(text("UPDATE proxies SET description = 'late write'"))
                inside.set()
                thaw.wait(60)  # SIGSTOP, as far as PostgreSQL can tell
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=frozen)
    thread.start()
    try:
        assert inside.wait(30)
        started = time.monotonic()
        with other_db.write() as s:  # waits for the writers' lock, then gets it
            s.execute(text("SELECT 1"))
        waited = time.monotonic() - started
        assert 0.5 < waited < 30, waited
    finally:
        thaw.set()
        thread.join(60)
        frozen_db.dispose()
        other_db.dispose()
    [error] = outcome
    assert isinstance(error, DBAPIError), error
    with ctx.db.read() as s:
        descriptions = s.scalars(text("SELECT description FROM proxies")).all()
    assert "late write" not in descriptions
