"""An incremental holds exactly what a full backup of the same organization holds (issue 15):
after an unchanged incremental (Maildir folders skipped whole, everything carried as its previous
JSON) and then every kind of change the shortcuts could hide, the job's restore point and a new
job's first (full) restore point have the same items, byte for byte, with the same content."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from keepstone.engine import Item, LocalStore, Repository
from keepstone.proxy.worker import ProxyWorker
from keepstone.services.restore_points import TAG_JOB
from keepstone.sources import local
from tests.conftest import Api
from tests.local_org import Organization, run_job


def _newest_items(repo: dict[str, Any], job: dict[str, Any], seen: set[str]) -> dict[str, Item]:
    """The items of the job's restore point that is not in ``seen`` (the tests' clock stands
    still: every point has the same time); adds it to ``seen``."""
    repository = Repository.open(LocalStore(Path(repo["path"])), None)
    [new] = [
        s.id
        for s in repository.snapshots()
        if s.tags.get(TAG_JOB) == job["id"] and s.id not in seen
    ]
    seen.add(new)
    return {item.key: item for item in repository.items(new)}


def _content(repo: dict[str, Any], item: Item) -> bytes:
    repository = Repository.open(LocalStore(Path(repo["path"])), None)
    return b"".join(repository.read(item))


def _on_disk(org: Organization) -> dict[str, bytes]:
    """Messages by unique name, files by path below OneDrive."""
    found: dict[str, bytes] = {}
    for path in org.root.rglob("*"):
        parts = path.relative_to(org.root).parts
        if not path.is_file() or path.name == "maildirfolder":
            continue
        if parts[1] == "Mail":
            found[f"{parts[0]}/mail/{path.name.split(':2,')[0]}"] = path.read_bytes()
        else:
            found[f"{parts[0]}/drive/{'/'.join(parts[2:])}"] = path.read_bytes()
    return found


@pytest.mark.sqlite_catalog  # about the source and the repository; the catalog only runs jobs
def test_an_incremental_holds_exactly_what_a_full_backup_holds(
    monkeypatch: pytest.MonkeyPatch,
    api: Api,
    repo: dict[str, Any],
    backup_proxy: ProxyWorker,
    organization: Organization,
    org_job: dict[str, Any],
) -> None:
    # The folders were just written: trust their stamps at once, so the unchanged incremental
    # below skips them whole (``SETTLED_NS`` guards a change within the clock's tick).
    monkeypatch.setattr(local, "SETTLED_NS", 0)
    seen: set[str] = set()
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    before = _newest_items(repo, org_job, seen)
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"
    assert _newest_items(repo, org_job, seen) == before  # unchanged: the same items

    root = organization.root
    inbox = sorted((root / "alice" / "Mail" / "cur").iterdir())
    inbox[0].rename(inbox[0].with_name(inbox[0].name.split(":2,")[0] + ":2,FRS"))  # re-flagged
    next((root / "bob" / "Mail" / "cur").iterdir()).unlink()  # removed
    organization.mail("alice", ".Sent", "Sent later")  # added
    plan = root / "alice" / "OneDrive" / "Documents" / "plan.txt"
    stat = plan.stat()
    plan.write_bytes(b"THE PLAN\n" * 1000)  # same size, mtime put back
    os.utime(plan, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    mail = root / "alice" / "Mail"
    (mail / ".Archive.2024").rename(mail / ".Old")  # a folder renamed
    (root / "alice" / "OneDrive" / "Documents" / "Photos").rename(
        root / "alice" / "OneDrive" / "Pictures"
    )  # a drive folder renamed
    (root / "alice" / "OneDrive" / "empty.txt").unlink()
    organization.file("bob", "new/data.bin", size=4096)
    assert run_job(api, org_job, backup_proxy)["status"] == "Success"

    org_id = org_job["organization"]["id"]
    full_job = api.post(
        f"/v2/Organizations/{org_id}/Jobs",
        {"name": "full", "repositoryId": repo["id"], "schedulePolicy": {"type": "ManualOnly"}},
    ).json()
    assert run_job(api, full_job, backup_proxy)["status"] == "Success"

    incremental, full = _newest_items(repo, org_job, seen), _newest_items(repo, full_job, seen)
    assert incremental.keys() == full.keys()
    for key, item in full.items():
        if item.kind == "folder":  # a directory's state: the same files with the same tokens
            assert incremental[key].meta["entries"] == item.meta["entries"], key
        else:
            assert incremental[key] == item, key
    contents = {k: i for k, i in incremental.items() if i.kind != "folder"}
    assert {k: _content(repo, i) for k, i in contents.items()} == _on_disk(organization)
    assert (
        incremental["alice/drive/Documents/plan.txt"].chunks
        != before["alice/drive/Documents/plan.txt"].chunks
    )
