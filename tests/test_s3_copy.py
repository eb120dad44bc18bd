"""A copy job whose target repository is kept in S3 (moto): it copies, the copy verifies, and
the job's items are restored from the copy alone once the source repository is gone."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keepstone.proxy.worker import ProxyWorker
from tests.backup.test_backup_restore import by_subject, everything_in, explore
from tests.conftest import Api
from tests.local_org import Organization, api, backup_proxy, org_job, organization, run_job
from tests.s3_server import MotoServer, moto, storage_body
from tests.test_copy_jobs import _copy_job, _repository, _run_copy
from tests.test_s3_repository import _fast_retries, _keys, bucket, new_account

__all__ = ["_fast_retries", "api", "backup_proxy", "bucket", "moto", "org_job", "organization"]

PASSWORD = "the copy's password"


@dataclass
class S3Target:
    """The copy's repository (its API view), the organization backed up, and the bucket's keys
    read straight through the S3 API."""

    repository: dict[str, Any]
    organization: Organization
    moto: MotoServer
    bucket: str

    def objects(self) -> set[str]:
        return set(_keys(self.moto, self.bucket))


@pytest.fixture
def s3(
    api: Api, organization: Organization, moto: MotoServer, bucket: str, tmp_path: Path
) -> S3Target:
    """An encrypted repository in the bucket's ``keepstone`` folder (v8, inline object storage);
    the backup job itself keeps its local repository."""
    account = new_account(api)["id"]
    made = api.post(
        "/v8/BackupRepositories",
        {
            "name": "s3 copies",
            "path": str(tmp_path / "cache"),
            "objectStorage": storage_body(moto.url, bucket, account),
            "encryptionPassword": PASSWORD,
        },
    )
    assert made.status_code == 201, made.text
    return S3Target(made.json(), organization, moto, bucket)


def test_a_copy_to_s3_copies_verifies_and_restores_alone(
    api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker, s3: S3Target
) -> None:
    target = s3.repository
    copy = _copy_job(api, org_job, target)
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    before = s3.objects()

    session = _run_copy(api, copy, backup_proxy)

    assert session["status"] == "Success", api.get(f"/v8/JobSessions/{session['id']}/LogItems")
    assert session["repositoryId"] == target["id"]
    copied = s3.objects() - before
    assert any(k.startswith("keepstone/packs/") for k in copied), sorted(copied)
    assert not list(Path(target["path"]).rglob("*"))  # nothing of the copy on the local disk
    points = api.get(f"/v6/RestorePoints?repositoryId={target['id']}").json()
    assert len(points) == 1 and points[0]["jobId"] == org_job["id"]
    verified = api.post(f"/v6/BackupRepositories/{target['id']}/verify").json()
    assert verified["ok"] is True and verified["checkedBytes"] > 3 * 1024 * 1024

    again = _run_copy(api, copy, backup_proxy)
    assert again["status"] == "Success"
    packs = {k for k in s3.objects() if "/packs/" in k}
    assert packs == {k for k in copied if "/packs/" in k}  # nothing new: no pack written

    _drop_source(api, org_job, Path(target["path"]).parent)
    assert everything_in(api, explore(api, org_job)) == by_subject(s3.organization)


def _drop_source(api: Api, job: dict[str, Any], scratch: Path) -> None:
    """The job moves to another local repository and its first one is deleted, files and all."""
    source = job["repositoryId"]
    elsewhere = _repository(api, scratch / "elsewhere", "elsewhere")
    assert api.put(f"/v6/Jobs/{job['id']}", {"repositoryId": elsewhere["id"]}).status_code == 204
    source_path = api.get(f"/v6/BackupRepositories/{source}").json()["path"]
    assert api.delete(f"/v6/BackupRepositories/{source}").status_code == 204
    shutil.rmtree(source_path)
