"""The API face of remote proxies and pools: ``POST /vN/Proxies``, ``Remove``, v8 maintenance,
status/version/load from the proxy's row, v8 ``/ProxyPools`` and pool-owned repositories.
Every answer of v6-v8 is checked against the vendor's schema; bad input is a 4xx naming what
was wrong, and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from keepstone.clock import ManualClock
from keepstone.proxy.load import Load
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import catalog, proxies
from keepstone.services.context import Context
from tests.conftest import Api
from tests.contract.openapi import spec
from tests.local_org import Organization, backup_proxy, organization
from tests.s3_server import MotoServer, account_body, make_bucket, moto, storage_body

__all__ = ["backup_proxy", "moto", "organization"]  # fixtures


def _checked(api: Api, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    """A call whose answer must have ``status`` and, for v6-v8, match the vendor's schema."""
    if method == "delete" and body is not None:
        response = api.client.request("DELETE", path, json=body, headers=api._headers(None))
    elif method in ("get", "delete"):
        response = getattr(api, method)(path)
    else:
        response = getattr(api, method)(path, body)
    assert response.status_code == status, response.text
    version = int(path.split("/")[1][1:])
    if version >= 6:
        spec(version).check_response(
            method,
            path,
            response.status_code,
            response.headers.get("content-type", ""),
            response.content,
        )
    return response.json() if response.content else None


def _add(api: Api, name: str, version: int = 8, **extra: Any) -> dict[str, Any]:
    status = 201 if version >= 8 else 200
    body = _checked(api, "post", f"/v{version}/Proxies", {"hostName": name} | extra, status)
    assert isinstance(body, dict)
    return body


def _local(api: Api) -> dict[str, Any]:
    return next(p for p in api.rows("/v8/Proxies") if p["type"] == "Local")


def test_added_proxies_await_registration(api: Api) -> None:
    added = _add(api, "proxy-1.example.test", description="rack 4", port=9300)
    assert added["hostName"] == "proxy-1.example.test" and added["port"] == 9300
    assert (added["type"], added["status"], added["maintenanceModeState"]) == (
        "Workgroup",
        "Offline",  # nothing has registered as it yet
        "Disabled",
    )
    assert added["version"] is None and added["cpuUsagePercent"] is None
    assert "proxyPoolId" not in added
    # v8's role and internet proxy; a remote proxy's system is not reported, so not shown
    assert (added["role"], added["useInternetProxy"]) == (["Processor"], False)
    assert "operatingSystem" not in added
    local = next(p for p in api.rows("/v8/Proxies") if p["type"] == "Local")
    assert local["operatingSystem"] == "Linux" and local["role"] == ["Processor"]
    v6 = _add(api, "proxy-2.example.test", version=6, threadsNumber=8)
    assert v6["threadsNumber"] == 8 and "maintenanceModeState" not in v6
    v7 = _checked(api, "get", f"/v7/Proxies/{added['id']}")
    assert v7["threadsNumber"] == proxies.PROXY_THREADS
    assert {p["hostName"] for p in api.rows("/v8/Proxies")} >= {
        "proxy-1.example.test",
        "proxy-2.example.test",
    }


def test_bad_proxies_are_refused_and_change_nothing(api: Api) -> None:
    _add(api, "taken.example.test")
    before = len(api.rows("/v8/Proxies"))
    cases = [
        ({}, 400, "hostName is required"),
        ({"hostName": ""}, 400, "hostName"),
        ({"hostName": "two words"}, 400, "spaces"),
        ({"hostName": "x" * 300}, 400, "hostName"),
        ({"hostName": "ok.example.test", "port": 70000}, 400, "port"),
        ({"hostName": "TAKEN.example.test"}, 409, "already exists"),
        ({"hostName": 5}, 400, "hostName"),
    ]
    for body, status, words in cases:
        response = api.post("/v8/Proxies", body)
        assert response.status_code == status, (body, response.text)
        assert words in response.text, (body, response.text)
    assert api.post("/v6/Proxies", {"hostName": "t", "threadsNumber": 0}).status_code == 400
    assert len(api.rows("/v8/Proxies")) == before


def test_status_version_and_load_come_from_the_row(
    api: Api, ctx: Context, clock: ManualClock
) -> None:
    added = _add(api, "proxy-1.example.test")
    catalog.heartbeat(ctx, added["id"], load=Load(12.5, 40.0), version="1.2.3", active_runs=0)
    shown = _checked(api, "get", f"/v8/Proxies/{added['id']}")
    assert (shown["status"], shown["version"]) == ("Online", "1.2.3")
    assert (shown["cpuUsagePercent"], shown["memoryUsagePercent"]) == (12.5, 40.0)
    clock.advance(proxies.HEARTBEAT_STALE_AFTER)  # two lease periods without a heartbeat
    assert _checked(api, "get", f"/v8/Proxies/{added['id']}")["status"] == "Offline"


def test_maintenance_mode(api: Api, ctx: Context) -> None:
    added = _add(api, "proxy-1.example.test")
    base = f"/v8/Proxies/{added['id']}/maintenance"
    _checked(api, "post", f"{base}/enable", {}, 204)
    assert _checked(api, "get", f"/v8/Proxies/{added['id']}")["maintenanceModeState"] == "Enabled"
    assert catalog.get_proxy(ctx, added["id"]).maintenance
    _checked(api, "post", f"{base}/disable", None, 204)
    assert _checked(api, "get", f"/v8/Proxies/{added['id']}")["maintenanceModeState"] == "Disabled"
    missing = api.post("/v8/Proxies/00000000-0000-0000-0000-000000000001/maintenance/enable")
    assert missing.status_code == 404 and "does not exist" in missing.text
    assert api.post(f"/v7/Proxies/{added['id']}/maintenance/enable").status_code == 404


def test_removing_proxies(api: Api, tmp_path: Path) -> None:
    spare, used = _add(api, "spare.example.test"), _add(api, "used.example.test")
    repo = {"name": "on used", "path": str(tmp_path / "on-used"), "proxyId": used["id"]}
    assert api.post("/v8/BackupRepositories", repo).status_code == 201
    refused = api.post(f"/v8/Proxies/{used['id']}/Remove", {"force": True})
    assert refused.status_code == 409 and "used by repository 'on used'" in refused.text
    local = api.post(f"/v6/Proxies/{_local(api)['id']}/Remove")
    assert local.status_code == 409 and "built into a server" in local.text
    _checked(api, "post", f"/v7/Proxies/{spare['id']}/Remove", {"force": False}, 200)
    assert api.get(f"/v8/Proxies/{spare['id']}").status_code == 404
    assert api.get(f"/v8/Proxies/{used['id']}").status_code == 200


def test_proxy_pools(api: Api) -> None:
    a, b, c = (_add(api, f"{n}.example.test") for n in "abc")
    body = {"name": "pool", "description": "two", "proxyIds": [{"proxyId": a["id"]}]}
    pool = _checked(api, "post", "/v8/ProxyPools", body, 201)
    assert (pool["name"], pool["description"]) == ("pool", "two")
    assert [p["id"] for p in _checked(api, "get", "/v8/ProxyPools")["results"]] == [pool["id"]]
    assert _checked(api, "get", f"/v8/ProxyPools/{pool['id']}") == pool
    members = f"/v8/ProxyPools/{pool['id']}/proxies"
    _checked(api, "post", members, [{"proxyId": b["id"]}], 204)
    listed = _checked(api, "get", members)["results"]
    assert {p["id"] for p in listed} == {a["id"], b["id"]}
    assert {p["proxyPoolId"] for p in listed} == {pool["id"]}
    _checked(api, "delete", members, [{"proxyId": a["id"]}], 204)
    assert [p["id"] for p in _checked(api, "get", members)["results"]] == [b["id"]]
    edit = {"name": "renamed", "description": "", "proxyIds": [{"proxyId": c["id"]}]}
    _checked(api, "put", f"/v8/ProxyPools/{pool['id']}", edit, 204)
    assert _checked(api, "get", f"/v8/ProxyPools/{pool['id']}")["name"] == "renamed"
    assert [p["id"] for p in _checked(api, "get", members)["results"]] == [c["id"]]
    assert "proxyPoolId" not in _checked(api, "get", f"/v8/Proxies/{b['id']}")
    _checked(api, "delete", f"/v8/ProxyPools/{pool['id']}", None, 204)
    assert api.get(f"/v8/ProxyPools/{pool['id']}").status_code == 404
    assert "proxyPoolId" not in _checked(api, "get", f"/v8/Proxies/{c['id']}")
    assert api.get("/v7/ProxyPools").status_code == 404


def test_bad_pools_are_refused_and_change_nothing(api: Api) -> None:
    a, b = _add(api, "a.example.test"), _add(api, "b.example.test")
    pool = _checked(api, "post", "/v8/ProxyPools", _pool("pool", a), 201)
    cases = [
        ({"description": "", "proxyIds": [{"proxyId": a["id"]}]}, 400, "name is required"),
        (_pool("empty") | {"proxyIds": []}, 400, "at least one proxy"),
        (_pool("Pool", b), 400, "already taken"),
        (_pool("ghost") | {"proxyIds": [{"proxyId": "nope"}]}, 400, "proxy 'nope' does not"),
        (_pool("steal", a), 409, "another proxy pool"),
        (_pool("bad ids") | {"proxyIds": "x"}, 400, "proxyIds"),
    ]
    for body, status, words in cases:
        response = api.post("/v8/ProxyPools", body)
        assert response.status_code == status, (body, response.text)
        assert words in response.text, (body, response.text)
    assert [p["id"] for p in api.get("/v8/ProxyPools").json()["results"]] == [pool["id"]]
    members = f"/v8/ProxyPools/{pool['id']}/proxies"
    assert api.post(members, [{"proxyId": "nope"}]).status_code == 400
    assert api.post(members, {"proxyId": b["id"]}).status_code == 400  # an array is expected
    outsider = api.client.request(
        "DELETE", members, json=[{"proxyId": b["id"]}], headers=api._headers(None)
    )
    assert outsider.status_code == 400 and "is not in proxy pool" in outsider.text
    assert [p["id"] for p in api.get(members).json()["results"]] == [a["id"]]
    assert api.get("/v8/ProxyPools/nope").status_code == 404


def _pool(name: str, *members: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "description": "", "proxyIds": [{"proxyId": m["id"]} for m in members]}


def test_a_pool_owns_repositories(api: Api, ctx: Context, tmp_path: Path) -> None:
    a, b = _add(api, "a.example.test"), _add(api, "b.example.test")
    pool = _checked(api, "post", "/v8/ProxyPools", _pool("pool", a, b), 201)
    body = {"name": "pooled", "path": str(tmp_path / "pooled"), "proxyPoolId": pool["id"]}
    repo = _checked(api, "post", "/v8/BackupRepositories", body, 201)
    assert repo["proxyPoolId"] == pool["id"] and repo["proxyId"] in {a["id"], b["id"]}
    assert catalog.get_repository(ctx, repo["id"]).proxy_pool_id == pool["id"]
    listed = api.rows(f"/v8/BackupRepositories?proxyPoolId={pool['id']}")
    assert [r["id"] for r in listed] == [repo["id"]]
    refused = api.delete(f"/v8/ProxyPools/{pool['id']}")
    assert refused.status_code == 409 and "owns repository 'pooled'" in refused.text
    named = body | {"name": "named", "path": str(tmp_path / "named"), "proxyId": b["id"]}
    assert _checked(api, "post", "/v8/BackupRepositories", named, 201)["proxyId"] == b["id"]
    before = len(api.rows("/v8/BackupRepositories"))
    for bad, words in (
        (body | {"name": "x", "proxyPoolId": "nope"}, "proxy pool 'nope' does not exist"),
        (body | {"name": "y", "proxyId": _local(api)["id"]}, "is not in proxy pool"),
    ):
        response = api.post("/v8/BackupRepositories", bad)
        assert response.status_code == 400 and words in response.text, response.text
    v7 = api.post("/v7/BackupRepositories", body | {"name": "v7"})
    assert v7.status_code == 400 and "from v8 on" in v7.text
    assert len(api.rows("/v8/BackupRepositories")) == before


def test_a_job_on_a_pool_owned_repository_runs_on_a_member(
    api: Api, organization: Organization, backup_proxy: ProxyWorker, tmp_path: Path
) -> None:
    """The built-in proxy as a pool's member backs up a job of the pool's repository for real;
    in maintenance it takes nothing and the run waits, queued."""
    local = _local(api)
    pool = _checked(api, "post", "/v8/ProxyPools", _pool("pool", local), 201)
    body = {"name": "pooled", "path": str(tmp_path / "pooled"), "proxyPoolId": pool["id"]}
    repo = _checked(api, "post", "/v8/BackupRepositories", body, 201)
    org = api.post(
        "/v2/Organizations",
        {"type": "Local", "name": "acme", "localSettings": {"path": str(organization.root)}},
    ).json()
    job = api.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        {"name": "pooled", "repositoryId": repo["id"], "schedulePolicy": {"type": "ManualOnly"}},
    ).json()
    _checked(api, "post", f"/v8/Proxies/{local['id']}/maintenance/enable", {}, 204)
    assert api.post(f"/v8/Jobs/{job['id']}/start", {"full": False}).status_code == 200
    assert not backup_proxy.run_one()  # queued, and no member may take it
    _checked(api, "post", f"/v8/Proxies/{local['id']}/maintenance/disable", {}, 204)
    assert backup_proxy.run_one()
    (session,) = api.rows(f"/v8/JobSessions?jobId={job['id']}")
    assert session["status"] == "Success", session
    assert len(api.rows(f"/v8/RestorePoints?jobId={job['id']}")) == 1
    assert _checked(api, "get", f"/v8/Proxies/{local['id']}")["proxyPoolId"] == pool["id"]


def test_a_pool_owns_an_object_storage_repository(
    api: Api, moto: MotoServer, tmp_path: Path
) -> None:
    """v8: an inline ``objectStorage`` with a ``proxyPoolId`` (issue 14, item 6)."""
    member = _add(api, "a.example.test")
    pool = _checked(api, "post", "/v8/ProxyPools", _pool("pool", member), 201)
    account = api.post("/v8/Accounts", account_body()).json()
    storage = storage_body(moto.url, make_bucket(moto.url), account["id"])
    body = {"name": "s3", "path": str(tmp_path / "cache"), "objectStorage": storage}
    repo = _checked(api, "post", "/v8/BackupRepositories", body | {"proxyPoolId": pool["id"]}, 201)
    assert (repo["proxyPoolId"], repo["proxyId"]) == (pool["id"], member["id"])
    assert (
        repo["objectStorage"]["amazonBucketS3Compatible"]["name"]
        == storage["amazonBucketS3Compatible"]["name"]
    )
    assert api.delete(f"/v8/ProxyPools/{pool['id']}").status_code == 409
