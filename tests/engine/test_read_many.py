"""``Repository.read_many``: every item's content byte for byte, in order, each chunk read once,
and never more read ahead than its bounds (work counted for N and 4N items, not timed)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from keepstone.engine import Repository, read_ahead

from .helpers import backup, new_repo, pseudo_random, text


def _files(count: int) -> dict[str, bytes]:
    files = {f"alice/m{i}": text(f"m{i}", 300 + 37 * i) for i in range(count)}
    files["bob/empty"] = b""
    files["bob/big"] = pseudo_random("big", 200_000)  # many small chunks (tests' chunker)
    return files


class _Counted:
    """Wraps the repository's blob reads: how many, and the most in flight at once."""

    def __init__(self, repo: Repository) -> None:
        self.reads = 0
        self.in_flight = self.most = 0
        self._mutex = threading.Lock()
        self._inner = repo._ctx.read_blob

    def __call__(self, blob_id: bytes) -> bytes:
        with self._mutex:
            self.reads += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            return self._inner(blob_id)
        finally:
            with self._mutex:
                self.in_flight -= 1


def _read_all(repo: Repository, snapshot: str) -> tuple[dict[str, bytes], _Counted, int]:
    items = list(repo.items(snapshot))
    counted = _Counted(repo)
    repo._ctx.read_blob = counted  # type: ignore[method-assign]
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
    repo._ctx.read_blob = counted  # type: ignore[method-assign]
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
