"""A backup's work grows linearly with its items, and an incremental reads only what changed
(issue 15): counted in catalog statements, bytes written to the catalog and files the source
opens, never in time."""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from keepstone.engine import Item, LocalStore, Repository, wire
from keepstone.proxy.backup import BATCH_ITEMS
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import vault
from keepstone.services.context import Context
from keepstone.services.restore_points import TAG_JOB
from keepstone.sources import local
from keepstone.sources.confined import Directory
from tests.conftest import Api
from tests.local_org import Organization, run_job
from tests.work import assert_linear, catalog_work

SMALL = 12
# State items of an organization of ``_organization``: three Maildir folders, the OneDrive's
# root, Documents and its five subdirectories.
FOLDERS = 3 + 7


def _organization(root: Path, items: int) -> Organization:
    org = Organization(root)
    org.user("alice")
    for n in range(items):
        org.mail("alice", ("", ".Sent")[n % 2], f"Message {n}", body=f"body {n} " * 50)
        org.file("alice", f"Documents/d{n % 5}/f{n}.txt", f"file {n}\n".encode() * 100)
    return org


def _job(api: Api, org: Organization, repo: dict[str, Any]) -> dict[str, Any]:
    name = org.root.name
    created = api.post(
        "/v2/Organizations",
        {"type": "Local", "name": name, "localSettings": {"path": str(org.root)}},
    )
    assert created.status_code == 200, created.text
    job = api.post(
        f"/v2/Organizations/{created.json()['id']}/Jobs",
        {"name": name, "repositoryId": repo["id"], "schedulePolicy": {"type": "ManualOnly"}},
    )
    assert job.status_code == 200, job.text
    body: dict[str, Any] = job.json()
    return body


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every file the Local source opens (a message's headers or any item's content)."""
    names: list[str] = []
    real = Directory.open_fd

    def counting(self: Directory, name: str) -> tuple[int, Any]:
        names.append(self.below(name))
        return real(self, name)

    monkeypatch.setattr(Directory, "open_fd", counting)
    yield names


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Tasks given to the backup's pool (one count per task)."""
    given: list[int] = []
    real = ThreadPoolExecutor.submit

    def submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._thread_name_prefix == "keepstone-backup":
            given.append(1)
        return real(self, fn, *args, **kwargs)

    monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)
    return given


# The calls through ``os`` that reach the kernel for a source file (the Local source's only).
SOURCE_CALLS = ("open", "fstat", "stat", "readv", "read", "lseek", "set_blocking", "close")


@pytest.fixture
def source_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The system calls the Local source makes through ``os``, by name. Each one releases the
    GIL, which the backup's threads then hand to one another."""
    made: Counter[str] = Counter()
    for name in SOURCE_CALLS:
        real = getattr(os, name)

        def counting(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            if sys._getframe(1).f_globals.get("__name__", "").startswith("keepstone.sources"):
                made[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, counting)
    return made


@dataclass
class ItemCoding:
    """Items encoded as JSON for a tree, and items decoded from JSON, while counting."""

    encoded: int = 0
    decoded: int = 0
    # The threads that encoded each message's or file's JSON, by name.
    encoded_in: list[str] = field(default_factory=list)


@pytest.fixture
def coding(monkeypatch: pytest.MonkeyPatch) -> ItemCoding:
    counts = ItemCoding()
    real_dumps, real_record, real_from_json = wire.dumps, Item.record, Item.from_json

    def dumps(value: object) -> bytes:  # an item's JSON re-encoded from a tree's
        counts.encoded += isinstance(value, dict) and "chunks" in value
        return real_dumps(value)

    def record(item: Item) -> bytes:  # an item's JSON (the tests' items take orjson's path)
        counts.encoded += 1
        if item.kind in ("mail", "file"):
            counts.encoded_in.append(threading.current_thread().name)
        return real_record(item)

    def from_json(value: object, what: str) -> Item:
        counts.decoded += 1
        return real_from_json(value, what)

    monkeypatch.setattr(wire, "dumps", dumps)
    monkeypatch.setattr(Item, "record", record)
    monkeypatch.setattr(Item, "from_json", from_json)
    return counts


def _trees(repo: dict[str, Any], job: dict[str, Any]) -> tuple[str, ...]:
    """The tree blobs of the job's newest snapshot."""
    repository = Repository.open(LocalStore(Path(repo["path"])), None)
    mine = [s for s in repository.snapshots() if s.tags.get(TAG_JOB) == job["id"]]
    return repository._snapshot(mine[-1].id).trees


def _backup(
    ctx: Context, api: Api, job: dict[str, Any], proxy: ProxyWorker
) -> tuple[int, int, dict[str, Any]]:
    with catalog_work(ctx) as work:
        session = run_job(api, job, proxy)
    assert session["status"] == "Success", session
    return work.count, work.written_bytes, session


def test_a_backup_and_its_incrementals_grow_linearly_and_read_only_what_changed(
    monkeypatch: pytest.MonkeyPatch,
    ctx: Context,
    api: Api,
    repo: dict[str, Any],
    backup_proxy: ProxyWorker,
    tmp_path: Path,
    opened: list[str],
    coding: ItemCoding,
    tasks: list[int],
) -> None:
    # The folders were just written: trust their stamps at once (``SETTLED_NS`` guards against
    # a change within the file system clock's tick, which these steps do not make).
    monkeypatch.setattr(local, "SETTLED_NS", 0)
    small_org = _organization(tmp_path / "small", SMALL)
    large_org = _organization(tmp_path / "large", 4 * SMALL)
    small_job, large_job = _job(api, small_org, repo), _job(api, large_org, repo)

    # The initial backups: every item is opened once, a message too (the scan opens it, and
    # the run reads its content and its headers through that descriptor).
    # The items go to the pool BATCH_ITEMS at a time (all are small), not one task each.
    small = _backup(ctx, api, small_job, backup_proxy)
    assert len(opened) == len(set(opened)) == 2 * SMALL  # N messages, N files
    assert len(tasks) == -(-2 * SMALL // BATCH_ITEMS)
    opened.clear()
    tasks.clear()
    large = _backup(ctx, api, large_job, backup_proxy)
    assert len(tasks) == -(-2 * 4 * SMALL // BATCH_ITEMS)
    assert_linear(small[0], large[0], what="catalog statements of an initial backup")
    assert_linear(small[1], large[1], what="bytes written to the catalog by an initial backup")
    assert len(opened) == len(set(opened)) == 2 * 4 * SMALL

    # Nothing changed: no file is opened, no item is encoded again (each one's JSON is copied
    # from the previous point: the same trees), no message or file is decoded (Maildir folders
    # are skipped whole, drive files carried by their directory's state: only the state items
    # of the folders, as many for 4N items as for N, are decoded), and the catalog work stays
    # linear.
    opened.clear()
    coding.encoded = coding.decoded = 0
    trees_before = _trees(repo, large_job)
    small = _backup(ctx, api, small_job, backup_proxy)
    small_decoded = coding.decoded
    assert coding.encoded == 0
    # Each state item once, by the connector (the executor keeps a folder item as the source
    # gives it, or carries it: it never decodes the previous one).
    assert small_decoded == FOLDERS
    coding.decoded = 0
    large = _backup(ctx, api, large_job, backup_proxy)
    assert (coding.encoded, coding.decoded) == (0, small_decoded)
    assert _trees(repo, large_job) == trees_before
    assert opened == []
    assert_linear(small[0], large[0], what="catalog statements of an unchanged incremental")
    assert_linear(small[1], large[1], what="bytes written to the catalog by an incremental")

    # One message re-flagged (renamed: same inode, same mtime), one edited file, one new
    # message: only the edited file and the new message are read, each opened once (the new
    # message's headers come from the read that stores it).
    mail = sorted((large_org.root / "alice" / "Mail" / "cur").iterdir())[0]
    mail.rename(mail.with_name(mail.name.split(":2,")[0] + ":2,FS"))
    edited = large_org.root / "alice" / "OneDrive" / "Documents" / "d0" / "f0.txt"
    edited.write_bytes(b"edited\n" * 300)
    new = large_org.mail("alice", "", "A new message")
    opened.clear()
    _backup(ctx, api, large_job, backup_proxy)
    assert sorted(Path(name).name for name in opened) == sorted([edited.name, new.name])


def test_an_initial_backup_encodes_each_item_once_in_the_pool_not_the_runs_thread(
    ctx: Context,
    api: Api,
    repo: dict[str, Any],
    backup_proxy: ProxyWorker,
    tmp_path: Path,
    coding: ItemCoding,
) -> None:
    """The run's thread records every item in order: each message's and file's JSON is made
    once, by the pool thread that stored its content (it was made by the run's thread)."""
    for items in (SMALL, 4 * SMALL):
        coding.encoded_in.clear()
        org = _organization(tmp_path / f"org{items}", items)
        _backup(ctx, api, _job(api, org, repo), backup_proxy)
        assert len(coding.encoded_in) == 2 * items  # N messages, N files, each once
        assert all(name.startswith("keepstone-backup") for name in coding.encoded_in)


def test_an_initial_backup_reads_each_file_in_a_few_system_calls(
    ctx: Context,
    api: Api,
    repo: dict[str, Any],
    backup_proxy: ProxyWorker,
    tmp_path: Path,
    source_calls: Counter[str],
) -> None:
    """What each item adds, from N to 4N items: the open, its status, the reads to the end
    (two for a small file: its bytes, then the end) straight into the chunker's window, the
    status again (did it change while read), the close; a message adds one status, taken when
    its read begins (the scan opened it). A buffered file made four calls more (its own status,
    a seek, a third read, and clearing O_NONBLOCK), each a hand-off of the GIL between the
    backup's threads. The folders' own calls are as many for 4N items as for N."""
    made: list[Counter[str]] = []
    for items in (SMALL, 4 * SMALL):
        org = _organization(tmp_path / f"org{items}", items)
        job = _job(api, org, repo)
        source_calls.clear()
        _backup(ctx, api, job, backup_proxy)
        made.append(Counter(source_calls))
    small, large = made
    added = 2 * (4 * SMALL - SMALL)  # N messages and N files each time
    per_item = {name: (large[name] - small[name]) / added for name in large}
    assert per_item == {"open": 1, "fstat": 2.5, "stat": 0, "readv": 2, "close": 1}
    assert not {"read", "lseek", "set_blocking"} & set(large)


def test_a_run_opens_its_repository_with_the_collector_paused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ctx: Context,
    api: Api,
    repo: dict[str, Any],
    backup_proxy: ProxyWorker,
) -> None:
    """Opening reads a tuple per index entry, and no cycle: a collection then (a full one
    walked every module of the process in the bench's incremental) would free nothing."""
    enabled: list[bool] = []
    real = vault.open_store

    def opening(*args: Any, **kwargs: Any) -> Repository:
        enabled.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(vault, "open_store", opening)
    job = _job(api, _organization(tmp_path / "org", 2), repo)
    assert gc.isenabled()
    _backup(ctx, api, job, backup_proxy)
    assert enabled == [False]
    assert gc.isenabled()  # and on again after
