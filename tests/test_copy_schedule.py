"""Copy jobs on their own schedule, through the scheduler and the proxy of their backup job, with
the target repository's own retention."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from keepstone.scheduler import Scheduler
from keepstone.services.context import Context
from tests.conftest import Api
from tests.scheduler.conftest import api, at  # api: a login that outlives clock jumps

__all__ = ["api"]


def _target(api: Api, path: Path, **retention: Any) -> dict[str, Any]:
    body = {"name": "copies", "path": str(path), **retention}
    created = api.post("/v2/BackupRepositories", body)
    assert created.status_code == 200, created.text
    result: dict[str, Any] = created.json()
    return result


def _copy_job(api: Api, job: dict[str, Any], target: dict[str, Any], **policy: Any) -> Any:
    body = {"backupJobId": job["id"], "repositoryId": target["id"], "schedulePolicy": policy}
    created = api.post("/v8/CopyJobs", body | {"organizationId": job["organizationId"]})
    assert created.status_code == 201, created.text
    return created.json()


def _copy_sessions(api: Api, copy: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api.get(f"/v8/JobSessions?jobId={copy['id']}").json()["results"]
    return rows


def _backup(api: Api, job: dict[str, Any], worker: ProxyWorker) -> None:
    assert api.post(f"/v8/Jobs/{job['id']}/start").status_code == 200
    assert worker.run_one()


def test_a_periodic_copy_job_runs_once_per_slot(
    api: Api,
    job: dict[str, Any],
    ctx: Context,
    clock: ManualClock,
    worker: ProxyWorker,
    tmp_path: Path,
) -> None:
    job = api.get(f"/v8/Jobs/{job['id']}").json()
    copy = _copy_job(
        api, job, _target(api, tmp_path / "c"), type="Periodically", periodicallyEvery="Hours1"
    )
    assert copy["schedulePolicy"]["type"] == "Periodically" and copy["nextRun"] is not None
    scheduler = Scheduler(ctx)
    scheduler.tick()
    assert _copy_sessions(api, copy) == []  # not due yet
    _backup(api, job, worker)
    clock.set(at(copy["nextRun"]))
    scheduler.tick()
    scheduler.tick()
    (queued,) = _copy_sessions(api, copy)
    assert queued["status"] == "Queued" and queued["jobType"] == "Copy"
    assert worker.run_one()
    assert _copy_sessions(api, copy)[0]["status"] == "Success"
    after = api.get(f"/v8/CopyJobs/{copy['id']}").json()
    assert at(after["nextRun"]) == at(copy["nextRun"]) + timedelta(hours=1)
    assert after["lastStatus"] == "Success"
    # The backup job's own sessions and status are its own.
    (backup,) = api.get("/v8/JobSessions?jobType=Backup").json()["results"]
    assert backup["jobId"] == job["id"] and backup["jobType"] == "Backup"
    assert api.get(f"/v8/Jobs/{job['id']}").json()["lastStatus"] == "Success"


def test_an_immediate_copy_job_follows_new_restore_points(
    api: Api,
    job: dict[str, Any],
    ctx: Context,
    clock: ManualClock,
    worker: ProxyWorker,
    tmp_path: Path,
) -> None:
    job = api.get(f"/v8/Jobs/{job['id']}").json()
    copy = _copy_job(api, job, _target(api, tmp_path / "c"), type="Immediate")
    assert copy["nextRun"] is None
    scheduler = Scheduler(ctx)
    scheduler.tick()
    assert _copy_sessions(api, copy) == []  # nothing to copy yet
    for round_ in range(2):
        clock.advance(timedelta(minutes=5))
        _backup(api, job, worker)
        clock.advance(timedelta(minutes=1))
        scheduler.tick()
        scheduler.tick()
        assert len(_copy_sessions(api, copy)) == round_ + 1
        assert worker.run_one()
        scheduler.tick()
        assert len(_copy_sessions(api, copy)) == round_ + 1  # nothing new: no run
    assert [s["status"] for s in _copy_sessions(api, copy)] == ["Success", "Success"]
    target = copy["repositoryId"]
    assert len(api.get(f"/v8/RestorePoints?repositoryId={target}").json()["results"]) == 2


def test_the_copy_keeps_its_repositorys_own_retention(
    api: Api,
    job: dict[str, Any],
    clock: ManualClock,
    worker: ProxyWorker,
    tmp_path: Path,
) -> None:
    job = api.get(f"/v8/Jobs/{job['id']}").json()
    target = _target(api, tmp_path / "c", retentionPeriodType="Daily", dailyRetentionPeriod=1)
    copy = _copy_job(api, job, target, type="Immediate")
    for _ in range(2):
        _backup(api, job, worker)
        assert api.post(f"/v8/CopyJobs/{copy['id']}/start").status_code == 200
        assert worker.run_one()
        clock.advance(timedelta(days=3))
    removed = api.post(f"/v8/BackupRepositories/{target['id']}/applyRetention").json()
    assert removed["removedRestorePoints"] >= 1
    copies = api.get(f"/v8/RestorePoints?repositoryId={target['id']}").json()["results"]
    sources = api.get(f"/v8/RestorePoints?repositoryId={job['repositoryId']}").json()["results"]
    assert len(copies) < 2 and len(sources) == 2


def test_a_queued_copy_run_stops_at_once(
    api: Api, job: dict[str, Any], worker: ProxyWorker, tmp_path: Path
) -> None:
    job = api.get(f"/v8/Jobs/{job['id']}").json()
    copy = _copy_job(api, job, _target(api, tmp_path / "c"), type="Immediate")
    started = api.post(f"/v8/CopyJobs/{copy['id']}/start")
    assert started.json()["status"] == "Queued" and started.json()["jobId"] == copy["id"]
    assert api.post(f"/v8/CopyJobs/{copy['id']}/start").status_code == 409
    assert api.post(f"/v8/CopyJobs/{copy['id']}/stop").status_code == 204
    assert _copy_sessions(api, copy)[0]["status"] == "Stopped"
    assert api.post(f"/v8/CopyJobs/{copy['id']}/stop").status_code == 409
    assert not worker.run_one()
    assert api.post(f"/v8/CopyJobs/{copy['id']}/disable").status_code == 204
    assert api.get(f"/v8/CopyJobs/{copy['id']}").json()["isEnabled"] is False
    assert api.delete(f"/v8/CopyJobs/{copy['id']}").status_code == 204
    assert api.get("/v8/JobSessions?jobType=Copy").json()["results"] == []
