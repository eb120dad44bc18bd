"""Copy jobs through the API: created, run by the proxy like a backup, shown as the vendor shows
copy sessions, and restorable from the copy alone."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from keepstone.proxy.worker import ProxyWorker
from tests.backup.test_backup_restore import by_subject, everything_in, explore
from tests.conftest import Api
from tests.local_org import (  # the fixtures of a real Local organization
    Organization,
    api,
    backup_proxy,
    org_job,
    organization,
    run_job,
)

__all__ = ["api", "backup_proxy", "org_job", "organization"]

PASSWORD = "copy password, not the source's"


def _repository(api: Api, path: Path, name: str, password: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "path": str(path)}
    if password:
        body["encryptionPassword"] = password
    created = api.post("/v2/BackupRepositories", body)
    assert created.status_code == 200, created.text
    result: dict[str, Any] = created.json()
    return result


def _copy_job(api: Api, job: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    created = api.post(
        "/v6/CopyJobs",
        {
            "backupJobId": job["id"],
            "repositoryId": target["id"],
            "schedulePolicy": {"type": "Immediate"},
        },
    )
    assert created.status_code == 200, created.text
    body: dict[str, Any] = created.json()
    return body


def _run_copy(api: Api, copy: dict[str, Any], proxy: ProxyWorker) -> dict[str, Any]:
    started = api.post(f"/v8/CopyJobs/{copy['id']}/start")
    assert started.status_code == 200, started.text
    assert proxy.run_one()
    session: dict[str, Any] = api.get(f"/v8/JobSessions/{started.json()['id']}").json()
    return session


def test_a_copy_job_copies_and_restores_alone(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    tmp_path: Path,
) -> None:
    target = _repository(api, tmp_path / "copies", "copies", PASSWORD)
    copy = _copy_job(api, org_job, target)
    assert copy["schedulePolicy"]["type"] == "Immediate" and copy["lastStatus"] == "NotConfigured"
    assert api.get(f"/v6/Jobs/{org_job['id']}/CopyJob").json()["id"] == copy["id"]
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"

    session = _run_copy(api, copy, backup_proxy)

    assert session["status"] == "Success", api.get(f"/v8/JobSessions/{session['id']}/LogItems")
    assert session["jobType"] == "Copy" and session["jobId"] == copy["id"]
    assert session["repositoryId"] == target["id"]
    copies = api.get("/v6/JobSessions?jobType=Copy").json()["results"]
    backups = api.get("/v6/JobSessions?jobType=Backup").json()["results"]
    assert [s["id"] for s in copies] == [session["id"]] and len(backups) == 1
    assert api.get(f"/v6/CopyJobs/{copy['id']}").json()["lastStatus"] == "Success"
    points = api.get(f"/v6/RestorePoints?repositoryId={target['id']}").json()
    assert len(points) == 1 and points[0]["jobId"] == org_job["id"]
    verified = api.post(f"/v6/BackupRepositories/{target['id']}/verify").json()
    assert verified["ok"] is True

    # The source repository goes away: the job moves elsewhere, the old one is deleted.
    source = org_job["repositoryId"]
    elsewhere = _repository(api, tmp_path / "elsewhere", "elsewhere")
    assert (
        api.put(f"/v6/Jobs/{org_job['id']}", {"repositoryId": elsewhere["id"]}).status_code == 204
    )
    source_path = api.get(f"/v6/BackupRepositories/{source}").json()["path"]
    assert api.delete(f"/v6/BackupRepositories/{source}").status_code == 204
    shutil.rmtree(source_path)
    assert everything_in(api, explore(api, org_job)) == by_subject(organization)


def test_a_second_run_with_nothing_new_copies_nothing(
    api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker, tmp_path: Path
) -> None:
    target = _repository(api, tmp_path / "copies", "copies")
    copy = _copy_job(api, org_job, target)
    run_job(api, org_job, backup_proxy)
    assert _run_copy(api, copy, backup_proxy)["status"] == "Success"
    again = _run_copy(api, copy, backup_proxy)
    assert again["status"] == "Success"
    log = [
        i["message"] for i in api.get(f"/v8/JobSessions/{again['id']}/LogItems").json()["results"]
    ]
    assert any("No new restore points to copy" in title for title in log)
    assert len(api.get(f"/v6/RestorePoints?repositoryId={target['id']}").json()) == 1


def test_bad_copy_jobs_are_refused_naming_what_is_wrong(
    api: Api, org_job: dict[str, Any], tmp_path: Path
) -> None:
    target = _repository(api, tmp_path / "copies", "copies")
    cases = [
        ({"repositoryId": target["id"]}, "backupJobId"),
        ({"backupJobId": org_job["id"]}, "repositoryId"),
        ({"backupJobId": org_job["id"], "repositoryId": org_job["repositoryId"]}, "repositoryId"),
        (
            {"backupJobId": "00000000-0000-0000-0000-000000000000", "repositoryId": target["id"]},
            "backupJobId",
        ),
        (
            {
                "backupJobId": org_job["id"],
                "repositoryId": target["id"],
                "schedulePolicy": {"type": "Hourly"},
            },
            "type",
        ),
    ]
    for body, named in cases:
        refused = api.post("/v6/CopyJobs", body)
        assert refused.status_code == 400, (body, refused.text)
        assert named in refused.text
    assert api.get("/v6/CopyJobs").json() == []
    _copy_job(api, org_job, target)
    second = api.post("/v6/CopyJobs", {"backupJobId": org_job["id"], "repositoryId": target["id"]})
    assert second.status_code == 409
    in_use = api.delete(f"/v6/BackupRepositories/{target['id']}")
    assert in_use.status_code == 409 and "copy" in in_use.text
    # The backup job takes its copy job with it; the repository is then free.
    assert api.delete(f"/v6/Jobs/{org_job['id']}").status_code == 204
    assert api.get("/v6/CopyJobs").json() == []
    assert api.delete(f"/v6/BackupRepositories/{target['id']}").status_code == 204


def test_a_copy_job_edit_that_changes_nothing_keeps_its_etag(
    api: Api, org_job: dict[str, Any], tmp_path: Path
) -> None:
    """As for a backup job: sending what the copy job holds is no edit (the ETag stays, an
    If-Match taken before still matches); a change makes a new version."""
    copy = _copy_job(api, org_job, _repository(api, tmp_path / "copies", "copies"))
    url = f"/v6/CopyJobs/{copy['id']}"
    etag = api.get(url).headers["etag"]
    same = {"backupJobId": org_job["id"], "schedulePolicy": {"type": "Immediate"}}
    for _ in range(2):
        kept = api.put(url, same, headers={"If-Match": etag})
        assert (kept.status_code, kept.headers["etag"]) == (204, etag)
    changed = api.put(url, {"backupJobId": org_job["id"], "isEnabled": False})
    assert changed.status_code == 204 and changed.headers["etag"] != etag
    assert api.get(url).headers["etag"] == changed.headers["etag"]
