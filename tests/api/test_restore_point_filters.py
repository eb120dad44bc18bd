"""``GET /vN/RestorePoints``'s filters as the v6-v8 specs declare them: none is silently
ignored (a dashboard asking for one user's or one team's points got every point)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from tests.conftest import Api
from tests.local_org import api, backup_proxy, org_job, organization, run_job

__all__ = ["api", "backup_proxy", "org_job", "organization"]  # fixtures


def _ids(api: Api, query: str) -> list[str]:
    response = api.get(f"/v8/RestorePoints?{query}")
    assert response.status_code == 200, response.text
    return [point["id"] for point in response.json()["results"]]


def test_every_declared_filter_is_applied_or_refused(
    api: Api,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    for _ in range(2):
        run_job(api, org_job, backup_proxy)
        clock.advance(timedelta(hours=1))
    other = api.post("/v2/BackupRepositories", {"name": "copies", "path": str(tmp_path / "copies")})
    assert other.status_code == 200, other.text
    schedule = {"type": "Periodically", "periodicallyEvery": "Hours8"}
    body = {"backupJobId": org_job["id"], "repositoryId": other.json()["id"]}
    copy = api.post("/v6/CopyJobs", body | {"schedulePolicy": schedule})
    assert copy.status_code == 200, copy.text
    assert api.post(f"/v8/CopyJobs/{copy.json()['id']}/start").status_code == 200
    assert backup_proxy.run_one()

    points = api.get("/v8/RestorePoints?orderAsc=true").json()["results"]
    assert len(points) == 3
    first, second = (p for p in points if not p["isCopy"])
    (copied,) = (p for p in points if p["isCopy"])
    assert copied["repositoryId"] == other.json()["id"]
    assert api.get(f"/v8/RestorePoints/{copied['id']}").json()["isCopy"] is True

    # from and to: inclusive, by the point's backup time (an instant without a zone is UTC)
    everything = {p["id"] for p in points}
    since_second = _ids(api, f"from={second['backupTime']}")
    assert set(since_second) == everything - {first["id"]}
    assert _ids(api, f"to={first['backupTime']}") == [first["id"]]
    naive = first["backupTime"].removesuffix("Z")
    assert _ids(api, f"from={naive}&to={naive}") == [first["id"]]
    assert set(_ids(api, "isCopy=true")) == {copied["id"]}
    assert set(_ids(api, "isCopy=false")) == {first["id"], second["id"]}
    # what Keepstone never stores: no point; asked for not, every point
    for query in ("isLongTermCopy=true", "isRetrieved=true", "groupId=g", "siteId=s", "teamId=t"):
        assert _ids(api, query) == [], query
    assert set(_ids(api, "isLongTermCopy=false&isRetrieved=false")) == everything
    by_user = api.get("/v8/RestorePoints?userId=alice")
    assert by_user.status_code == 400 and "userId" in by_user.json()["message"]
    bad = api.get("/v8/RestorePoints?from=yesterday")
    assert bad.status_code == 400 and "from" in bad.text
