"""v8's ``eTag`` of rows that keep no version (job sessions, restore points): it changes when
the row does and stays while it does not, as clients that poll for changes expect."""

from __future__ import annotations

from typing import Any

from keepstone.proxy.worker import ProxyWorker
from tests.conftest import Api
from tests.local_org import api, backup_proxy, org_job, organization, run_job

__all__ = ["api", "backup_proxy", "org_job", "organization"]  # fixtures


def test_etags_follow_changes(
    api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker, repo: dict[str, Any]
) -> None:
    started = api.post(f"/v8/Jobs/{org_job['id']}/start")
    assert started.status_code == 200, started.text
    session = started.json()["id"]
    queued = api.get(f"/v8/JobSessions/{session}").json()
    assert queued["status"] == "Queued" and isinstance(queued["eTag"], int)
    assert api.get(f"/v8/JobSessions/{session}").json()["eTag"] == queued["eTag"]  # unchanged
    assert backup_proxy.run_one()
    ended = api.get(f"/v8/JobSessions/{session}").json()
    assert ended["status"] == "Success" and ended["eTag"] != queued["eTag"]
    assert 0 <= ended["eTag"] < 2**63

    run_job(api, org_job, backup_proxy)
    points = api.get("/v8/RestorePoints").json()["results"]
    assert len(points) == 2 and len({p["eTag"] for p in points}) == 2
    again = {p["id"]: p["eTag"] for p in api.get("/v8/RestorePoints").json()["results"]}
    assert again == {p["id"]: p["eTag"] for p in points}
    assert all(p["objectsEtag"] == p["eTag"] for p in points)
    assert "eTag" not in api.get("/v7/RestorePoints").json()["results"][0]  # v8's

    # a repository on disk encrypts nothing in a bucket (v6 on)
    on_disk = api.get(f"/v6/BackupRepositories/{repo['id']}").json()
    assert on_disk["objectStorageEncryptionEnabled"] is False
    assert (
        "objectStorageEncryptionEnabled"
        not in api.get(f"/v5/BackupRepositories/{repo['id']}").json()
    )
