"""forget and prune: space comes back, nothing referenced goes, locks are respected."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keepstone.clock import ManualClock
from keepstone.engine import LocalStore, Repository, RepositoryLocked, SnapshotNotFound
from keepstone.engine.locks import Lock
from keepstone.engine.maintenance import STALE_TEMPORARIES

from .helpers import backup, item_for, new_repo, pseudo_random, restore, small_options


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "packs").rglob("*") if p.is_file())


def _files(tag: str, count: int = 4, size: int = 60_000) -> dict[str, bytes]:
    return {f"u/{tag}/{i}": pseudo_random(f"{tag}{i}", size) for i in range(count)}


def test_forget_then_prune_frees_unreferenced_data(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    shared = _files("shared")
    old = backup(repo, {**shared, **_files("old")})
    new = backup(repo, {**shared, **_files("new")})
    before = _size(tmp_path)
    repo.forget([old])
    assert [s.id for s in repo.snapshots()] == [new]
    with pytest.raises(SnapshotNotFound):
        repo.forget([old])
    report = repo.prune()
    assert report.deleted_packs and report.freed_bytes > 200_000
    assert before - _size(tmp_path) == report.freed_bytes
    reopened = Repository.open(LocalStore(tmp_path))
    assert restore(reopened, new) == {**shared, **_files("new")}
    assert reopened.verify().ok
    assert repo.prune().deleted_packs == []  # nothing left to do


def test_prune_rewrites_partly_used_packs(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, options=small_options(pack_size=4 << 20))
    keep, drop = _files("keep", 2), _files("drop", 2)
    first = backup(repo, {**keep, **drop})  # one pack holds both
    writer = repo.writer({})
    for item in repo.items(first):
        if item.key in keep:
            assert writer.known(item.chunks)
            writer.add_item(item)  # an unchanged item is carried over without reading it
    second = writer.commit()
    repo.forget([first])
    report = repo.prune()
    assert report.rewritten_packs and report.freed_bytes > 100_000
    assert restore(repo, second) == keep
    assert Repository.open(LocalStore(tmp_path)).verify().ok


def test_prune_refuses_while_a_writer_is_live(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    old = backup(repo, _files("old"))
    writer = repo.writer({})
    new_files = _files("live")
    for key, content in new_files.items():
        chunks, size, _ = writer.add_file(content)
        writer.add_item(item_for(key, chunks, size))
    repo.forget([old])
    other = Repository.open(LocalStore(tmp_path))
    with pytest.raises(RepositoryLocked, match="in use"):
        other.prune()
    snapshot_id = writer.commit()
    assert restore(other, snapshot_id) == new_files
    assert other.prune().deleted_packs
    assert restore(other, snapshot_id) == new_files


def test_writer_refused_while_prune_holds_its_lock(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    ctx = repo._ctx
    lock = Lock.acquire(ctx.store, ctx.codec, ctx.options, exclusive=True)
    try:
        with pytest.raises(RepositoryLocked, match="exclusive"):
            repo.writer({})
    finally:
        lock.release()
    assert ctx.store.list("locks/") == []
    repo.writer({}).abort()


def test_stale_lock_is_ignored_and_a_writer_that_lost_its_lock_cannot_commit(
    tmp_path: Path,
) -> None:
    clock = ManualClock(datetime(2026, 6, 10, tzinfo=UTC))
    repo = new_repo(tmp_path, options=small_options(clock=clock, hostname="host-a"))
    old = backup(repo, _files("old"))
    writer = repo.writer({})  # hangs for longer than the stale limit
    writer.add_file(pseudo_random("hung", 50_000))
    repo.forget([old])
    clock.advance(timedelta(minutes=6))
    pruner = Repository.open(
        LocalStore(tmp_path), options=small_options(clock=clock, hostname="host-b")
    )
    assert pruner.prune().deleted_packs  # the stale lock did not stop it, and is gone
    assert pruner._ctx.store.list("locks/") == []
    with pytest.raises(RepositoryLocked, match="lost its repository lock"):
        writer.commit()
    assert pruner.verify().ok


def test_prune_deletes_crash_leftovers(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, options=small_options(index_every=1000))
    kept = backup(repo, _files("kept"))
    crashed = repo.writer({})  # uploads packs, then "dies" before any index file is written
    for content in _files("crash").values():
        crashed.add_file(content)
    crashed._uploads.drain()
    crashed._lock.release()
    report = repo.verify()
    assert report.ok and report.unindexed_packs
    pruned = repo.prune()
    assert sorted(pruned.deleted_packs) == report.unindexed_packs
    assert restore(repo, kept) == _files("kept")
    assert repo.verify().unindexed_packs == []


def test_prune_deletes_what_killed_runs_left_in_tmp_once_a_day_old(tmp_path: Path) -> None:
    """A run killed while it spooled a pack leaves the spool's file in ``tmp/``: prune deletes
    it once it is a day old, and never a temporary file that may still be written."""
    repo = new_repo(tmp_path)
    kept = backup(repo, _files("kept"))
    killed = repo.writer({})  # its pack being filled is spooled in pieces: then it "dies"
    killed.add_file(pseudo_random("killed", 40_000))
    killed._lock.release()
    left = sorted((tmp_path / "tmp").iterdir())
    assert left and all(path.stat().st_size >= 16 * 1024 for path in left)
    under_way = LocalStore(tmp_path).open_spool()
    under_way.write([b"a put still being written"])
    day_old = time.time() - STALE_TEMPORARIES - 60
    for path in left:
        os.utime(path, (day_old, day_old))
    sizes = sum(path.stat().st_size for path in left)
    pruned = repo.prune()
    assert pruned.freed_bytes == sizes
    assert not any(path.exists() for path in left)
    assert len(list((tmp_path / "tmp").iterdir())) == 1  # the one under way
    under_way.discard()
    assert restore(repo, kept) == _files("kept")
    assert repo.verify().ok


def test_prune_stops_before_deleting_when_a_snapshot_is_unreadable(tmp_path: Path) -> None:
    from keepstone.engine import RepositoryCorrupt

    repo = new_repo(tmp_path)
    first = backup(repo, _files("a"))
    backup(repo, _files("b"))
    (tmp_path / "snapshots" / first).write_bytes(b"\x00{}")
    packs_before = sorted((tmp_path / "packs").rglob("*"))
    with pytest.raises(RepositoryCorrupt, match="nothing deleted"):
        repo.prune()
    assert sorted((tmp_path / "packs").rglob("*")) == packs_before


def test_an_abandoned_writer_releases_its_lock_and_its_spool(tmp_path: Path) -> None:
    import gc

    # One pack, not yet full, past its first spool piece: its file is open, no upload runs.
    repo = new_repo(tmp_path, options=small_options(pack_size=8 << 20))
    writer = repo.writer({})
    writer.add_file(os.urandom(1 << 20))
    assert repo._ctx.store.list("locks/")
    assert list((tmp_path / "tmp").iterdir())
    del writer
    gc.collect()
    assert repo._ctx.store.list("locks/") == []
    assert list((tmp_path / "tmp").iterdir()) == []
    repo.prune()


def test_a_reader_opened_before_a_prune_still_restores(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, options=small_options(pack_size=4 << 20))
    keep, drop = _files("keep", 2), _files("drop", 2)
    first = backup(repo, {**keep, **drop})
    writer = repo.writer({})
    for item in repo.items(first):
        if item.key in keep:
            writer.add_item(item)
    second = writer.commit()
    reader = Repository.open(LocalStore(tmp_path))  # its index names the packs prune replaces
    repo.forget([first])
    assert repo.prune().rewritten_packs
    assert restore(reader, second) == keep


def test_the_lock_is_refreshed_while_a_run_goes_on(tmp_path: Path) -> None:
    import time

    repo = new_repo(tmp_path, options=small_options(lock_refresh=0.02))
    writer = repo.writer({})
    [first] = repo._ctx.store.list("locks/")
    deadline = time.monotonic() + 60  # generous: the machine may be loaded
    while first in repo._ctx.store.list("locks/") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first not in repo._ctx.store.list("locks/")
    writer.commit()
    assert repo._ctx.store.list("locks/") == []
