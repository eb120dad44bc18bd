"""The Restore page's calendar of restore points (issue 16, Restore: "a point in time (a calendar
of restore points)"): a month's days that hold points of the organization or job chosen link to
that day's points, the newest point's month by default, previous/next month links, and the days
computed by one aggregate query whatever the number of points."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from keepstone.services import auth
from keepstone.services.context import Context
from tests.conftest import Api
from tests.listing_rows import add_points_at
from tests.rbac_world import OPERATOR_PASSWORD
from tests.test_console import console_login
from tests.work import catalog_work

DAY_LINK = re.compile(r'<a href="(/restore\?[^"]*day=(\d{4}-\d\d-\d\d))"')
CAPTION = re.compile(r"<caption[^>]*>Restore points in ([^<]+)</caption>")
SHOWN = re.compile(r"<td>(\d{4}-\d\d-\d\d \d\d:\d\d)</td>")


def _points(
    ctx: Context, repo_id: str, org_id: str, job_id: str | None, times: Sequence[datetime]
) -> None:
    add_points_at(ctx, repo_id, org_id, [job_id], times)


def _days(html: str) -> dict[str, str]:
    """The calendar's linked days: day -> link (the page's links, unescaped)."""
    return {day: link.replace("&amp;", "&") for link, day in DAY_LINK.findall(html)}


def _at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def test_the_days_holding_points_link_to_that_days_points(
    client: TestClient,
    api: Api,
    ctx: Context,
    org: dict[str, Any],
    job: dict[str, Any],
    repo: dict[str, Any],
    tmp_path: Path,
) -> None:
    (tmp_path / "other" / "bob" / "Mail").mkdir(parents=True)
    settings = {"path": str(tmp_path / "other")}
    other = api.post(
        "/v2/Organizations", {"type": "Local", "name": "other.test", "localSettings": settings}
    ).json()
    _points(ctx, repo["id"], org["id"], job["id"], [_at("2026-03-02"), _at("2026-03-02", 13)])
    _points(ctx, repo["id"], org["id"], None, [_at("2026-03-15")])
    _points(ctx, repo["id"], org["id"], job["id"], [_at("2026-04-01")])
    _points(ctx, repo["id"], other["id"], None, [_at("2026-03-20"), _at("2026-04-03")])
    console_login(client)

    newest = client.get("/restore")  # the newest point's month by default
    assert CAPTION.findall(newest.text) == ["April 2026"]
    assert set(_days(newest.text)) == {"2026-04-01", "2026-04-03"}
    assert "<td>2</td>" in newest.text  # a day without points is plain text
    assert 'href="/restore?month=2026-03" rel="prev"' in newest.text
    assert 'href="/restore?month=2026-05" rel="next"' in newest.text

    march = client.get(f"/restore?organization={org['id']}&month=2026-03")
    assert CAPTION.findall(march.text) == ["March 2026"]
    days = _days(march.text)
    assert set(days) == {"2026-03-02", "2026-03-15"}  # not the other organization's 20th
    assert days["2026-03-02"] == f"/restore?organization={org['id']}&day=2026-03-02"
    assert f'href="/restore?organization={org["id"]}&amp;month=2026-02"' in march.text

    of_job = client.get(f"/restore?job={job['id']}&month=2026-03")
    assert set(_days(of_job.text)) == {"2026-03-02"}

    day = client.get(days["2026-03-02"])  # that day's points only, its month shown
    assert CAPTION.findall(day.text) == ["March 2026"]
    assert 'aria-current="date"' in day.text
    expected = [_at("2026-03-02", h).astimezone(ctx.tz) for h in (13, 12)]
    assert SHOWN.findall(day.text) == [t.strftime("%Y-%m-%d %H:%M") for t in expected]

    for bad in ("month=2026-13", "month=soon", "day=2026-02-30"):
        refused = client.get(f"/restore?{bad}")
        assert refused.status_code == 400, bad
        assert bad.split("=")[0] in refused.text

    # a restore operator of the first organization: its days only, whatever it asks
    auth.add_user(ctx, "operator", OPERATOR_PASSWORD, auth.Role.NONE)
    role = {"name": "desk", "operators": [{"type": "User", "user": {"name": "operator"}}]}
    created = api.post(f"/v8/Organizations/{org['id']}/RbacRoles", role | {"access": "Restore"})
    assert created.status_code == 201, created.text
    console_login(client, "operator", OPERATOR_PASSWORD)
    assert set(_days(client.get("/restore?month=2026-03").text)) == {"2026-03-02", "2026-03-15"}
    theirs = client.get(f"/restore?organization={other['id']}&month=2026-04").text
    assert _days(theirs) == {}


def test_the_calendar_is_one_aggregate_query_for_n_and_4n_points(
    client: TestClient, ctx: Context, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    """The month's days come from one query returning at most a row a day: the same
    statements and no point loaded for N and 4N points in the month."""
    start = datetime(2026, 5, 1, tzinfo=UTC)
    n = 40

    def add(count: int) -> None:
        step = timedelta(days=30) / count
        _points(ctx, repo["id"], org["id"], None, [start + step * i for i in range(count)])

    add(n)
    console_login(client)
    path = f"/restore?organization={org['id']}&month=2026-05&day=2026-05-01"
    client.get(path)  # warm: the logon session's use is recorded at most once a second

    def work() -> tuple[int, int, set[str]]:
        with catalog_work(ctx) as counted:
            page = client.get(path)
        assert page.status_code == 200
        return counted.count, counted.rows_loaded, set(_days(page.text))

    small = work()
    add(3 * n)
    large = work()
    assert len(small[2]) == 30 and small[2] == large[2]  # the 1st..30th hold points
    assert small[0] == large[0]
    # the day's points (one page at most) and the session's rows, never the month's points
    assert small[1] <= 26 + 10 and large[1] <= 26 + 10
