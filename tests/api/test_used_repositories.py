"""``GET /vN/Organizations/{id}/usedRepositories``: the repositories an organization's backups
use and its share of what each takes, in every version's shape (a PRTG sensor, a self-service
portal and a v8 dashboard read it), and the apportioning that makes the shares add up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from keepstone.proxy.worker import ProxyWorker
from keepstone.services.organization_storage import apportion
from keepstone.services.reports import bytes_in_directory
from tests.conftest import Api
from tests.local_org import Organization, api, backup_proxy, organization, run_job

__all__ = ["api", "backup_proxy", "organization"]  # fixtures


def _organization(api: Api, root: Path, name: str) -> dict[str, Any]:
    body = {"type": "Local", "name": name, "localSettings": {"path": str(root)}}
    response = api.post("/v2/Organizations", body)
    assert response.status_code == 200, response.text
    org: dict[str, Any] = response.json()
    return org


def _job(api: Api, org: dict[str, Any], repository: dict[str, Any]) -> dict[str, Any]:
    body = {
        "name": f"{org['name']} to {repository['name']}",
        "repositoryId": repository["id"],
        "schedulePolicy": {"type": "ManualOnly"},
    }
    response = api.post(f"/v2/Organizations/{org['id']}/Jobs", body)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


def _used(api: Api, org: dict[str, Any], version: int = 8) -> list[dict[str, Any]]:
    response = api.get(f"/v{version}/Organizations/{org['id']}/usedRepositories")
    assert response.status_code == 200, response.text
    body = response.json()
    rows: list[dict[str, Any]] = body["results"] if version >= 6 else body
    return rows


def test_shares_of_a_shared_repository_add_up_to_what_it_takes(
    api: Api,
    organization: Organization,
    tmp_path: Path,
    repo: dict[str, Any],
    backup_proxy: ProxyWorker,
) -> None:
    acme = _organization(api, organization.root, "acme")
    other = Organization(tmp_path / "globex")
    other.user("carol")
    other.mail("carol", "", "Hello Carol")
    other.file("carol", "big.bin", size=2 * 1024 * 1024)
    globex = _organization(api, other.root, "globex")
    idle = _organization(api, other.root, "idle")  # no job: uses nothing

    own = api.post("/v2/BackupRepositories", {"name": "acme only", "path": str(tmp_path / "own")})
    assert own.status_code == 200, own.text
    acme_jobs = [_job(api, acme, repo), _job(api, acme, own.json())]
    globex_job = _job(api, globex, repo)
    assert [(r["details"], r["usedSpaceBytes"]) for r in _used(api, globex)] == [
        (repo["name"], 0)  # a target only, nothing stored yet
    ]
    for job in [*acme_jobs, globex_job]:
        run_job(api, job, backup_proxy)

    acme_rows = {row["repositoryId"]: row for row in _used(api, acme)}
    globex_rows = {row["repositoryId"]: row for row in _used(api, globex)}
    assert set(acme_rows) == {repo["id"], own.json()["id"]} and set(globex_rows) == {repo["id"]}
    shared = bytes_in_directory(repo["path"])
    assert shared > 3 * 1024 * 1024  # both organizations' data is there
    assert acme_rows[repo["id"]]["usedSpaceBytes"] + globex_rows[repo["id"]]["usedSpaceBytes"] == (
        shared
    )
    # acme's latest point there (3 MB of photos) is larger than globex's (2 MB)
    assert acme_rows[repo["id"]]["usedSpaceBytes"] > globex_rows[repo["id"]]["usedSpaceBytes"] > 0
    alone = acme_rows[own.json()["id"]]
    assert alone["usedSpaceBytes"] == bytes_in_directory(own.json()["path"])
    assert alone["isAvailable"] is True and alone["details"] == "acme only"
    assert alone["localCacheUsedSpaceBytes"] == alone["objectStorageUsedSpaceBytes"] == 0
    assert _used(api, idle) == []


def test_every_version_answers_in_its_own_shape(
    api: Api, organization: Organization, repo: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    acme = _organization(api, organization.root, "acme")
    run_job(api, _job(api, acme, repo), backup_proxy)
    v3, v5, v6, v8 = (_used(api, acme, version) for version in (3, 5, 6, 8))
    assert set(v3[0]) == {"usedSpaceBytes", "isAvailable", "details", "_links"}
    assert set(v5[0]) == set(v3[0]) | {"localCacheUsedSpaceBytes", "objectStorageUsedSpaceBytes"}
    assert set(v6[0]) == set(v5[0])
    assert set(v8[0]) == set(v6[0]) | {"repositoryId", "protectedObjectsCount"}
    assert v8[0]["repositoryId"] == repo["id"]
    for version, rows in ((3, v3), (6, v6), (8, v8)):  # the link leads to the repository
        href = rows[0]["_links"]["backupRepository"]["href"]
        path = href[href.index(f"/v{version}/") :]
        assert api.get(path).json()["id"] == repo["id"]
    # every organization links to it (v3 on), by the name the v6 spec spells
    for version in (3, 8):
        org = api.get(f"/v{version}/Organizations/{acme['id']}").json()
        href = org["_links"]["usedRepositories"]["href"]
        path = href[href.index(f"/v{version}/") :]
        assert api.get(path).status_code == 200, path
    assert "usedRepositories" not in api.get(f"/v2/Organizations/{acme['id']}").json()["_links"]


def test_what_it_refuses(api: Api, organization: Organization) -> None:
    acme = _organization(api, organization.root, "acme")
    unknown = api.get("/v8/Organizations/00000000-0000-0000-0000-000000000001/usedRepositories")
    assert unknown.status_code == 404 and "organization" in unknown.json()["message"]
    assert api.get(f"/v2/Organizations/{acme['id']}/usedRepositories").status_code == 404
    bad = api.get(f"/v8/Organizations/{acme['id']}/usedRepositories?limit=0")
    assert bad.status_code == 400 and "limit" in bad.text


@given(
    total=st.integers(min_value=0, max_value=10**15),
    weights=st.dictionaries(st.text(max_size=3), st.integers(min_value=0, max_value=10**12)),
)
def test_apportion_adds_up_and_follows_the_weights(total: int, weights: dict[str, int]) -> None:
    shares = apportion(total, weights)
    assert set(shares) == set(weights)
    if not weights:
        return
    assert sum(shares.values()) == total
    whole = sum(weights.values())
    for key, share in shares.items():
        exact = total * weights[key] / whole if whole else total / len(weights)
        assert exact - 1 < share < exact + 1  # within one unit of its exact share
    for low in weights:
        for high in weights:
            if weights[low] < weights[high]:
                assert shares[low] <= shares[high]  # a larger weight never gets less
