"""The protected-object reports (``vms_overview``, ``processed_vms``): the maths as properties of
pure functions, and the figures a real run produces, served XSD-valid."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import reports, restore_points
from keepstone.services.context import Context
from keepstone.services.reports import PointFacts, TaskFacts
from tests.conftest import ADMIN_PASSWORD, Api
from tests.em.conftest import Em, N, basic
from tests.local_org import Organization, api, backup_proxy, org_job, organization, run_job

__all__ = ["api", "backup_proxy", "org_job", "organization"]  # fixtures

DAY0 = datetime(2026, 6, 1, tzinfo=UTC)
STATUSES = st.sampled_from(["Running", "Success", "Warning", "Failed", "Stopped"])
tasks_strategy = st.lists(
    st.builds(
        TaskFacts,
        object_id=st.sampled_from(["u1", "u2", "u3", "u4"]),
        status=STATUSES,
        session_id=st.sampled_from(["s1", "s2", "s3"]),
        session_status=STATUSES,
        creation_time=st.integers(0, 20 * 24).map(lambda h: DAY0 + timedelta(hours=h)),
        end_time=st.none() | st.integers(0, 20 * 24).map(lambda h: DAY0 + timedelta(hours=h)),
        total_bytes=st.integers(0, 10**9),
        written_bytes=st.integers(0, 10**9),
    ),
    max_size=30,
)
points_strategy = st.lists(
    st.builds(
        PointFacts,
        job_id=st.sampled_from(["j1", "j2"]),
        backup_time=st.integers(0, 1000).map(lambda h: DAY0 + timedelta(hours=h)),
        session_id=st.sampled_from(["s1", "s2", "s3"]),
    ),
    max_size=3,
    unique_by=lambda p: p.session_id,  # one restore point per run
)


def logged_on(client: TestClient) -> Em:
    response = client.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
    assert response.status_code == 201, response.text
    return Em(client, response.headers["X-RestSvcSessionId"])


@given(tasks_strategy, points_strategy)
def test_vms_overview_counts_users_and_splits_sizes_without_loss(
    tasks: list[TaskFacts], points: list[PointFacts]
) -> None:
    f = reports.vms_overview(tasks, points)
    assert f.protected == len({t.object_id for t in tasks})
    assert 0 <= f.backed_up <= f.protected
    assert f.backed_up == len({t.object_id for t in tasks if t.backed_up})
    assert f.restore_points == len(points)
    with_points = {p.session_id for p in points}
    assert f.full_points_size + f.incremental_points_size == sum(
        t.written_bytes for t in tasks if t.backed_up and t.session_id in with_points
    )
    assert 0 <= f.success_percents <= 100
    assert f.source_size <= sum(t.total_bytes for t in tasks if t.backed_up)
    if all(t.backed_up for t in tasks) and tasks:
        assert f.success_percents == 100


def test_vms_overview_full_is_each_jobs_first_point_and_size_is_each_users_latest() -> None:
    def task(user: str, session: str, hour: int, total: int, written: int) -> TaskFacts:
        at = DAY0 + timedelta(hours=hour)
        return TaskFacts(user, "Success", session, "Success", at, at, total, written)

    tasks = [task("a", "s1", 0, 100, 100), task("a", "s2", 5, 120, 20), task("b", "s2", 5, 7, 7)]
    points = [PointFacts("j", DAY0, "s1"), PointFacts("j", DAY0 + timedelta(hours=5), "s2")]
    f = reports.vms_overview(tasks, points)
    assert (f.full_points_size, f.incremental_points_size) == (100, 27)
    assert (f.source_size, f.backed_up, f.protected, f.success_percents) == (127, 2, 2, 100)
    failed = TaskFacts("c", "Failed", "s3", "Warning", DAY0, DAY0, 0, 0)
    assert reports.vms_overview([*tasks, failed], points).success_percents == 75


@given(tasks_strategy, st.integers(0, 25), st.integers(-12, 12))
def test_processed_per_day_has_one_day_each_newest_first_counting_distinct_users(
    tasks: list[TaskFacts], offset_days: int, offset_hours: int
) -> None:
    tz = timezone(timedelta(hours=offset_hours))
    today = date(2026, 6, 1) + timedelta(days=offset_days)
    days = reports.processed_per_day(tasks, today, tz)
    assert [d.start.date() for d in days] == [today - timedelta(days=n) for n in range(7)]
    assert all(d.start.utcoffset() == timedelta(hours=offset_hours) for d in days)
    for day in days:
        users = {
            t.object_id
            for t in tasks
            if t.backed_up
            and t.end_time is not None
            and day.start <= t.end_time < day.start + timedelta(days=1)
        }
        assert day.backed_up == len(users)


def test_the_reports_after_a_real_run_count_its_users_and_bytes(
    api: Api,
    em: Em,
    ctx: Context,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
) -> None:
    empty = em.xml("GET", "/api/reports/summary/vms_overview")
    assert empty.findtext("e:ProtectedVms", namespaces=N) == "0"
    os.mkfifo(organization.root / "alice" / "OneDrive" / "pipe")  # alice: Warning
    first = run_job(api, org_job, backup_proxy)
    clock.advance(timedelta(days=1))
    organization.file("bob", "new.txt", b"new since yesterday\n")
    run_job(api, org_job, backup_proxy)
    em = logged_on(em.client)  # the logon session of a day ago has expired

    overview = em.xml("GET", "/api/reports/summary/vms_overview")

    def figure(name: str) -> int:
        return int(overview.findtext(f"e:{name}", namespaces=N) or "-1")

    points = restore_points.list_points(ctx, job_id=org_job["id"])
    assert (figure("ProtectedVms"), figure("BackedUpVms"), figure("ReplicatedVms")) == (2, 2, 0)
    assert figure("RestorePoints") == len(points) == 2
    latest = max(points, key=lambda p: p.backup_time)
    assert figure("SourceVmsSize") == latest.size  # each user as of their latest backup
    assert figure("FullBackupPointsSize") > figure("IncrementalBackupPointsSize") > 0
    assert figure("SuccessBackupPercents") == 100  # a Warning user is still backed up
    assert first["id"] != latest.session_id

    processed = em.xml("GET", "/api/reports/summary/processed_vms")
    days = processed.findall("e:Day", N)
    assert len(days) == 7
    assert [d.get("BackupedVms") for d in days[:3]] == ["2", "2", "0"]
    assert {d.get("ReplicatedVms") for d in days} == {"0"}
    assert days[0].get("Timestamp") == f"{clock.now().date().isoformat()}T00:00:00+00:00"
    as_json = em.request(
        "GET", "/api/reports/summary/processed_vms", headers={"Accept": "application/json"}
    )
    assert as_json.status_code == 200
