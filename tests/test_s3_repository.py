"""S3 repositories through the API: accounts (secret write-only), object storages, backup
repositories kept in them (v6 ``objectStorageId``, v8 inline ``objectStorage``), backup, restore,
verify and retention on S3, and a fresh server attaching the bucket getting its restore points."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from keepstone.server import bootstrap, open_context
from keepstone.services import object_storage
from keepstone.services.context import Context
from tests.api.test_server_resources import _statements
from tests.backup.test_backup_restore import by_subject, everything_in, explore
from tests.conftest import ADMIN_PASSWORD, Api, login
from tests.local_org import (
    LongLivedApi,
    Organization,
    api,
    backup_proxy,
    org_job,
    organization,
    run_job,
)
from tests.s3_server import (
    ACCESS_KEY,
    FAST,
    REGION,
    SECRET_KEY,
    MotoServer,
    account_body,
    make_bucket,
    moto,
    storage_body,
)

__all__ = ["api", "backup_proxy", "moto", "org_job", "organization"]


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(object_storage, "TUNING", lambda: FAST)


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"ks-{secrets.token_hex(6)}"
    _client(moto).create_bucket(Bucket=name)
    return name


def new_account(api: Api, version: int = 8) -> dict[str, Any]:
    response = api.post(f"/v{version}/Accounts", account_body())
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def repo(api: Api, moto: MotoServer, bucket: str, tmp_path: Path) -> dict[str, Any]:
    """An encrypted repository in the bucket, made the v6 way (object storage, then its id)."""
    account = new_account(api, 6)
    storage = api.post(
        "/v6/objectstoragerepositories", storage_body(moto.url, bucket, account["id"])
    )
    assert storage.status_code == 200, storage.text
    response = api.post(
        "/v6/BackupRepositories",
        {
            "name": "s3",
            "path": str(tmp_path / "cache"),
            "objectStorageId": storage.json()["id"],
            "objectStorageEncryptionEnabled": True,
            "encryptionPassword": "s3 repository password",
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["objectStorageId"] == storage.json()["id"]
    assert body["objectStorageEncryptionEnabled"] is True and body["isEncrypted"] is True
    return body


def test_the_secret_key_is_write_only_and_kept_outside_the_catalog(api: Api, ctx: Context) -> None:
    account = new_account(api)
    assert set(account) == {"accountType", "userName", "id", "description", "_links"}
    for version in (6, 7, 8):
        listed = api.get(f"/v{version}/Accounts").json()
        assert SECRET_KEY not in str(listed) and listed[0]["userName"] == ACCESS_KEY
    assert api.get(f"/v8/Accounts/{account['id']}").json()["accountType"] == (
        "amazonS3CompatibleAccount"
    )
    assert ctx.secrets_dir is not None
    secret = ctx.secrets_dir / f"account-{account['id']}"
    assert secret.read_bytes() == SECRET_KEY.encode() and secret.stat().st_mode & 0o777 == 0o600
    catalog_bytes = b"".join(p.read_bytes() for p in ctx.secrets_dir.parent.glob("*.db*"))
    assert SECRET_KEY.encode() not in catalog_bytes
    changed = api.put(f"/v8/Accounts/{account['id']}", {"password": "rotated-secret"})
    assert changed.status_code == 204
    assert secret.read_bytes() == b"rotated-secret"
    assert api.delete(f"/v8/Accounts/{account['id']}").status_code == 204
    assert not secret.exists()


@pytest.mark.parametrize(
    ("body", "prop"),
    [
        ({"accountType": "azureBlobAccount", "userName": "a", "password": "b"}, "accountType"),
        ({"accountType": "amazonS3CompatibleAccount", "userName": "a"}, "password"),
        ({"accountType": "amazonS3CompatibleAccount", "password": "b"}, "userName"),
        (
            {"accountType": "amazonS3CompatibleAccount", "userName": "k" * 256, "password": "b"},
            "userName (the access key) must be at most 255 characters",
        ),
    ],
)
def test_bad_accounts_are_refused_by_name(api: Api, body: dict[str, Any], prop: str) -> None:
    response = api.post("/v8/Accounts", body)
    assert response.status_code == 400 and prop in response.text, response.text
    assert api.get("/v8/Accounts").json() == []


def test_bad_object_storages_are_refused_by_name(api: Api, moto: MotoServer, bucket: str) -> None:
    account = new_account(api, 6)["id"]
    cases = [
        (storage_body("http://s3.example.com", bucket, account), "servicePoint"),
        (storage_body(moto.url, "no-such-bucket-here", account), "amazonBucketS3Compatible.name"),
        (storage_body(moto.url, "Bad_Bucket", account), "amazonBucketS3Compatible.name"),
        (storage_body(moto.url, bucket, account, folder="../up"), "s3Folder"),
        (storage_body(moto.url, bucket, "3f9f0a3e-0000-0000-0000-000000000000"), "accountId"),
        (storage_body(moto.url, bucket, account) | {"azureContainer": {}}, "azureContainer"),
    ]
    for body, prop in cases:
        response = api.post("/v6/objectstoragerepositories", body)
        assert response.status_code == 400 and prop in response.text, (prop, response.text)
    assert api.get("/v6/objectstoragerepositories").json() == []
    first = api.post("/v6/objectstoragerepositories", storage_body(moto.url, bucket, account))
    assert first.status_code == 200
    nested = storage_body(moto.url, bucket, account, folder="keepstone/inner") | {"name": "x"}
    response = api.post("/v6/objectstoragerepositories", nested)
    assert response.status_code == 400 and "s3Folder" in response.text
    in_use = api.delete(f"/v6/Accounts/{account}")
    assert in_use.status_code == 409


def test_backup_restore_verify_and_retention_on_s3(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
    moto: MotoServer,
    bucket: str,
) -> None:
    first = run_job(api, org_job, backup_proxy)
    assert first["status"] == "Success", api.get(f"/v2/JobSessions/{first['id']}/LogItems").json()
    keys = _keys(moto, bucket)
    assert "keepstone/config" in keys and any(k.startswith("keepstone/packs/") for k in keys)
    assert not list(Path(repo["path"]).rglob("*"))  # nothing of it on the local disk
    assert everything_in(api, explore(api, org_job)) == by_subject(organization)
    verified = api.post(f"/v6/BackupRepositories/{repo['id']}/verify")
    assert verified.status_code == 200 and verified.json()["ok"] is True
    assert verified.json()["checkedBytes"] > 3 * 1024 * 1024
    organization.file("alice", "Documents/new.bin", size=100_000)
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    assert len(api.get(f"/v2/RestorePoints?repositoryId={repo['id']}").json()) == 2
    retention = api.post(f"/v6/BackupRepositories/{repo['id']}/applyRetention")
    assert retention.status_code == 200, retention.text
    assert api.post(f"/v6/BackupRepositories/{repo['id']}/verify").json()["ok"] is True


def test_a_fresh_server_attaching_the_bucket_gets_its_restore_points_back(
    api: Api,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
    moto: MotoServer,
    bucket: str,
    tmp_path: Path,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    points = api.get(f"/v2/RestorePoints?repositoryId={repo['id']}").json()
    with _fresh_server(tmp_path / "fresh", clock, monkeypatch) as fresh:
        account = new_account(fresh)["id"]
        body = {
            "name": "attached",
            "path": str(tmp_path / "fresh-cache"),
            "objectStorage": storage_body(moto.url, bucket, account) | {"name": None},
        }
        refused = fresh.post("/v8/BackupRepositories", body)
        assert refused.status_code == 400 and "encryptionPassword" in refused.text
        names = [r["name"] for r in fresh.get("/v8/BackupRepositories").json()["results"]]
        assert "attached" not in names  # nothing kept of the refused attempt
        assert fresh.get("/v7/objectstoragerepositories").json() == []
        body["encryptionPassword"] = "s3 repository password"
        attached = fresh.post("/v8/BackupRepositories", body)
        assert attached.status_code == 201, attached.text
        view = attached.json()
        assert view["objectStorage"]["s3Folder"] == "keepstone" and "proxyPoolId" not in view
        again = fresh.get(f"/v2/RestorePoints?repositoryId={view['id']}").json()
        assert [p["backupTime"] for p in again] == [p["backupTime"] for p in points]


def test_proxy_pools_and_object_storage_changes_are_refused(
    api: Api, repo: dict[str, Any], tmp_path: Path
) -> None:
    pooled = api.post(
        "/v8/BackupRepositories",
        {"name": "pooled", "path": str(tmp_path / "p"), "proxyPoolId": repo["id"]},
    )
    assert pooled.status_code == 400 and "proxyPoolId" in pooled.text
    moved = api.put(
        f"/v6/BackupRepositories/{repo['id']}",
        {"objectStorageId": "3f9f0a3e-0000-0000-0000-000000000000"},
    )
    assert moved.status_code == 400 and "objectStorageId" in moved.text
    listed = {r["name"]: r.get("objectStorageId") for r in api.get("/v7/BackupRepositories").json()}
    assert listed == {"Default Backup Repository": None, "s3": repo["objectStorageId"]}
    in_use = api.delete(f"/v6/objectstoragerepositories/{repo['objectStorageId']}")
    assert in_use.status_code == 409


def _keys(moto: MotoServer, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in _client(moto).get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return keys


def _client(moto: MotoServer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


class _fresh_server:
    def __init__(self, data: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
        from keepstone.api.app import create_app

        monkeypatch.setenv("KEEPSTONE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        self.ctx = open_context(data, clock)
        bootstrap(self.ctx, data)
        self.client = TestClient(create_app(self.ctx), base_url="https://backup.example.test")

    def __enter__(self) -> Api:
        self.client.__enter__()
        return LongLivedApi(self.client, login(self.client, "admin", ADMIN_PASSWORD))

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(*exc)
        self.ctx.db.dispose()
        shutil.rmtree(self.ctx.secrets_dir or "/nonexistent", ignore_errors=True)


def test_a_deleted_repository_attached_again_gets_its_restore_points_back(
    api: Api,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
    tmp_path: Path,
) -> None:
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    before = api.get(f"/v2/RestorePoints?repositoryId={repo['id']}").json()
    assert api.delete(f"/v2/Jobs/{org_job['id']}").status_code == 204
    assert api.delete(f"/v6/BackupRepositories/{repo['id']}").status_code == 204
    storage = api.get(f"/v6/objectstoragerepositories/{repo['objectStorageId']}")
    assert storage.status_code == 200  # the object storage and its objects stay
    again = api.post(
        "/v6/BackupRepositories",
        {
            "name": "s3 again",
            "path": str(tmp_path / "cache-again"),
            "objectStorageId": repo["objectStorageId"],
            "encryptionPassword": "s3 repository password",
        },
    )
    assert again.status_code == 200, again.text
    after = api.get(f"/v2/RestorePoints?repositoryId={again.json()['id']}").json()
    assert [p["backupTime"] for p in after] == [p["backupTime"] for p in before]


def test_listing_repositories_costs_the_same_statements_for_many_s3_ones(
    api: Api, ctx: Context, moto: MotoServer, tmp_path: Path
) -> None:
    account = new_account(api, 7)["id"]
    bucket = make_bucket(moto.url)

    def add(first: int, last: int) -> None:
        for n in range(first, last):
            body = storage_body(moto.url, bucket, account, folder=f"r{n}")
            storage = api.post("/v7/objectstoragerepositories", body).json()["id"]
            made = api.post(
                "/v7/BackupRepositories",
                {"name": f"s3 {n}", "path": str(tmp_path / f"c{n}"), "objectStorageId": storage},
            )
            assert made.status_code == 200, made.text

    def cost() -> int:
        return _statements(ctx, lambda: api.get("/v7/BackupRepositories"))

    add(0, 1)
    few = cost()
    add(1, 4)
    assert len(api.get("/v7/BackupRepositories").json()) == 5
    assert cost() == few  # no statement per repository
