"""Organizations, proxies, repositories and jobs: lists, writes, links, case-insensitive paths."""

from __future__ import annotations

import shutil
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from tests.conftest import BASE_URL, Api

# ---- organizations ----------------------------------------------------------------------------


def test_local_organization_lifecycle(api: Api, org_dir: Path) -> None:
    created = api.post(
        "/v2/Organizations",
        {"Type": "local", "name": "acme", "localSettings": {"path": str(org_dir)}},
    )
    assert created.status_code == 200
    org = created.json()
    assert (org["type"], org["name"], org["isBackedup"]) == ("Local", "acme", False)
    assert org["localSettings"] == {"path": str(org_dir)}
    assert org["_links"]["self"]["href"] == f"{BASE_URL}/v2/organizations/{org['id']}"
    assert org["_links"]["jobs"]["href"] == f"{BASE_URL}/v2/organizations/{org['id']}/jobs"
    assert org["_actions"] == {}
    assert api.get(f"/v2/Organizations/{org['id']}").json() == org
    assert [o["id"] for o in api.get("/v2/Organizations").json()] == [org["id"]]

    assert api.put(f"/v2/Organizations/{org['id']}", {"description": "the org"}).status_code == 200
    assert api.get(f"/v2/Organizations/{org['id']}").json()["description"] == "the org"

    assert api.delete(f"/v2/Organizations/{org['id']}").status_code == 204
    assert api.get(f"/v2/Organizations/{org['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (
            {"type": "Local", "name": "x", "localSettings": {"path": "/does/not/exist"}},
            "localSettings.path",
        ),
        (
            {"type": "Local", "name": "x", "localSettings": {"path": "relative/dir"}},
            "localSettings.path",
        ),
        ({"type": "Local", "name": "x"}, "localSettings.path"),
        ({"type": "Office365", "name": "x"}, "exchangeOnlineSettings"),
        ({"name": "x", "localSettings": {"path": "/"}}, "type"),
        ({"type": "Local", "localSettings": {"path": "/"}}, "name"),
    ],
)
def test_invalid_organizations_are_refused(api: Api, body: dict[str, Any], names: str) -> None:
    response = api.post("/v2/Organizations", body)
    assert response.status_code == 400
    assert names in response.json()["message"]
    assert api.get("/v2/Organizations").json() == []


def test_organization_names_are_unique(api: Api, org: dict[str, Any], org_dir: Path) -> None:
    response = api.post(
        "/v2/Organizations",
        {"type": "Local", "name": "EXAMPLE.test", "localSettings": {"path": str(org_dir)}},
    )
    assert response.status_code == 400 and "name" in response.json()["message"]


def test_organization_with_jobs_cannot_be_deleted(
    api: Api, job: dict[str, Any], org: dict[str, Any]
) -> None:
    response = api.delete(f"/v2/Organizations/{org['id']}")
    assert response.status_code == 409 and "job" in response.json()["message"]
    assert api.get(f"/v2/Organizations/{org['id']}").status_code == 200


# ---- proxies ----------------------------------------------------------------------------------


def test_the_local_proxy_is_online_while_it_heartbeats(
    api: Api, worker: ProxyWorker, clock: ManualClock
) -> None:
    proxies = api.get("/v2/Proxies").json()
    assert len(proxies) == 1
    proxy = proxies[0]
    assert proxy["id"] == worker.proxy_id
    assert proxy["status"] == "Online" and proxy["port"] == 9193 and proxy["threadsNumber"] == 64
    assert proxy["_links"]["self"]["href"] == f"{BASE_URL}/v2/proxies/{proxy['id']}"
    assert api.get(f"/v2/Proxies/{proxy['id']}").json() == proxy
    edited = api.put(f"/v2/Proxies/{proxy['id']}", {"description": "the box", "threadsNumber": 8})
    assert edited.status_code == 200
    assert (edited.json()["description"], edited.json()["threadsNumber"]) == ("the box", 8)
    assert api.put(f"/v2/Proxies/{proxy['id']}", {"threadsNumber": 0}).status_code == 400
    clock.advance(timedelta(minutes=2))  # a proxy that stopped heartbeating is Offline
    assert api.get(f"/v2/Proxies/{proxy['id']}").json()["status"] == "Offline"


# ---- repositories -----------------------------------------------------------------------------


def test_default_repository_reports_real_disk_space(repo: dict[str, Any], data_dir: Path) -> None:
    usage = shutil.disk_usage(data_dir)
    assert repo["path"] == str(data_dir / "repository")
    assert repo["capacity"] == usage.total
    assert 0 < repo["freeSpace"] <= usage.total
    assert repo["_links"]["proxy"]["href"].startswith(f"{BASE_URL}/v2/proxies/")


def test_repository_lifecycle(api: Api, tmp_path: Path) -> None:
    created = api.post(
        "/v2/BackupRepositories",
        {
            "name": "Long term",
            "path": str(tmp_path / "lt"),
            "description": "years",
            "retentionPeriodType": "daily",
            "dailyRetentionPeriod": "14",
            "retentionFrequencyType": "Daily",
            "dailyTime": "08:00:00",
            "dailyType": "Weekends",
        },
    )
    assert created.status_code == 200, created.text
    repo = created.json()
    assert (tmp_path / "lt").is_dir()
    assert (repo["retentionPeriodType"], repo["dailyRetentionPeriod"], repo["dailyType"]) == (
        "Daily",
        14,
        "Weekends",
    )
    assert without_free_space(api.get(f"/v2/BackupRepositories/{repo['id']}").json()) == (
        without_free_space(repo)
    )
    edited = api.put(f"/v2/BackupRepositories/{repo['id']}", {"dailyRetentionPeriod": 30}).json()
    assert edited["dailyRetentionPeriod"] == 30 and edited["dailyType"] == "Weekends"
    proxy_id = repo["proxyId"]
    assert len(api.get(f"/v2/BackupRepositories?proxyId={proxy_id}").json()) == 2
    assert api.delete(f"/v2/BackupRepositories/{repo['id']}").status_code == 204
    assert api.get(f"/v2/BackupRepositories/{repo['id']}").status_code == 404


def without_free_space(repo: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in repo.items() if k != "freeSpace"}  # other processes write to the disk


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"name": "x"}, "path"),
        ({"name": "x", "path": "relative"}, "path"),
        ({"name": "x", "path": "/proc/keepstone-cannot-create"}, "path"),
        ({"path": "/tmp/keepstone-x"}, "name"),
        ({"name": "x", "path": "/tmp/keepstone-y", "proxyId": "nope"}, "proxyId"),
        (
            {"name": "x", "path": "/tmp/keepstone-z", "dailyRetentionPeriod": 0},
            "dailyRetentionPeriod",
        ),
        (
            {"name": "x", "path": "/tmp/keepstone-w", "retentionPeriodType": "Weekly"},
            "retentionPeriodType",
        ),
    ],
)
def test_invalid_repositories_are_refused(api: Api, body: dict[str, Any], names: str) -> None:
    response = api.post("/v2/BackupRepositories", body)
    assert response.status_code == 400, response.text
    assert names in response.json()["message"]
    assert len(api.get("/v2/BackupRepositories").json()) == 1


def test_two_repositories_cannot_share_a_path(api: Api, repo: dict[str, Any]) -> None:
    response = api.post("/v2/BackupRepositories", {"name": "twin", "path": repo["path"]})
    assert response.status_code == 400 and "path" in response.json()["message"]


def test_repository_in_use_cannot_be_deleted(
    api: Api, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    response = api.delete(f"/v2/BackupRepositories/{repo['id']}")
    assert response.status_code == 409
    assert "test_job" in response.json()["message"]
    assert api.get(f"/v2/BackupRepositories/{repo['id']}").status_code == 200


# ---- jobs -------------------------------------------------------------------------------------


def test_job_representation_and_lists(
    api: Api, job: dict[str, Any], org: dict[str, Any], repo: dict[str, Any]
) -> None:
    assert (
        job["lastRun"] is None and job["lastStatus"] == "NotConfigured" and job["isEnabled"] is True
    )
    assert job["repositoryId"] == repo["id"] and job["proxyId"] == repo["proxyId"]
    links = job["_links"]
    assert links["self"]["href"] == f"{BASE_URL}/v2/jobs/{job['id']}"
    assert links["organization"]["href"] == f"{BASE_URL}/v2/organizations/{org['id']}"
    assert links["backupRepository"]["href"] == f"{BASE_URL}/v2/backuprepositories/{repo['id']}"
    for rel in ("self", "organization", "backupRepository", "jobsessions", "selectedItems"):
        path = links[rel]["href"].removeprefix(BASE_URL)
        assert api.get(path).status_code == 200, rel  # every link leads somewhere
    assert api.get("/v2/Jobs").json() == [job]
    assert api.get(f"/v2/Organizations/{org['id']}/Jobs").json() == [job]
    assert api.get("/v2/Organizations/00000000-0000-0000-0000-000000000000/Jobs").status_code == 404


def test_selected_and_excluded_items(api: Api, job: dict[str, Any]) -> None:
    items = [
        {
            "type": "User",
            "user": {"id": "u1", "displayName": "Alice"},
            "mailbox": "true",
            "oneDrive": False,
        }
    ]
    assert (
        api.put(
            f"/v2/Jobs/{job['id']}",
            {
                "backupType": "selectedItems",
                "selectedItems": items,
                "excludedItems": [{"type": "user", "user": {"id": "u2"}}],
            },
        ).status_code
        == 200
    )
    # Stored as sent (names and values normalised), each with an id it can be addressed by.
    (selected,) = api.get(f"/v2/Jobs/{job['id']}/SelectedItems").json()
    assert str(uuid.UUID(selected.pop("id"))) and selected.pop("_links")
    assert selected == {
        "type": "User",
        "user": {"id": "u1", "displayName": "Alice"},
        "mailbox": True,
        "oneDrive": False,
    }
    (excluded,) = api.get(f"/v2/Jobs/{job['id']}/ExcludedItems").json()
    assert {k: v for k, v in excluded.items() if k not in ("id", "_links")} == {
        "type": "User",
        "user": {"id": "u2"},
    }


def test_create_job_requires_name_and_repository(
    api: Api, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    missing_name = api.post(f"/v2/Organizations/{org['id']}/Jobs", {"repositoryId": repo["id"]})
    assert missing_name.status_code == 400 and "name" in missing_name.json()["message"]
    missing_repo = api.post(f"/v2/Organizations/{org['id']}/Jobs", {"name": "x"})
    assert missing_repo.status_code == 400 and "repositoryId" in missing_repo.json()["message"]
    unknown_org = api.post("/v2/Organizations/nope/Jobs", {"name": "x", "repositoryId": repo["id"]})
    assert unknown_org.status_code == 404
    assert api.get("/v2/Jobs").json() == []


def test_create_job_with_run_now_and_full_policy(
    api: Api, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    created = api.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        {
            "name": "nightly",
            "repositoryId": repo["id"],
            "isRun": True,
            "schedulePolicy": {"type": "Periodically", "periodicallyEvery": "Minutes30"},
        },
    )
    assert created.status_code == 200
    job = created.json()
    assert job["schedulePolicy"]["periodicallyEvery"] == "Minutes30"
    assert job["nextRun"] == "2026-06-10T10:30:00Z"
    assert len(api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()) == 1


def test_delete_job(api: Api, job: dict[str, Any]) -> None:
    assert api.delete(f"/v2/Jobs/{job['id']}").status_code == 204
    assert api.get(f"/v2/Jobs/{job['id']}").status_code == 404
    assert api.delete(f"/v2/Jobs/{job['id']}").status_code == 404


# ---- paths ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v2/jobs", "/V2/JOBS", "/v2/Jobs", "/v2/jObS"])
def test_paths_match_case_insensitively(api: Api, job: dict[str, Any], path: str) -> None:
    assert api.get(path).json() == [job]
    assert api.get(f"{path}/{job['id'].upper()}").status_code in (200, 404)
    assert api.get(f"{path}/{job['id']}/jobsessions").status_code == 200
