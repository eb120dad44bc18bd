"""``Repository.read_many``: every item's content byte for byte, in order, each chunk read once,
never more read ahead than its bounds, chunks read in batches (a pool task and mostly a store
read for many chunks, not one each), and a damaged chunk raised where it is consumed (work
counted for N and 4N items, not timed)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from keepstone.engine import Repository, RepositoryCorrupt, read_ahead
from keepstone.engine.pack import pack_path

from .helpers import backup, new_repo, pseudo_random, small_options, text


def _files(count: int) -> dict[str, bytes]:
    files = {f"alice/m{i}": text(f"m{i}", 300 + 37 * i) for i in range(count)}
    files["bob/empty"] = b""
    files["bob/big"] = pseudo_random("big", 200_000)  # many small chunks (tests' chunker)
    return files


class _Counted:
    """Wraps the repository's blob reads: how many blobs, and the most reads in flight at once."""

    def __init__(self, repo: Repository) -> None:
        self.reads = 0
        self.in_flight = self.most = 0
        self._mutex = threading.Lock()
        self._inner = repo._ctx.read_blobs

    def __call__(self, blob_ids: Sequence[bytes]) -> list[bytes]:
        with self._mutex:
            self.reads += len(blob_ids)
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            return self._inner(blob_ids)
        finally:
            with self._mutex:
                self.in_flight -= 1


def _read_all(repo: Repository, snapshot: str) -> tuple[dict[str, bytes], _Counted, int]:
    items = list(repo.items(snapshot))
    counted = _Counted(repo)
    repo._ctx.read_blobs = counted  # type: ignore[method-assign]
    got = {item.key: b"".join(content) for item, content in repo.read_many(items)}
    return got, counted, sum(len(i.chunks) for i in items)


@pytest.mark.parametrize("count", [10, 40], ids=["N", "4N"])
def test_read_many_gives_every_item_once_in_order(tmp_path: Path, count: int) -> None:
    repo = new_repo(tmp_path / "repo")
    files = _files(count)
    snapshot = backup(repo, files)
    got, counted, chunks = _read_all(repo, snapshot)
    assert got == files
    assert list(got) == list(files)  # the order given
    assert counted.reads == chunks  # each chunk read once: linear in the items
    assert counted.most <= read_ahead.READ_WORKERS


def test_read_ahead_stays_within_its_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer that never reads past the first item leaves at most the bound read ahead."""
    monkeypatch.setattr(read_ahead, "AHEAD_CHUNKS", 5)
    repo = new_repo(tmp_path / "repo")
    snapshot = backup(repo, _files(40))
    items = list(repo.items(snapshot))
    counted = _Counted(repo)
    repo._ctx.read_blobs = counted  # type: ignore[method-assign]
    reading = repo.read_many(items)
    item, content = next(reading)
    assert item.key == "alice/m0"
    next(content)
    reading.close()  # stops the pool; what was queued is cancelled or finished
    assert counted.reads <= 1 + 5


def test_an_item_left_unread_does_not_shift_the_next(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    files = {"bob/big": pseudo_random("big", 200_000), **_files(6)}  # the big one first
    snapshot = backup(repo, files)
    seen = {}
    for item, content in repo.read_many(list(repo.items(snapshot))):
        if item.key == "bob/big":
            next(content)  # one chunk of many, the rest skipped
            continue
        seen[item.key] = b"".join(content)
    assert seen == {k: v for k, v in files.items() if k != "bob/big"}


class _CountedPool(ThreadPoolExecutor):
    """The read-ahead's pool, counting the tasks given to it."""

    tasks = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        _CountedPool.tasks += 1
        return super().submit(fn, *args, **kwargs)


@pytest.mark.parametrize("count", [40, 160], ids=["N", "4N"])
def test_chunks_are_read_in_batches_not_one_task_and_store_read_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """Messages of one chunk each, in one pack: the caller's thread hands the pool a task per
    batch of chunks, and a batch lying together in the pack is one store read."""
    repo = new_repo(tmp_path / "repo", options=small_options(pack_size=4 * 1024 * 1024))
    files = {f"alice/m{i}": text(f"m{i}", 300 + 7 * i) for i in range(count)}
    snapshot = backup(repo, files)
    items = list(repo.items(snapshot))
    assert all(len(i.chunks) == 1 for i in items)
    # The bounds' sizes come from the index: a chunk's plaintext size, 0 for an unknown one.
    assert repo._ctx.index.raw_length(bytes.fromhex(items[1].chunks[0])) == len(files["alice/m1"])
    assert repo._ctx.index.raw_length(bytes(32)) == 0
    store_reads = 0
    inner = repo._ctx.store.get_range

    def get_range(name: str, offset: int, length: int) -> bytes:
        nonlocal store_reads
        store_reads += name.startswith("packs/")
        return inner(name, offset, length)

    monkeypatch.setattr(repo._ctx.store, "get_range", get_range)
    monkeypatch.setattr(read_ahead, "ThreadPoolExecutor", _CountedPool)
    _CountedPool.tasks = 0
    got = {item.key: b"".join(content) for item, content in repo.read_many(items)}
    assert got == files
    # One per batch of up to BATCH_CHUNKS (16) chunks: at least 8 chunks a task on average
    # (the last batches are smaller); one task and one store read per chunk before.
    assert _CountedPool.tasks * 8 <= count
    assert 0 < store_reads <= _CountedPool.tasks


def test_a_damaged_chunk_is_raised_where_it_is_consumed(tmp_path: Path) -> None:
    """A batch holding a damaged chunk still gives the items before it, whole."""
    repo = new_repo(tmp_path / "repo", options=small_options(pack_size=4 * 1024 * 1024))
    files = {f"alice/m{i}": text(f"m{i}", 500) for i in range(10)}
    snapshot = backup(repo, files)
    items = list(repo.items(snapshot))
    damaged = items[5]
    location = repo._ctx.index.get(bytes.fromhex(damaged.chunks[0]))
    assert location is not None
    path = tmp_path / "repo" / pack_path(location.pack)
    data = bytearray(path.read_bytes())
    data[location.offset + location.length // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    seen: dict[str, bytes] = {}
    with pytest.raises(RepositoryCorrupt):
        for item, content in repo.read_many(items):
            seen[item.key] = b"".join(content)
    assert seen == {k: files[k] for k in list(files)[:5]}
