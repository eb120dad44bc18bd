"""An incremental holds one user's part of its previous point at a time (issue 15 item 4): the
records alive at once, counted, are as many for 4N users as for N, never in time or RSS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keepstone.proxy.worker import ProxyWorker
from keepstone.sources import local
from keepstone.sources.connector import PreviousPoint
from tests.backup.test_backup_work import _job
from tests.conftest import Api
from tests.local_org import Organization, run_job

USERS = 1


@dataclass
class Held:
    """The most previous-point records (and their bytes) held at once while they were used."""

    records: int = 0
    bytes: int = 0


def _organization(root: Path, users: int) -> Organization:
    org = Organization(root)
    for u in range(users):
        name = f"user{u:02d}"
        org.user(name)
        for n in range(3):
            org.mail(name, ("", ".Sent")[n % 2], f"Message {n}", body=f"body {n} " * 20)
        org.file(name, f"Documents/f{u:02d}.txt", b"file\n" * 50)
    return org


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Held:
    """Watches every look-up in a previous point: what the point holds then."""
    most = Held()

    def watching(real: Callable[..., Any]) -> Callable[..., Any]:
        def look(point: PreviousPoint, *args: Any) -> Any:
            records = point._records
            most.records = max(most.records, len(records))
            most.bytes = max(most.bytes, sum(map(len, records.values())))
            return real(point, *args)

        return look

    for name in ("get", "record", "carry"):
        monkeypatch.setattr(PreviousPoint, name, watching(getattr(PreviousPoint, name)))
    return most


def _incremental(api: Api, repo: dict[str, Any], proxy: ProxyWorker, org: Organization) -> None:
    job = _job(api, org, repo)
    assert run_job(api, job, proxy)["status"] == "Success"
    session = run_job(api, job, proxy)
    assert session["status"] == "Success", session


def test_an_incremental_holds_one_users_records_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
    api: Api,
    repo: dict[str, Any],
    backup_proxy: ProxyWorker,
    tmp_path: Path,
    held: Held,
) -> None:
    monkeypatch.setattr(local, "SETTLED_NS", 0)  # trust the folders' stamps at once
    _incremental(api, repo, backup_proxy, _organization(tmp_path / "small", USERS))
    small = Held(held.records, held.bytes)
    held.records = held.bytes = 0
    _incremental(api, repo, backup_proxy, _organization(tmp_path / "large", 4 * USERS))
    # Each user holds 3 messages, 1 file and their folders' state items: one user's worth.
    assert small.records > 4, "the incremental looked nothing up in its previous point"
    assert held.records == small.records
    assert held.bytes <= small.bytes * 1.1
