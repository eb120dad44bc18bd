"""``nextRun`` is recomputed from the new policy at once, for every schedule type."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api

# "Now" is Wednesday 2026-06-10 10:00 UTC (tests/conftest.py START).
CASES: list[tuple[str, dict[str, Any], str | None]] = [
    (
        "daily everyday later today",
        {"type": "Daily", "dailyType": "Everyday", "dailyTime": "22:00:00"},
        "2026-06-10T22:00:00Z",
    ),
    (
        "daily everyday earlier today",
        {"type": "Daily", "dailyType": "Everyday", "dailyTime": "08:00:00"},
        "2026-06-11T08:00:00Z",
    ),
    (
        "workdays",
        {"type": "Daily", "dailyType": "Workdays", "dailyTime": "09:00:00"},
        "2026-06-11T09:00:00Z",
    ),
    (
        "weekends",
        {"type": "Daily", "dailyType": "Weekends", "dailyTime": "09:00:00"},
        "2026-06-13T09:00:00Z",
    ),
    (
        "monday",
        {"type": "Daily", "dailyType": "Monday", "dailyTime": "07:15:00"},
        "2026-06-15T07:15:00Z",
    ),
    (
        "wednesday later today",
        {"type": "Daily", "dailyType": "Wednesday", "dailyTime": "10:30:00"},
        "2026-06-10T10:30:00Z",
    ),
    (
        "every 5 minutes",
        {"type": "Periodically", "periodicallyEvery": "Minutes5"},
        "2026-06-10T10:05:00Z",
    ),
    ("every hour", {"type": "Periodically", "periodicallyEvery": "Hours1"}, "2026-06-10T11:00:00Z"),
    (
        "every 8 hours",
        {"type": "Periodically", "periodicallyEvery": "Hours8"},
        "2026-06-10T16:00:00Z",
    ),
    (
        "every 12 hours",
        {"type": "Periodically", "periodicallyEvery": "Hours12"},
        "2026-06-10T12:00:00Z",
    ),
    ("manual only", {"type": "ManualOnly"}, None),
]


@pytest.mark.parametrize(("case", "policy", "expected"), CASES, ids=[c[0] for c in CASES])
def test_next_run_per_schedule(
    api: Api, job: dict[str, Any], case: str, policy: dict[str, Any], expected: str | None
) -> None:
    assert api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": policy}).status_code == 200
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == expected, case


def window(open_hours: set[int]) -> list[bool]:
    return [hour in open_hours for hour in range(168)]


def test_periodic_runs_only_in_window_hours(api: Api, job: dict[str, Any]) -> None:
    # Wednesday is day 3 (Sunday first): allow Wednesday 14:00-16:00 only.
    policy = {
        "type": "Periodically",
        "periodicallyEvery": "Hours1",
        "backupWindowEnabled": True,
        "backupWindowSettings": {"backupWindow": window({3 * 24 + 14, 3 * 24 + 15})},
    }
    api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": policy})
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == "2026-06-10T14:00:00Z"


def test_daily_slot_outside_window_is_skipped(api: Api, job: dict[str, Any]) -> None:
    # Daily at 12:00, but the window only opens on Fridays (day 5) 12:00-13:00.
    policy = {
        "type": "Daily",
        "dailyType": "Everyday",
        "dailyTime": "12:00:00",
        "backupWindowEnabled": True,
        "backupWindowSettings": {"backupWindow": window({5 * 24 + 12})},
    }
    api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": policy})
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == "2026-06-12T12:00:00Z"


def test_window_minute_offset_shifts_the_window(api: Api, job: dict[str, Any]) -> None:
    # The window's clock runs 120 minutes ahead of UTC: its Wednesday 14:00 is 12:00 UTC.
    policy = {
        "type": "Periodically",
        "periodicallyEvery": "Hours1",
        "backupWindowEnabled": True,
        "backupWindowSettings": {"backupWindow": window({3 * 24 + 14}), "minuteOffset": 120},
    }
    api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": policy})
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == "2026-06-10T12:00:00Z"


def test_disabled_job_has_no_next_run_and_enabling_restores_it(
    api: Api, job: dict[str, Any]
) -> None:
    api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": {"type": "Daily", "dailyTime": "22:00:00"}})
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"disable": None}).status_code == 200
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] is None
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"enable": None}).status_code == 200
    assert api.get(f"/v2/Jobs/{job['id']}").json()["nextRun"] == "2026-06-10T22:00:00Z"


def test_new_job_gets_the_default_schedule_and_its_next_run(api: Api, job: dict[str, Any]) -> None:
    policy = job["schedulePolicy"]
    assert (policy["type"], policy["dailyType"], policy["dailyTime"]) == (
        "Daily",
        "Everyday",
        "15:00:00",
    )
    assert job["nextRun"] == "2026-06-10T15:00:00Z"


def test_periodic_offset_and_window_as_v6_to_v8_send_and_show_them(
    api: Api, job: dict[str, Any]
) -> None:
    """``periodicallyOffsetMinutes`` shifts an hourly grid within the hour, and the periodic
    window (``periodicallyWindowEnabled`` from v7, with ``periodicallyWindowSettings``) holds
    the runs to its hours; v6 on shows them with ``scheduleEnabled``, v7 on the window's
    switch; v2-v5 show neither, as their references have none."""
    # Wednesday (day 3) from 13:00 only, on a clock an hour ahead of UTC: 12:20 UTC at the
    # earliest, every two hours from 00:20 on the window clock
    policy = {
        "type": "Periodically",
        "periodicallyEvery": "Hours2",
        "scheduleEnabled": True,
        "periodicallyOffsetMinutes": 20,
        "periodicallyWindowEnabled": True,
        "periodicallyWindowSettings": {
            "backupWindow": window({3 * 24 + h for h in range(13, 24)}),
            "minuteOffset": 60,
        },
    }
    path = f"/v8/Jobs/{job['id']}"
    assert api.put(path, {"schedulePolicy": policy}).status_code == 204
    shown = api.get(path).json()
    assert shown["nextRun"] == "2026-06-10T12:20:00Z"
    for name in ("scheduleEnabled", "periodicallyOffsetMinutes", "periodicallyWindowEnabled"):
        assert shown["schedulePolicy"][name] == policy[name], name
    assert (
        shown["schedulePolicy"]["periodicallyWindowSettings"]
        == policy["periodicallyWindowSettings"]
    )
    v6 = api.get(f"/v6/Jobs/{job['id']}").json()["schedulePolicy"]
    assert "periodicallyWindowEnabled" not in v6 and v6["periodicallyOffsetMinutes"] == 20
    v2 = api.get(f"/v2/Jobs/{job['id']}").json()["schedulePolicy"]
    assert not {"scheduleEnabled", "periodicallyOffsetMinutes"} & set(v2)
    off = {
        "type": "Periodically",
        "periodicallyEvery": "Hours2",
        "periodicallyWindowEnabled": False,
    }
    assert api.put(path, {"schedulePolicy": off}).status_code == 204
    assert api.get(path).json()["nextRun"] == "2026-06-10T10:20:00Z"


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        (
            {
                "type": "Periodically",
                "periodicallyEvery": "Minutes30",
                "periodicallyOffsetMinutes": 5,
            },
            "periodicallyOffsetMinutes",
        ),
        ({"periodicallyOffsetMinutes": 60}, "periodicallyOffsetMinutes"),
        (
            {
                "periodicallyWindowEnabled": True,
                "periodicallyWindowSettings": {"backupWindow": [False] * 168},
            },
            "periodicallyWindowSettings.backupWindow",
        ),
        (
            {"periodicallyWindowSettings": {"backupWindow": [True] * 24}},
            "periodicallyWindowSettings.backupWindow",
        ),
        ({"scheduleEnabled": False}, "scheduleEnabled"),
        ({"type": "ManualOnly", "scheduleEnabled": True}, "scheduleEnabled"),
    ],
)
def test_impossible_periodic_settings_are_400s_naming_them_and_change_nothing(
    api: Api, job: dict[str, Any], policy: dict[str, Any], named: str
) -> None:
    before = api.get(f"/v8/Jobs/{job['id']}").json()
    refused = api.put(f"/v8/Jobs/{job['id']}", {"schedulePolicy": policy})
    assert refused.status_code == 400 and named in refused.json()["message"], refused.text
    assert api.get(f"/v8/Jobs/{job['id']}").json() == before
