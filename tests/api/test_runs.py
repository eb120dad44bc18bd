"""Job runs in this issue: real sessions through the session table, honest failure without a
connector, and the start/stop/enable/disable actions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from tests.conftest import BASE_URL, Api


def start(api: Api, job: dict[str, Any]) -> Any:
    return api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None})


def test_a_started_job_moves_queued_running_to_its_end(
    api: Api, job: dict[str, Any], worker: ProxyWorker, clock: ManualClock
) -> None:
    response = start(api, job)
    assert response.status_code == 200 and response.content == b""
    [queued] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    assert queued["status"] == "Queued" and queued["endTime"] is None
    assert api.get(f"/v2/Jobs/{job['id']}").json()["lastStatus"] == "Queued"

    clock.advance(timedelta(seconds=3))
    assert worker.run_one() is True
    assert worker.run_one() is False  # nothing else queued

    session = api.get(f"/v2/JobSessions/{queued['id']}").json()
    assert session["status"] == "Success"  # a real backup of an organization with empty mailboxes
    assert session["creationTime"] == "2026-06-10T10:00:00Z"
    assert session["endTime"] == "2026-06-10T10:00:03Z"
    assert session["statistics"] == {
        "processingRate": "0 B/s (0 items/s)",
        "readRate": "0 B/s",
        "writeRate": "0 B/s",
        "transferredData": "0 B",
        "processedObjects": 0,
        "bottleneck": "NA",
    }
    assert session["_links"] == {
        "self": {"href": f"{BASE_URL}/v2/jobsessions/{queued['id']}"},
        "log": {"href": f"{BASE_URL}/v2/jobsessions/{queued['id']}/logitems"},
        "job": {"href": f"{BASE_URL}/v2/jobs/{job['id']}"},
    }
    titles = [item["title"] for item in api.get(f"/v2/JobSessions/{queued['id']}/LogItems").json()]
    assert titles[0] == "[Success] Job started at 6/10/2026 10:00:00 AM"
    assert titles[1].startswith("[Running] Processing organization example.test")
    assert (
        titles[-2] == "[Success] User alice: 0 messages, 0 files (0 unchanged), 0 B read, 0 B new"
    )
    assert titles[-1].startswith("[Success] Backup finished: 1 users")

    edited = api.get(f"/v2/Jobs/{job['id']}").json()
    assert (edited["lastStatus"], edited["lastRun"]) == ("Success", "2026-06-10T10:00:00Z")
    assert len(api.get(f"/v2/RestorePoints?jobId={job['id']}").json()) == 1
    assert [s["id"] for s in api.get("/v2/JobSessions").json()] == [queued["id"]]


def test_a_job_never_has_two_active_sessions(api: Api, job: dict[str, Any]) -> None:
    assert start(api, job).status_code == 200
    second = start(api, job)
    assert second.status_code == 409 and "already running" in second.json()["message"]
    assert len(api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()) == 1


def test_stop_a_queued_session(api: Api, job: dict[str, Any], worker: ProxyWorker) -> None:
    start(api, job)
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"stop": None}).status_code == 200
    [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    assert session["status"] == "Stopped" and session["endTime"] is not None
    assert worker.run_one() is False  # a stopped session is never picked up
    assert api.get(f"/v2/Jobs/{job['id']}").json()["lastStatus"] == "Stopped"
    assert start(api, job).status_code == 200  # and the job can run again


def test_stop_when_not_running(api: Api, job: dict[str, Any]) -> None:
    response = api.post(f"/v2/Jobs/{job['id']}/Action", {"stop": None})
    assert response.status_code == 409 and "not running" in response.json()["message"]


@pytest.mark.parametrize(
    "body", [{}, {"launch": None}, {"start": None, "stop": None}, [1], "start"]
)
def test_bad_action_bodies(api: Api, job: dict[str, Any], body: Any) -> None:
    response = api.post(f"/v2/Jobs/{job['id']}/Action", body)
    assert response.status_code == 400 and response.json()["message"]
    assert api.get(f"/v2/Jobs/{job['id']}/JobSessions").json() == []


def test_action_names_are_case_insensitive(api: Api, job: dict[str, Any]) -> None:
    assert api.post(f"/v2/Jobs/{job['id']}/action", {"Disable": None}).status_code == 200
    assert api.get(f"/v2/Jobs/{job['id']}").json()["isEnabled"] is False


def test_action_on_unknown_job(api: Api) -> None:
    assert api.post("/v2/Jobs/nope/Action", {"start": None}).status_code == 404


def test_sessions_of_unknown_things(api: Api) -> None:
    assert api.get("/v2/JobSessions/nope").status_code == 404
    assert api.get("/v2/JobSessions/nope/LogItems").status_code == 404
    assert api.get("/v2/Jobs/nope/JobSessions").status_code == 404


def test_session_list_paging(
    api: Api, job: dict[str, Any], worker: ProxyWorker, clock: ManualClock
) -> None:
    for _ in range(3):
        start(api, job)
        worker.run_one()
        clock.advance(timedelta(minutes=1))
    sessions = api.get("/v2/JobSessions").json()
    assert len(sessions) == 3
    assert [s["creationTime"] for s in sessions] == sorted(
        (s["creationTime"] for s in sessions), reverse=True
    )
    assert api.get("/v2/JobSessions?offset=1&limit=1").json() == [sessions[1]]
    assert api.get("/v2/JobSessions?limit=0").status_code == 400


def test_deleting_a_job_stops_its_queued_session(
    api: Api, job: dict[str, Any], worker: ProxyWorker
) -> None:
    start(api, job)
    assert api.delete(f"/v2/Jobs/{job['id']}").status_code == 204
    assert worker.run_one() is False


def test_the_proxy_thread_executes_runs_promptly(
    api: Api, job: dict[str, Any], worker: ProxyWorker
) -> None:
    """With the worker thread running, as in ``keepstone serve``: a start wakes it at once."""
    import time

    api.client.app.state.ctx.wake_proxies = worker.wake  # type: ignore[attr-defined]
    worker.start()
    try:
        start(api, job)
        deadline = time.monotonic() + 60  # generous: the machine may be loaded
        while time.monotonic() < deadline:
            [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
            if session["status"] == "Success":
                break
            time.sleep(0.02)
        assert session["status"] == "Success"
    finally:
        worker.stop()
