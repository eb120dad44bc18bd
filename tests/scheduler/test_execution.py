"""Runs on a proxy: retries in place, the backup window at run time, stop, lost proxies, and the
session as clients see it while it runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from keepstone.api.vb365.versions import ApiVersion, LinkBuilder
from keepstone.api.vb365.views import statistics
from keepstone.clock import ManualClock
from keepstone.domain.jobs import SessionStatus
from keepstone.proxy.executor import RunContext
from keepstone.proxy.worker import ProxyWorker
from keepstone.scheduler import Scheduler
from keepstone.services import catalog, runs
from keepstone.services.context import Context
from keepstone.store.tables import JobSession, Organization
from tests.conftest import Api
from tests.scheduler.conftest import (
    ScriptedExecutor,
    at,
    hour_of_week,
    log_titles,
    sessions,
    set_policy,
    week,
)


def start(api: Api, job: dict[str, Any]) -> None:
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200


# ---- retries ----------------------------------------------------------------------------------


def test_failed_attempts_are_retried_in_the_same_session(
    api: Api,
    job: dict[str, Any],
    clock: ManualClock,
    proxy: ProxyWorker,
    executor: ScriptedExecutor,
) -> None:
    set_policy(api, job, retryEnabled=True, retryNumber=2, retryWaitInterval=10)
    executor.fail_first = 10
    start(api, job)
    assert proxy.run_one()
    [run] = sessions(api, job)
    assert (run["status"], run["retryCount"]) == ("Queued", 1)
    assert log_titles(api, run)[-1] == (
        "[Warning] Run failed: source unreachable (attempt 1). "
        "Retry 1 of 2 at 6/10/2026 10:10:00 AM"
    )
    assert not proxy.run_one()  # the retry waits its interval
    clock.advance(timedelta(minutes=10))
    assert proxy.run_one()
    clock.advance(timedelta(minutes=10))
    assert proxy.run_one()
    [run] = sessions(api, job)
    assert (run["status"], run["retryCount"]) == ("Failed", 2)
    assert run["endTime"] == "2026-06-10T10:20:00Z"
    titles = log_titles(api, run)
    assert sum(t.startswith("[Running] Processing organization") for t in titles) == 3
    assert titles[-1] == "[Failed] Run failed: source unreachable (attempt 3)"
    assert executor.attempts == 3
    assert api.get(f"/v2/Jobs/{job['id']}").json()["lastStatus"] == "Failed"


def test_a_retry_that_succeeds_ends_the_one_session_successfully(
    ctx: Context,
    api: Api,
    job: dict[str, Any],
    clock: ManualClock,
    proxy: ProxyWorker,
    executor: ScriptedExecutor,
) -> None:
    executor.fail_first, executor.steps = 1, 3
    start(api, job)
    proxy.run_one()
    clock.advance(timedelta(minutes=10))
    proxy.run_one()
    [run] = sessions(api, job)  # one run, one session: a retry never makes a second one
    assert (run["status"], run["retryCount"], run["progress"]) == ("Success", 1, 3)
    with ctx.db.read() as s:
        assert s.scalar(select(func.count()).select_from(JobSession)) == 1


def test_retries_disabled_fail_at_once(
    api: Api, job: dict[str, Any], proxy: ProxyWorker, executor: ScriptedExecutor
) -> None:
    set_policy(api, job, retryEnabled=False)
    executor.fail_first = 1
    start(api, job)
    proxy.run_one()
    assert [r["status"] for r in sessions(api, job)] == ["Failed"]


def test_a_retry_outside_the_window_waits_for_it(
    api: Api,
    job: dict[str, Any],
    clock: ManualClock,
    proxy: ProxyWorker,
    executor: ScriptedExecutor,
    scheduler: Scheduler,
) -> None:
    # Open Wednesday and Thursday 10:00-11:00; a scheduled run fails at 10:55, retry due 11:05.
    set_policy(
        api,
        job,
        type="Daily",
        dailyType="Everyday",
        dailyTime="10:50:00",
        backupWindowEnabled=True,
        retryEnabled=True,
        retryNumber=3,
        retryWaitInterval=10,
        backupWindowSettings={"backupWindow": week({hour_of_week(3, 10), hour_of_week(4, 10)})},
    )
    clock.set(at("2026-06-10T10:50:00Z"))
    assert scheduler.tick().started == 1
    executor.fail_first, executor.step_time = 1, timedelta(minutes=5)
    clock.advance(timedelta(minutes=5))
    proxy.run_one()
    [run] = sessions(api, job)
    assert run["status"] == "Queued"
    assert log_titles(api, run)[-1].endswith("Retry 1 of 3 at 6/11/2026 10:00:00 AM")
    clock.set(at("2026-06-11T09:59:00Z"))
    assert not proxy.run_one()
    clock.set(at("2026-06-11T10:00:00Z"))
    assert proxy.run_one()
    assert sessions(api, job)[0]["status"] == "Success"


def test_a_permanent_failure_is_not_retried(api: Api, job: dict[str, Any], ctx: Context) -> None:
    """An organization type with no connector yet (as a newer catalog might hold): nothing a
    retry could change, so the run fails once and no retry is queued."""
    with ctx.db.write() as s:
        s.execute(update(Organization).values(type="Hybrid"))
    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    start(api, job)
    assert ProxyWorker(ctx, local.id).run_one()
    [run] = sessions(api, job)
    assert (run["status"], run["retryCount"]) == ("Failed", 0)
    assert log_titles(api, run)[-1].startswith(
        "[Failed] No connector for organization type 'Hybrid'"
    )


# ---- the backup window at run time --------------------------------------------------------------


def window_policy(api: Api, job: dict[str, Any]) -> None:
    """Scheduled daily at 10:00; the window is open Wednesday 10:00-12:00."""
    set_policy(
        api,
        job,
        type="Daily",
        dailyType="Everyday",
        dailyTime="10:00:00",
        backupWindowEnabled=True,
        retryEnabled=True,
        backupWindowSettings={"backupWindow": week({hour_of_week(3, 10), hour_of_week(3, 11)})},
    )


def test_a_scheduled_run_still_running_when_the_window_closes_is_stopped(
    api: Api,
    job: dict[str, Any],
    clock: ManualClock,
    proxy: ProxyWorker,
    executor: ScriptedExecutor,
    scheduler: Scheduler,
) -> None:
    window_policy(api, job)
    clock.set(at("2026-06-17T10:00:00Z"))
    scheduler.tick()
    executor.steps, executor.step_time = 10, timedelta(minutes=30)
    assert proxy.run_one()
    [run] = sessions(api, job)
    assert run["status"] == "Stopped"
    assert run["progress"] == 4  # four items finished before 12:00 are kept
    assert run["statistics"]["processedObjects"] == 4
    assert log_titles(api, run)[-1] == (
        "[Stopped] The backup window closed at 6/17/2026 12:00:00 PM; the work finished so far is "
        "kept and the next run continues from it"
    )
    assert executor.seen[-1] == (1, 4)
    assert api.get(f"/v2/Jobs/{job['id']}").json()["lastStatus"] == "Stopped"


def test_a_queued_scheduled_run_does_not_start_after_its_window_closed(
    api: Api, job: dict[str, Any], clock: ManualClock, proxy: ProxyWorker, scheduler: Scheduler
) -> None:
    window_policy(api, job)
    clock.set(at("2026-06-17T10:00:00Z"))
    scheduler.tick()
    clock.set(at("2026-06-17T12:30:00Z"))  # the proxy was busy until after the window
    assert not proxy.run_one()
    [run] = sessions(api, job)
    assert run["status"] == "Queued"
    assert log_titles(api, run)[-1] == (
        "[Warning] Waiting for the backup window to open at 6/24/2026 10:00:00 AM"
    )


def test_a_manual_start_outside_the_window_runs_and_is_not_stopped_by_it(
    api: Api,
    job: dict[str, Any],
    clock: ManualClock,
    proxy: ProxyWorker,
    executor: ScriptedExecutor,
) -> None:
    window_policy(api, job)
    clock.set(at("2026-06-17T11:30:00Z"))
    executor.steps, executor.step_time = 4, timedelta(minutes=30)  # runs past 12:00
    start(api, job)
    assert proxy.run_one()
    assert sessions(api, job)[0]["status"] == "Success"
    assert executor.seen[-1] == (1, 4)


# ---- stop -------------------------------------------------------------------------------------


def test_stop_ends_a_running_session_promptly(
    api: Api, job: dict[str, Any], proxy: ProxyWorker, executor: ScriptedExecutor
) -> None:
    def stop_at_step_two(run: RunContext, step: int) -> None:
        if step == 2:
            assert api.post(f"/v2/Jobs/{job['id']}/Action", {"stop": None}).status_code == 200

    executor.steps, executor.on_step = 100, stop_at_step_two
    start(api, job)
    proxy.run_one()
    [run] = sessions(api, job)
    assert (run["status"], run["progress"]) == ("Stopped", 2)
    assert executor.seen[-1] == (1, 2)  # not one item more
    assert log_titles(api, run)[-1] == "[Stopped] Job stopped by user"


def test_stop_while_waiting_for_a_retry(
    api: Api,
    job: dict[str, Any],
    clock: ManualClock,
    proxy: ProxyWorker,
    executor: ScriptedExecutor,
) -> None:
    executor.fail_first = 5
    start(api, job)
    proxy.run_one()
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"stop": None}).status_code == 200
    clock.advance(timedelta(hours=1))
    assert not proxy.run_one()
    assert sessions(api, job)[0]["status"] == "Stopped"


# ---- proxies that disappear --------------------------------------------------------------------


def test_a_run_whose_proxy_stops_renewing_is_handed_back_in_the_same_session(
    ctx: Context,
    api: Api,
    job: dict[str, Any],
    clock: ManualClock,
    scheduler: Scheduler,
    proxy: ProxyWorker,
    executor: ScriptedExecutor,
) -> None:
    start(api, job)
    lost = runs.claim_next(ctx, proxy.proxy_id)  # a proxy claims the run, then its machine dies
    assert lost is not None
    clock.advance(timedelta(seconds=29))
    scheduler.tick()
    assert sessions(api, job)[0]["status"] == "Running"  # its lease still holds
    clock.advance(timedelta(seconds=2))
    scheduler.tick()
    [run] = sessions(api, job)
    assert (run["status"], run["retryCount"]) == ("Queued", 0)  # not a failed attempt
    assert any(
        "stopped renewing; the run continues on another proxy" in t for t in log_titles(api, run)
    )
    # The lost proxy comes back: it learns it lost the run and cannot end it.
    assert runs.renew_lease(ctx, lost, proxy.proxy_id) is runs.RunState.LOST
    assert runs.end_attempt(ctx, lost, proxy.proxy_id, SessionStatus.SUCCESS, "done", {}, 9) is None
    assert proxy.run_one()  # at once, on a live proxy, in the same session
    assert sessions(api, job)[0]["status"] == "Success"


def test_runs_interrupted_by_a_server_restart_are_retried(
    ctx: Context, api: Api, job: dict[str, Any], clock: ManualClock, proxy: ProxyWorker
) -> None:
    start(api, job)
    assert runs.claim_next(ctx, proxy.proxy_id) is not None
    assert runs.abandon_runs_of(ctx, proxy.proxy_id) == 1  # what ProxyWorker.start() does
    [run] = sessions(api, job)
    assert (run["status"], run["retryCount"]) == ("Queued", 1)
    assert "The proxy restarted while this run was in progress" in log_titles(api, run)[-1]


# ---- the session as clients see it ------------------------------------------------------------


def test_progress_and_statistics_move_while_the_session_runs(
    api: Api, job: dict[str, Any], proxy: ProxyWorker, executor: ScriptedExecutor
) -> None:
    observed: list[tuple[str, int, int]] = []

    def look(run: RunContext, step: int) -> None:
        run.renew()  # what the next check() does with renew_every=0
        session = sessions(api, job)[0]
        observed.append(
            (session["status"], session["progress"], session["statistics"]["processedObjects"])
        )

    executor.steps, executor.on_step = 3, look
    start(api, job)
    proxy.run_one()
    assert observed == [("Running", 0, 0), ("Running", 1, 1), ("Running", 2, 2)]
    final = sessions(api, job)[0]
    assert (final["status"], final["progress"]) == ("Success", 3)
    assert set(final) >= {
        "id",
        "creationTime",
        "endTime",
        "progress",
        "status",
        "retryCount",
        "statistics",
        "_links",
    }
    assert set(final["_links"]) == {"self", "log", "job"}
    assert log_titles(api, final)[-1] == "[Success] Processed 3 items"


def api_version(version: int) -> ApiVersion:
    return ApiVersion(version, LinkBuilder("https://backup.example.test", f"v{version}"))


def test_statistics_are_strings_in_v2_and_numbers_from_v3() -> None:
    stats = {
        "read_bytes": 852_378,
        "read_items": 52,
        "transferred_bytes": 1_572_864,
        "written_bytes": 39_951_155,
        "duration_seconds": 1,
        "bottleneck": "Source",
    }
    assert statistics(stats, api_version(2)) == {
        "processingRate": "832.4 KB/s (52 items/s)",
        "readRate": "832.4 KB/s",
        "writeRate": "38.1 MB/s",
        "transferredData": "1.5 MB",
        "processedObjects": 52,
        "bottleneck": "Source",
    }
    for version in range(3, 9):
        assert statistics(stats, api_version(version)) == {
            "processingRateBytesPS": 852_378,
            "processingRateItemsPS": 52,
            "readRateBytesPS": 852_378,
            "writeRateBytesPS": 39_951_155,
            "transferredDataBytes": 1_572_864,
            "processedObjects": 52,
            "bottleneck": "Source",
        }
