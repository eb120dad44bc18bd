"""The repository behind real runs: stopped runs keep their work, verify finds damage, a fresh
server attaches an existing repository, retention removes what it should."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from keepstone.server import bootstrap, open_context
from keepstone.services import maintenance
from keepstone.services.context import Context
from keepstone.store.tables import JobSession
from tests.conftest import ADMIN_PASSWORD, BASE_URL, Api, LongLivedApi, finished_task, login
from tests.local_org import Organization, run_job


def test_a_stopped_run_keeps_its_finished_chunks_for_the_next_run(
    ctx: Context,
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
) -> None:
    for n in range(120):  # enough items that a stop lands in the middle
        organization.file("alice", f"bulk/{n:03d}.bin", size=64 * 1024)
    stopper = threading.Thread(target=_stop_when_progressing, args=(ctx, api, org_job))
    assert api.post(f"/v2/Jobs/{org_job['id']}/Action", {"start": None}).status_code == 200
    stopper.start()
    backup_proxy.run_one()
    stopper.join()
    [stopped] = api.get(f"/v2/Jobs/{org_job['id']}/JobSessions").json()
    assert stopped["status"] == "Stopped"
    assert 0 < stopped["progress"] < 129
    assert api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json() == []  # no half point
    kept = stopped["statistics"]["transferredData"]

    clock.advance(timedelta(minutes=5))
    finished = run_job(api, org_job, backup_proxy)
    assert finished["status"] == "Success", api.get(
        f"/v2/JobSessions/{finished['id']}/LogItems"
    ).json()
    assert finished["statistics"]["processedObjects"] == 129
    # The stopped run's chunks were flushed: the next run stores only what it had not reached.
    everything = sum(len(data) for data in organization.contents().values())
    again = _transferred(finished["statistics"]["transferredData"])
    assert _transferred(kept) >= 10 * 64 * 1024 * 0.9
    assert again <= everything - _transferred(kept) * 0.9, (kept, everything, again)


def _transferred(text: str) -> float:
    amount, unit = text.split(" ")
    return float(amount) * {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[unit]


def _stop_when_progressing(ctx: Context, api: Api, job: dict[str, Any]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with ctx.db.read() as s:
            progress = s.scalar(select(JobSession.progress).where(JobSession.job_id == job["id"]))
        if progress and progress >= 10:
            api.post(f"/v2/Jobs/{job['id']}/Action", {"stop": None})
            return
        time.sleep(0.002)


def test_verify_names_the_damage_and_undamaged_items_still_restore(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
) -> None:
    run_job(api, org_job, backup_proxy)
    intact = api.post(f"/v2/BackupRepositories/{repo['id']}/verify")
    assert intact.status_code == 200 and intact.json()["ok"] is True
    assert intact.json()["checkedBytes"] > 3 * 1024 * 1024

    packs = sorted((Path(repo["path"]) / "packs").rglob("*"), key=lambda p: p.stat().st_size)
    biggest = [p for p in packs if p.is_file()][-1]
    data = bytearray(biggest.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the cat photo's chunks, the bulk of the pack
    biggest.write_bytes(bytes(data))

    damaged = api.post(f"/v2/BackupRepositories/{repo['id']}/verify").json()
    assert damaged["ok"] is False
    assert damaged["damagedPacks"] == [biggest.name]
    [point] = api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json()
    assert damaged["damagedRestorePoints"] == [point["id"]]
    assert [d["item"] for d in damaged["damagedItems"]] == ["alice/drive/Documents/Photos/cat.jpg"]

    session = api.post(f"/v2/Jobs/{org_job['id']}/Action", {"explore": {}}).json()["id"]
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes"
    for mailbox in api.rows(base):
        for item in api.get(f"{base}/{mailbox['id']}/Items").json()["results"]:
            assert api.post(f"{base}/{mailbox['id']}/Items/{item['id']}/save").status_code == 200


def test_a_fresh_server_attaches_an_existing_repository(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    run_job(api, org_job, backup_proxy)
    clock.advance(timedelta(hours=1))
    run_job(api, org_job, backup_proxy)
    points = api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json()

    fresh_dir = tmp_path / "fresh-server"
    fresh = open_context(fresh_dir, clock)
    bootstrap(fresh, fresh_dir)
    with TestClient(create_app(fresh), base_url=BASE_URL) as client:
        other = LongLivedApi(client, login(client, "admin", ADMIN_PASSWORD))
        attached = other.post("/v2/BackupRepositories", {"name": "old", "path": repo["path"]})
        assert attached.status_code == 200, attached.text
        found = other.get(f"/v2/RestorePoints?repositoryId={attached.json()['id']}").json()
        assert sorted(p["backupTime"] for p in found) == sorted(p["backupTime"] for p in points)
        assert {p["jobId"] for p in found} == {org_job["id"]}
    fresh.db.dispose()


def test_retention_on_demand_removes_expired_points_and_frees_their_data(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
    clock: ManualClock,
) -> None:
    big = organization.file("alice", "big.bin", size=2 * 1024 * 1024)
    run_job(api, org_job, backup_proxy)
    big.unlink()  # only the first restore point holds it
    clock.advance(timedelta(days=3))
    run_job(api, org_job, backup_proxy)
    assert (
        api.put(
            f"/v2/BackupRepositories/{repo['id']}",
            {"retentionPeriodType": "Daily", "dailyRetentionPeriod": 1},
        ).status_code
        == 200
    )
    result = api.post(f"/v2/BackupRepositories/{repo['id']}/applyRetention").json()
    assert result["removedRestorePoints"] == 1
    assert result["freedBytes"] >= 2 * 1024 * 1024
    [left] = api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json()
    assert left["backupTime"] == "2026-06-13T10:00:00Z"
    assert api.post(f"/v2/BackupRepositories/{repo['id']}/verify").json()["ok"] is True


def test_retention_runs_by_itself_at_the_repository_retention_time(
    ctx: Context,
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
    clock: ManualClock,
) -> None:
    from keepstone.scheduler import Scheduler

    assert (
        api.put(
            f"/v2/BackupRepositories/{repo['id']}",
            {
                "retentionPeriodType": "Daily",
                "dailyRetentionPeriod": 2,
                "retentionFrequencyType": "Daily",
                "dailyType": "Everyday",
                "dailyTime": "18:00:00",
            },
        ).status_code
        == 200
    )
    scheduler = Scheduler(ctx)
    scheduler.tick()  # first sight of the repository: retention counts from now
    run_job(api, org_job, backup_proxy)
    clock.advance(timedelta(days=3))
    run_job(api, org_job, backup_proxy)
    assert len(api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json()) == 2
    scheduler.tick()
    scheduler.wait_for_retention()  # 13 June 10:00: retention ran at 18:00 days ago, is due
    [left] = api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json()
    assert left["backupTime"] == "2026-06-13T10:00:00Z"
    scheduler.tick()
    scheduler.wait_for_retention()
    clock.advance(timedelta(hours=7, minutes=59))  # 17:59: not yet the next retention time
    assert maintenance.due_retention(ctx) == []
    clock.advance(timedelta(minutes=1))
    assert maintenance.due_retention(ctx) == [repo["id"]]


def test_item_level_retention_removes_old_items_from_every_restore_point(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
    clock: ManualClock,
) -> None:
    import os

    old = organization.file("alice", "old-report.bin", size=1024 * 1024)
    year_ago = clock.now().timestamp() - 400 * 86400
    os.utime(old, (year_ago, year_ago))
    run_job(api, org_job, backup_proxy)
    clock.advance(timedelta(days=1))
    run_job(api, org_job, backup_proxy)
    assert (
        api.put(
            f"/v2/BackupRepositories/{repo['id']}",
            {
                "retentionType": "ItemLevel",
                "retentionPeriodType": "Yearly",
                "yearlyRetentionPeriod": "Year1",
            },
        ).status_code
        == 200
    )
    result = api.post(f"/v2/BackupRepositories/{repo['id']}/applyRetention").json()
    assert (result["removedRestorePoints"], result["removedItems"]) == (0, 2)
    assert result["freedBytes"] >= 1024 * 1024
    points = api.get(f"/v2/RestorePoints?jobId={org_job['id']}").json()
    assert len(points) == 2
    for point in points:
        session = api.post(
            f"/v2/Jobs/{org_job['id']}/Action",
            {"explore": {"dateTime": point["backupTime"], "type": "veod"}},
        ).json()
        base = f"/v2/RestoreSessions/{session['id']}/Organization/OneDrives"
        alice = next(d for d in api.rows(base) if d["name"] == "alice")
        names = {d["name"] for d in api.get(f"{base}/{alice['id']}/Documents").json()["results"]}
        assert "old-report.bin" not in names and "cat.jpg" in names
    assert api.post(f"/v2/BackupRepositories/{repo['id']}/verify").json()["ok"] is True


def poll(api: Api, href: str) -> dict[str, Any]:
    return finished_task(api, href.split("4443", 1)[1])


def test_long_operations_answer_202_with_a_location_on_request(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
) -> None:
    prefer = {"Prefer": "respond-async"}
    started = api.post(f"/v2/Jobs/{org_job['id']}/Action", {"start": None}, headers=prefer)
    assert started.status_code == 202 and started.headers["preference-applied"] == "respond-async"
    backup_proxy.run_one()
    session = api.get(started.headers["location"].split("4443", 1)[1]).json()
    assert session["status"] == "Success"

    verify = api.post(f"/v2/BackupRepositories/{repo['id']}/verify", headers=prefer)
    assert verify.status_code == 202 and verify.json()["state"] == "Running"
    finished = poll(api, verify.headers["location"])
    assert finished["success"] is True and finished["result"]["ok"] is True

    explored = api.post(f"/v2/Jobs/{org_job['id']}/Action", {"explore": {}}).json()["id"]
    base = f"/v2/RestoreSessions/{explored}/Organization/Mailboxes"
    bob = next(m for m in api.rows(base) if m["name"] == "bob")
    restore = api.post(
        f"{base}/{bob['id']}/restoreTo", {"userName": "alice", "folder": "Bob"}, headers=prefer
    )
    assert restore.status_code == 202
    result = poll(api, restore.headers["location"])["result"]
    assert result["restoredItemsCount"] == 1
    assert api.get("/v2/Tasks/nope").status_code == 400
    assert api.get("/v2/Tasks/task-9999").status_code == 404
