"""One server, every version: what differs between /v2 and /v8 and what stays the same."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from tests.conftest import ADMIN_PASSWORD, Api
from tests.local_org import backup_proxy, org_job, organization, run_job

__all__ = ["backup_proxy", "org_job", "organization"]  # fixtures
VERSIONS = range(2, 9)


def test_unknown_versions_are_404_and_served_ones_need_a_token(client: TestClient) -> None:
    for version in (1, 9, 10):
        response = client.get(f"/v{version}/Jobs")
        assert response.status_code == 404 and response.json()["message"]
    for version in VERSIONS:
        assert client.get(f"/v{version}/Jobs").status_code == 401
    for version in (6, 7, 8):
        unauthenticated = client.get(f"/v{version}/ServiceInstance")
        assert unauthenticated.status_code == 401
        assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/v9/ServiceInstance").status_code == 404
    assert client.get("/v5/ServiceInstance").status_code == 404  # the resource came with v6


@pytest.mark.parametrize("version", VERSIONS)
def test_token_in_every_version(client: TestClient, version: int) -> None:
    response = client.post(
        f"/v{version}/token",
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
        headers={"Accept": "*/*"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    issued, expires = (datetime.fromisoformat(body[k]) for k in (".issued", ".expires"))
    assert (expires - issued).total_seconds() == body["expires_in"] == 3600
    assert body["userName"] == "admin" and body["token_type"] == "bearer"
    assert Api(client, body["access_token"]).get(f"/v{version}/Jobs").status_code == 200


def test_logout_revokes_the_token_from_v7(client: TestClient) -> None:
    def fresh() -> Api:
        form = {"username": "admin", "password": ADMIN_PASSWORD}
        return Api(client, client.post("/v8/token", data=form).json()["access_token"])

    assert fresh().post("/v6/token/logout").status_code == 404
    for version, status in ((7, 200), (8, 204)):
        caller = fresh()
        assert caller.post(f"/v{version}/token/logout").status_code == status
        assert caller.get(f"/v{version}/Jobs").status_code == 401
    assert Api(client, None).post("/v8/token/logout").status_code == 401


def test_a_read_only_user_can_log_out(client: TestClient, reader: Api) -> None:
    assert reader.post("/v8/token/logout").status_code == 204
    assert reader.get("/v8/Jobs").status_code == 401


def test_job_representation_by_version(api: Api, job: dict[str, Any]) -> None:
    shapes = {v: api.get(f"/v{v}/Jobs/{job['id']}").json() for v in VERSIONS}
    for version, shape in shapes.items():
        assert shape["id"] == job["id"] and shape["name"] == job["name"]
        assert ("proxyId" in shape) == (version <= 5)
        assert ("lastBackup" in shape) == (version >= 7)
        assert ("organizationId" in shape) == (version >= 8)
        assert ("selectedItems" in shape) == (version in (6, 7))
        assert shape["_links"]["self"]["href"].endswith(f"/v{version}/jobs/{job['id']}")
    assert shapes[8]["eTag"] == int(api.get(f"/v8/Jobs/{job['id']}").headers["etag"].strip('"'))
    # Lists: bare arrays up to v7, a page in v8.
    assert isinstance(api.get("/v7/Jobs").json(), list)
    page = api.get("/v8/Jobs").json()
    assert page["results"][0]["id"] == job["id"] and page["limit"] == 30


def test_actions_moved_from_action_to_paths_in_v6(api: Api, job: dict[str, Any]) -> None:
    assert api.post(f"/v5/Jobs/{job['id']}/Action", {"disable": None}).status_code == 200
    assert api.get(f"/v5/Jobs/{job['id']}").json()["isEnabled"] is False
    assert api.post(f"/v5/Jobs/{job['id']}/enable").status_code == 404
    assert api.post(f"/v6/Jobs/{job['id']}/Action", {"enable": None}).status_code == 404
    assert api.post(f"/v6/Jobs/{job['id']}/enable").status_code == 204
    assert api.get(f"/v6/Jobs/{job['id']}").json()["isEnabled"] is True


def test_run_now_is_isrun_in_v2_and_runnow_from_v3(api: Api, job: dict[str, Any]) -> None:
    assert api.put(f"/v3/Jobs/{job['id']}", {"runNow": True}).status_code == 200
    sessions = api.get(f"/v3/Jobs/{job['id']}/JobSessions").json()
    assert len(sessions) == 1 and sessions[0]["status"] == "Queued"
    assert api.put(f"/v6/Jobs/{job['id']}", {"description": "x"}).status_code == 204


def test_v8_creates_jobs_at_jobs_with_201(
    api: Api, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    body = {"name": "v8 job", "repositoryId": repo["id"], "organizationId": org["id"]}
    created = api.post("/v8/Jobs", body)
    assert created.status_code == 201 and created.json()["organizationId"] == org["id"]
    missing = api.post("/v8/Jobs", {"name": "x", "repositoryId": repo["id"]})
    assert missing.status_code == 400 and "organizationId" in missing.json()["message"]
    assert missing.json()["errorCode"] == "ParameterValidationFailure"
    assert api.post(f"/v8/Organizations/{org['id']}/Jobs", body).status_code == 404
    assert api.post("/v7/Jobs", body).status_code == 405


def test_error_codes_only_in_v8(api: Api) -> None:
    nowhere = "00000000-0000-0000-0000-000000000000"
    assert api.get(f"/v8/Jobs/{nowhere}").json()["errorCode"] == "ResourceNotFound"
    for version in (2, 6, 7):
        assert set(api.get(f"/v{version}/Jobs/{nowhere}").json()) == {"message"}


def test_sessions_statistics_log_items_and_paging_by_version(
    api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker, clock: ManualClock
) -> None:
    for _ in range(3):
        run_job(api, org_job, backup_proxy)
    v2 = api.get("/v2/JobSessions").json()
    assert isinstance(v2, list) and isinstance(v2[0]["statistics"]["readRate"], str)
    assert isinstance(api.get("/v4/JobSessions").json(), list)
    v5 = api.get("/v5/JobSessions?limit=2").json()
    assert v5["totalCount"] == 3 and len(v5["results"]) == 2
    assert isinstance(v5["results"][0]["statistics"]["readRateBytesPS"], int)
    assert set(v5["_links"]) == {"first", "self", "next"}

    # setId pins the set: a run that starts later does not shift the pages of the listed set.
    clock.advance(timedelta(seconds=1))
    run_job(api, org_job, backup_proxy)
    second = api.get(f"/v8/JobSessions?offset=2&limit=2&setId={v5['setId']}").json()
    assert second["totalCount"] == 3 and len(second["results"]) == 1
    assert set(second["_links"]) == {"first", "prev", "self"}
    assert api.get("/v8/JobSessions").json()["totalCount"] == 4
    assert api.get(f"/v8/JobSessions?setId={uuid.uuid4()}").status_code == 400
    assert api.get("/v8/JobSessions?limit=10001").status_code == 400
    assert api.get("/v8/JobSessions?status=Succeeded").json()["totalCount"] == 4
    assert api.get("/v8/JobSessions?status=Failed").json()["totalCount"] == 0
    assert api.get("/v8/JobSessions?status=Sideways").status_code == 400

    session = v2[0]["id"]
    v7_items = api.get(f"/v7/JobSessions/{session}/LogItems").json()["results"]
    v8_items = api.get(f"/v8/JobSessions/{session}/LogItems").json()["results"]
    assert v7_items[0]["title"].startswith("[") and "type" not in v7_items[0]
    assert v8_items[0]["type"] in ("Running", "Success") and v8_items[0]["message"]
    assert api.get(f"/v8/JobSessions/{session}/LogItems?type=Error").json()["results"] == []
    processed = api.get(f"/v7/JobSessions/{session}/ProcessedObjects").json()["results"]
    assert sorted(p["name"] for p in processed) == ["alice", "bob"]
    assert api.get(f"/v6/JobSessions/{session}/ProcessedObjects").status_code == 404


def test_repository_fields_renamed_in_v6(api: Api, repo: dict[str, Any]) -> None:
    v5 = api.get(f"/v5/BackupRepositories/{repo['id']}").json()
    v6 = api.get(f"/v6/BackupRepositories/{repo['id']}").json()
    assert v5["capacity"] == v6["capacityBytes"] > 0 and "capacity" not in v6
    assert api.put(f"/v5/BackupRepositories/{repo['id']}", {"description": "a"}).json()
    assert api.put(f"/v7/BackupRepositories/{repo['id']}", {"description": "b"}).content == b""
    assert api.put(f"/v8/BackupRepositories/{repo['id']}", {"description": "c"}).status_code == 204
    assert api.get(f"/v2/BackupRepositories/{repo['id']}").json()["description"] == "c"
