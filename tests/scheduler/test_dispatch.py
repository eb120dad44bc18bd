"""The scheduler turns due jobs into queued runs: on time, once per slot, across restarts and
downtime, never beside an active run."""

from __future__ import annotations

import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from keepstone.clock import ManualClock, SystemClock
from keepstone.scheduler import MAX_SLEEP, Scheduler
from keepstone.server import open_context
from keepstone.services import runs
from keepstone.services.context import Context
from keepstone.store.tables import Job, JobSession
from tests.conftest import Api
from tests.scheduler.conftest import at, hour_of_week, log_titles, sessions, set_policy, week


def test_a_due_job_gets_one_queued_run_for_its_slot(
    api: Api, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler
) -> None:
    job = set_policy(api, job, type="Periodically", periodicallyEvery="Minutes5")
    assert job["nextRun"] == "2026-06-10T10:05:00Z"
    assert scheduler.tick().started == 0  # not due yet
    clock.set(at(job["nextRun"]))
    assert scheduler.tick().started == 1
    assert scheduler.tick().started == 0  # the slot is taken once
    [run] = sessions(api, job)
    assert run["status"] == "Queued" and run["creationTime"] == "2026-06-10T10:05:00Z"
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == "2026-06-10T10:10:00Z"
    assert log_titles(api, run) == ["[Success] Job started at 6/10/2026 10:05:00 AM"]


def test_each_slot_runs_once_and_the_job_shows_it(
    api: Api, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler, proxy: Any
) -> None:
    job = set_policy(api, job, type="Periodically", periodicallyEvery="Minutes15")
    for _ in range(4):
        clock.set(at(api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"]))
        scheduler.tick()
        assert proxy.run_one()
    runs = sessions(api, job)
    assert [r["creationTime"] for r in runs] == [
        "2026-06-10T11:00:00Z",
        "2026-06-10T10:45:00Z",
        "2026-06-10T10:30:00Z",
        "2026-06-10T10:15:00Z",
    ]
    assert all(r["status"] == "Success" for r in runs)
    now = api.get(f"/v2/Jobs/{job['id']}").json()
    assert (now["lastRun"], now["lastStatus"], now["nextRun"]) == (
        "2026-06-10T11:00:00Z",
        "Success",
        "2026-06-10T11:15:00Z",
    )


def test_missed_slots_after_downtime_run_once(
    api: Api, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler
) -> None:
    set_policy(api, job, type="Periodically", periodicallyEvery="Hours1")
    clock.advance(timedelta(hours=5, minutes=20))  # the server was down for five slots
    assert scheduler.tick().started == 1
    assert len(sessions(api, job)) == 1
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == "2026-06-10T16:00:00Z"


def test_a_missed_slot_is_not_run_when_the_window_is_closed_now(
    api: Api, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler
) -> None:
    # Wednesday (day 3) 11:00-12:00 only; the server is down from 10:00 to 13:00.
    set_policy(
        api,
        job,
        type="Periodically",
        periodicallyEvery="Hours1",
        backupWindowEnabled=True,
        backupWindowSettings={"backupWindow": week({hour_of_week(3, 11)})},
    )
    clock.set(at("2026-06-10T13:00:00Z"))
    assert scheduler.tick().started == 0
    assert sessions(api, job) == []
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == "2026-06-17T11:00:00Z"


def test_a_due_run_beside_an_active_one_is_logged_not_started(
    api: Api, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler
) -> None:
    job = set_policy(api, job, type="Periodically", periodicallyEvery="Minutes30")
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    clock.set(at(job["nextRun"]))
    dispatch = scheduler.tick()
    assert (dispatch.started, dispatch.skipped_busy) == (0, 1)
    [active] = sessions(api, job)
    assert log_titles(api, active)[-1] == (
        "[Warning] Scheduled run at 6/10/2026 10:30:00 AM skipped: this run was still active"
    )
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == "2026-06-10T11:00:00Z"


@pytest.mark.parametrize("policy", [{"type": "ManualOnly"}, None])
def test_manual_only_and_disabled_jobs_never_run(
    api: Api, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler, policy: Any
) -> None:
    if policy is None:
        set_policy(api, job, type="Periodically", periodicallyEvery="Minutes5")
        api.post(f"/v2/Jobs/{job['id']}/Action", {"disable": None})
    else:
        set_policy(api, job, **policy)
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] is None
    for _ in range(3):
        clock.advance(timedelta(days=1))
        assert scheduler.tick().started == 0
    assert sessions(api, job) == []


def test_enabling_again_schedules_from_now_not_from_the_past(
    api: Api, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler
) -> None:
    set_policy(api, job, type="Periodically", periodicallyEvery="Hours1")
    api.post(f"/v2/Jobs/{job['id']}/Action", {"disable": None})
    clock.advance(timedelta(days=2, minutes=10))
    api.post(f"/v2/Jobs/{job['id']}/Action", {"enable": None})
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == "2026-06-12T11:00:00Z"
    assert scheduler.tick().started == 0


def test_restart_neither_loses_nor_duplicates_a_run(
    ctx: Context, api: Api, job: dict[str, Any], clock: ManualClock, data_dir: Path, proxy: Any
) -> None:
    job = set_policy(api, job, type="Periodically", periodicallyEvery="Minutes5")
    clock.set(at(job["nextRun"]))
    first = open_context(data_dir, clock, database=ctx.db.url)
    assert Scheduler(first).tick().started == 1
    first.db.dispose()
    second = open_context(data_dir, clock, database=ctx.db.url)  # back at the same instant
    assert Scheduler(second).tick().started == 0
    assert proxy.run_one() and not proxy.run_one()
    clock.advance(timedelta(minutes=5))
    assert Scheduler(second).tick().started == 1  # and keeps its schedule
    second.db.dispose()
    assert len(sessions(api, job)) == 2


def test_one_row_per_job_and_scheduled_instant(
    ctx: Context, api: Api, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler
) -> None:
    job = set_policy(api, job, type="Periodically", periodicallyEvery="Minutes5")
    slot = at(job["nextRun"])
    clock.set(slot)
    scheduler.tick()
    with ctx.db.write() as s:  # even a scheduler that believed the slot still due cannot repeat it
        s.execute(update(Job).where(Job.id == job["id"]).values(next_run=slot))
    with pytest.raises(IntegrityError), ctx.db.write() as s:
        s.execute(update(JobSession).values(status="Success"))
        s.flush()
        runs._new_session(s, s.get(Job, job["id"]), slot, "again", scheduled_for=slot)
        s.flush()


def test_daily_job_runs_once_per_local_day_across_dst(
    api: Api, job: dict[str, Any], ctx: Context, clock: ManualClock, proxy: Any
) -> None:
    """Europe/Berlin springs forward on 2026-03-29 and falls back on 2026-10-25."""
    ctx.tz = ZoneInfo("Europe/Berlin")
    scheduler = Scheduler(ctx)
    for start, time_of_day in (
        ("2026-03-27T12:00:00Z", "02:30:00"),
        ("2026-10-23T12:00:00Z", "02:30:00"),
    ):
        clock.set(at(start))
        set_policy(api, job, type="Daily", dailyType="Everyday", dailyTime=time_of_day)
        end = at(start) + timedelta(days=4)
        while (next_run := api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"]) and at(
            next_run
        ) < end:
            clock.set(at(next_run))
            assert scheduler.tick().started == 1
            assert proxy.run_one()
    local_days = [at(r["creationTime"]).astimezone(ctx.tz).date() for r in sessions(api, job)]
    assert len(local_days) == len(set(local_days)) == 8
    spring = [
        r["creationTime"] for r in sessions(api, job) if r["creationTime"].startswith("2026-03-29")
    ]
    assert spring == ["2026-03-29T01:30:00Z"]  # 02:30 did not exist: it ran at 03:30 CEST


def test_window_wrapping_from_saturday_night_into_sunday(
    api: Api, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler, proxy: Any
) -> None:
    # Saturday (day 6) 22:00 to Sunday (day 0) 02:00, hourly, on a clock 60 minutes ahead of UTC.
    open_hours = {hour_of_week(6, 22), hour_of_week(6, 23), hour_of_week(0, 0), hour_of_week(0, 1)}
    set_policy(
        api,
        job,
        type="Periodically",
        periodicallyEvery="Hours1",
        backupWindowEnabled=True,
        backupWindowSettings={"backupWindow": week(open_hours), "minuteOffset": 60},
    )
    end = at("2026-06-15T00:00:00Z")
    while (next_run := api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"]) and at(next_run) < end:
        clock.set(at(next_run))
        scheduler.tick()
        proxy.run_one()
    assert sorted(r["creationTime"] for r in sessions(api, job)) == [
        "2026-06-13T21:00:00Z",
        "2026-06-13T22:00:00Z",
        "2026-06-13T23:00:00Z",
        "2026-06-14T00:00:00Z",
    ]


def test_the_running_scheduler_dispatches_when_due(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    """The real loop on the real clock: a job due 2 s from now is queued once it is due, never
    before. How soon after is the loop's wait (at most ``MAX_SLEEP``), not asserted here: on a
    loaded shared machine a thread may not run for seconds, so the bound is only generous."""
    live = Context(ctx.db, SystemClock())
    scheduler = Scheduler(live)
    due = SystemClock().now().replace(microsecond=0) + timedelta(seconds=2)
    with ctx.db.write() as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(next_run=due))
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        created = None
        while time.monotonic() < deadline and created is None:
            with ctx.db.read() as s:
                created = s.scalar(
                    select(JobSession.creation_time).where(JobSession.job_id == job["id"])
                )
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert created is not None
    assert timedelta(0) <= created - due < timedelta(seconds=30)
    assert created.tzinfo == UTC


def test_the_loop_waits_only_until_the_next_due_job(
    ctx: Context, job: dict[str, Any], clock: ManualClock, scheduler: Scheduler
) -> None:
    """What makes dispatch prompt, on any machine: the loop sleeps until the earliest due job,
    never longer than ``MAX_SLEEP``, and not at all once one is overdue."""
    for offset, wait in [
        (timedelta(milliseconds=400), timedelta(milliseconds=400)),
        (timedelta(hours=1), MAX_SLEEP),
        (-timedelta(seconds=5), timedelta(0)),
    ]:
        with ctx.db.write() as s:
            s.execute(update(Job).where(Job.id == job["id"]).values(next_run=clock.now() + offset))
        assert scheduler._until_next_due() == wait
