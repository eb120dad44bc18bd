"""Seed 003: ``PUT /v2/Jobs/{id}``, the example exchange verbatim and every sentence of the page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text, update

from keepstone.services.context import Context
from keepstone.store.tables import Job, Proxy, Repository
from tests.conftest import Api

SEED_JOB_ID = "70a8cbaf-642f-4c6f-934d-fb10e597a82a"
SEED_PROXY_ID = "5a905bb5-9071-433c-9d2f-f805d4da2cf4"
SEED_REPOSITORY_ID = "a740fb93-4de8-4de4-977e-765dd092748f"

# The seed's request body as printed, its "..." written out to the 168 booleans it stands for.
SEED_BODY = """{

  "id": "e1714f5b-e51b-496b-9e46-e7bf979aa6d6",

  "name": "test_job",

  "description": "",

  "lastRun": "2017-06-06T15:18:22.6664413Z",

  "nextRun": "2017-06-13T15:00:00Z",

  "isEnabled": true,

  "backupType": "SelectedItems",

  "lastStatus": "Success",

  "schedulePolicy": {

    "backupWindowEnabled": true,

    "backupWindowSettings": {

      "backupWindow": [

        true,

        true,

        true,

ELLIPSIS

      ],

      "minuteOffset": 0

    },

    "type": "Daily",

    "dailyType": "Wednesday",

    "dailyTime": "08:00:00",

    "retryEnabled": true,

    "retryNumber": 3,

    "retryWaitInterval": 10

  },

 "proxyId": "5a905bb5-9071-433c-9d2f-f805d4da2cf4",

 "repositoryId": "a740fb93-4de8-4de4-977e-765dd092748f",

 "isRun": "true"

}""".replace("ELLIPSIS", ",\n".join(["        true"] * 165))


@pytest.fixture
def seed_job(api: Api, ctx: Context, job: dict[str, Any], repo: dict[str, Any]) -> dict[str, Any]:
    """The job of the seed's example: id 70a8cbaf-..., its proxy and repository with the seed's ids,
    already a SelectedItems job (the example edits its scope, which needs selected items)."""
    selected = [{"type": "User", "user": {"id": "u-1", "name": "alice"}, "mailbox": True}]
    assert (
        api.put(
            f"/v2/Jobs/{job['id']}", {"backupType": "SelectedItems", "selectedItems": selected}
        ).status_code
        == 200
    )
    with ctx.db.write() as s:
        # rename ids, then their references
        if ctx.db.dialect == "sqlite":
            s.execute(text("PRAGMA defer_foreign_keys=ON"))
        else:  # the tests' PostgreSQL user is a superuser: no foreign-key triggers here
            s.execute(text("SET LOCAL session_replication_role = replica"))
        s.execute(update(Proxy).values(id=SEED_PROXY_ID))
        s.execute(
            update(Repository)
            .where(Repository.id == repo["id"])
            .values(id=SEED_REPOSITORY_ID, proxy_id=SEED_PROXY_ID)
        )
        s.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(id=SEED_JOB_ID, proxy_id=SEED_PROXY_ID, repository_id=SEED_REPOSITORY_ID)
        )
    body: dict[str, Any] = api.get(f"/v2/Jobs/{SEED_JOB_ID}").json()
    return body


def test_seed_example_exchange_verbatim(api: Api, seed_job: dict[str, Any]) -> None:
    assert (
        len(json.loads(SEED_BODY)["schedulePolicy"]["backupWindowSettings"]["backupWindow"]) == 168
    )
    response = api.client.put(
        f"/v2/Jobs/{SEED_JOB_ID}",
        content=SEED_BODY.encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-type"] == "application/json; charset=utf-8"

    edited = api.get(f"/v2/Jobs/{SEED_JOB_ID}").json()
    assert edited["id"] == SEED_JOB_ID  # the body's "id" is read-only and ignored
    assert edited["name"] == "test_job"
    assert edited["backupType"] == "SelectedItems"
    assert edited["isEnabled"] is True
    assert edited["proxyId"] == SEED_PROXY_ID
    assert edited["repositoryId"] == SEED_REPOSITORY_ID
    assert edited["schedulePolicy"] == {
        "type": "Daily",
        "dailyType": "Wednesday",
        "dailyTime": "08:00:00",
        "periodicallyEvery": "Hours1",
        "backupWindowEnabled": True,
        "backupWindowSettings": {"backupWindow": [True] * 168, "minuteOffset": 0},
        "retryEnabled": True,
        "retryNumber": 3,
        "retryWaitInterval": 10,
    }
    # Read-only properties of the body are ignored: lastStatus and lastRun are the server's own.
    assert edited["lastStatus"] != "Success" or edited["lastRun"] != "2017-06-06T15:18:22.6664413Z"
    # nextRun is recomputed at once: the next Wednesday 08:00 UTC after Wed 2026-06-10 10:00.
    assert edited["nextRun"] == "2026-06-17T08:00:00Z"
    # "isRun": "true" started the job right after the edit.
    sessions = api.get(f"/v2/Jobs/{SEED_JOB_ID}/JobSessions").json()
    assert len(sessions) == 1 and sessions[0]["status"] == "Queued"


def test_one_property_body_changes_only_that_property(api: Api, job: dict[str, Any]) -> None:
    before = api.get(f"/v2/Jobs/{job['id']}").json()
    assert api.put(f"/v2/Jobs/{job['id']}", {"description": "ABC"}).status_code == 200
    after = api.get(f"/v2/Jobs/{job['id']}").json()
    assert after == before | {"description": "ABC"}


def test_schedule_partial_edit_keeps_other_schedule_settings(api: Api, job: dict[str, Any]) -> None:
    api.put(
        f"/v2/Jobs/{job['id']}",
        {"schedulePolicy": {"type": "Daily", "dailyType": "Friday", "dailyTime": "22:30:00"}},
    )
    assert (
        api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": {"retryNumber": 7}}).status_code == 200
    )
    policy = api.get(f"/v2/Jobs/{job['id']}").json()["schedulePolicy"]
    assert (policy["dailyType"], policy["dailyTime"], policy["retryNumber"]) == (
        "Friday",
        "22:30:00",
        7,
    )


def test_property_names_case_insensitive_and_string_booleans(api: Api, job: dict[str, Any]) -> None:
    body = {
        "Name": "Daily",
        "DESCRIPTION": "ABC",
        "BackupType": "entireOrganization",
        "SchedulePolicy": {
            "TYPE": "daily",
            "DailyType": "weekends",
            "DAILYTIME": "08:00:00",
            "BackupWindowEnabled": "false",
            "RetryEnabled": "true",
            "RetryNumber": 5,
            "RetryWaitInterval": 15,
        },
        "IsEnabled": "true",
    }
    assert api.put(f"/v2/Jobs/{job['id']}", body).status_code == 200
    edited = api.get(f"/v2/Jobs/{job['id']}").json()
    assert (edited["name"], edited["description"], edited["backupType"]) == (
        "Daily",
        "ABC",
        "EntireOrganization",
    )
    policy = edited["schedulePolicy"]
    assert (policy["type"], policy["dailyType"], policy["dailyTime"]) == (
        "Daily",
        "Weekends",
        "08:00:00",
    )
    assert (policy["retryEnabled"], policy["retryNumber"], policy["retryWaitInterval"]) == (
        True,
        5,
        15,
    )
    assert policy["backupWindowEnabled"] is False


def test_seed_enum_spellings(api: Api, job: dict[str, Any]) -> None:
    """Every value the seed lists, in the seed's own spelling."""
    for daily_type in (
        "Everyday",
        "Weekends",
        "Workdays",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ):
        assert (
            api.put(
                f"/v2/Jobs/{job['id']}",
                {"schedulePolicy": {"type": "daily", "dailyType": daily_type}},
            ).status_code
            == 200
        )
        assert api.get(f"/v2/Jobs/{job['id']}").json()["schedulePolicy"]["dailyType"] == daily_type
    for every in (
        "Minutes5",
        "Minutes10",
        "Minutes15",
        "Minutes30",
        "Hours1",
        "Hours2",
        "Hours4",
        "Hours8",
        "Hours12",
    ):
        assert (
            api.put(
                f"/v2/Jobs/{job['id']}",
                {"schedulePolicy": {"type": "Periodically", "periodicallyEvery": every.lower()}},
            ).status_code
            == 200
        )
        assert (
            api.get(f"/v2/Jobs/{job['id']}").json()["schedulePolicy"]["periodicallyEvery"] == every
        )


def test_is_enabled_is_writable(api: Api, job: dict[str, Any]) -> None:
    assert api.put(f"/v2/Jobs/{job['id']}", {"isEnabled": "false"}).status_code == 200
    edited = api.get(f"/v2/Jobs/{job['id']}").json()
    assert edited["isEnabled"] is False and edited["nextRun"] is None


def test_is_run_starts_the_job_after_the_edit(api: Api, job: dict[str, Any]) -> None:
    assert api.get(f"/v2/Jobs/{job['id']}/JobSessions").json() == []
    assert api.put(f"/v2/Jobs/{job['id']}", {"description": "go", "IsRun": True}).status_code == 200
    sessions = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    assert [s["status"] for s in sessions] == ["Queued"]
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == "go"


def test_is_run_false_starts_nothing(api: Api, job: dict[str, Any]) -> None:
    assert api.put(f"/v2/Jobs/{job['id']}", {"isRun": "false"}).status_code == 200
    assert api.get(f"/v2/Jobs/{job['id']}/JobSessions").json() == []
