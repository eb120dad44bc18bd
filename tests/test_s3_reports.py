"""The repository report measures an S3 repository in its bucket (its cache path holds nothing):
the sum of its objects' sizes, read from the paged listing, one request per page."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest

from keepstone.engine.s3store import S3Store
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import object_storage, reports
from keepstone.services.context import Context
from tests.conftest import Api
from tests.local_org import api, backup_proxy, org_job, organization, run_job
from tests.s3_server import FAST, MotoServer, moto
from tests.test_s3_repository import _client, bucket, repo

__all__ = ["api", "backup_proxy", "bucket", "moto", "org_job", "organization", "repo"]

T = TypeVar("T")
PAGE = 10


@pytest.fixture(autouse=True)
def _small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(object_storage, "TUNING", lambda: replace(FAST, list_page_size=PAGE))


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every S3 request any store makes, by verb (LIST, HEAD, GET, PUT, ...)."""
    seen: Counter[str] = Counter()
    real = S3Store._call

    def counted(self: S3Store, what: str, once: Callable[[], T], name: str) -> T:
        seen[what.split()[0]] += 1
        return real(self, what, once, name)

    monkeypatch.setattr(S3Store, "_call", counted)
    return seen


@pytest.fixture
def folder(repo: dict[str, Any], moto: MotoServer, bucket: str) -> Folder:
    return Folder(moto, bucket)


class Folder:
    """The S3 repository's folder, seen straight through the S3 API (not through Keepstone)."""

    def __init__(self, moto: MotoServer, bucket: str) -> None:
        self.client, self.bucket = _client(moto), bucket

    def sizes(self, prefix: str = "keepstone/") -> dict[str, int]:
        sizes: dict[str, int] = {}
        listing = self.client.get_paginator("list_objects_v2")
        for page in listing.paginate(Bucket=self.bucket, Prefix=prefix):
            sizes |= {o["Key"]: o["Size"] for o in page.get("Contents", [])}
        return sizes

    def add(self, first: int, last: int, prefix: str = "keepstone/extra/") -> None:
        for n in range(first, last):
            self.client.put_object(Bucket=self.bucket, Key=f"{prefix}{n:04}", Body=b"x" * (n + 1))


def test_the_report_measures_an_s3_repository_in_its_bucket(
    api: Api, ctx: Context, org_job: dict[str, Any], backup_proxy: ProxyWorker, folder: Folder
) -> None:
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    cache = api.get(f"/v6/BackupRepositories/{org_job['repositoryId']}").json()["path"]
    assert not list(Path(cache).rglob("*"))  # the cache path holds nothing to measure
    in_bucket = folder.sizes()
    used = {u.name: u.backup_size for u in reports.repository_use(ctx)}
    assert used["s3"] == sum(in_bucket.values()) > 3 * 1024 * 1024
    assert used["Default Backup Repository"] == 0  # the local one still measured on disk
    storage = object_storage.storage_of_repository(ctx, org_job["repositoryId"])
    assert storage is not None
    object_storage.edit_storage(ctx, storage.id, object_storage.StorageEdit(size_limit_gb=2))
    limited = next(u for u in reports.repository_use(ctx) if u.name == "s3")
    assert (limited.capacity, limited.free) == (2 * 1024**3, 2 * 1024**3 - used["s3"])


def test_measuring_costs_one_listing_request_per_page(
    ctx: Context, folder: Folder, requests: Counter[str]
) -> None:
    def measure() -> int:
        requests.clear()
        used = {u.name: u.backup_size for u in reports.repository_use(ctx)}["s3"]
        objects = folder.sizes()
        assert requests == {"LIST": math.ceil(len(objects) / PAGE)}, (len(objects), requests)
        assert used == sum(objects.values())
        return requests["LIST"]

    folder.add(0, 20)
    few = measure()
    folder.add(20, 80)
    many = measure()
    assert few >= 2 and many <= 4 * few  # linear in the objects, never one request per object
    folder.add(0, 3, "keepstone-other/")
    assert measure() == many  # objects beside the repository's folder are not its own


def test_a_bucket_gone_is_a_zero_in_the_report_not_a_failed_report(
    ctx: Context, folder: Folder
) -> None:
    folder.add(0, 3)
    for key in folder.sizes(""):
        folder.client.delete_object(Bucket=folder.bucket, Key=key)
    folder.client.delete_bucket(Bucket=folder.bucket)
    used = {u.name: u.backup_size for u in reports.repository_use(ctx)}
    assert used == {"Default Backup Repository": 0, "s3": 0}
