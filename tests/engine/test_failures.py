"""A store that fails mid-run: the run refuses to commit, keeps what is durable, and leaves a
repository that verifies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from keepstone.engine import BackupFailed, LocalStore, Repository
from keepstone.engine.store import FileSpool

from .helpers import CHEAP_KDF, SMALL_CHUNKS, backup, pseudo_random, restore, small_options

FULL = OSError(28, "No space left on device")


class FlakyStore(LocalStore):
    """Like a disk that fills up: after the first ``good`` packs, storing a pack fails when it
    is made durable; while ``full``, every write fails (a pack's spool mid-pack among them)."""

    def __init__(self, root: Path, good: int) -> None:
        super().__init__(root)
        self.good = good
        self.full = False

    def open_spool(self) -> FileSpool:
        return FlakySpool(self)

    def spooled(self) -> list[Path]:
        """What is left of spools in ``tmp/``: nothing once every run ended."""
        tmp = self.root / "tmp"
        return sorted(tmp.iterdir()) if tmp.is_dir() else []


class FlakySpool(FileSpool):
    def __init__(self, store: FlakyStore) -> None:
        super().__init__(store)
        self.flaky = store

    def write(self, parts: Sequence[bytes]) -> None:
        if self.flaky.full:
            raise FULL
        super().write(parts)

    def commit(self, name: str) -> None:
        if name.startswith("packs/"):
            if self.flaky.good <= 0:
                self.discard()
                raise FULL
            self.flaky.good -= 1
        super().commit(name)


def _repo(store: FlakyStore) -> Repository:
    return Repository.init(
        store, None, kdf_cost=CHEAP_KDF, chunker=SMALL_CHUNKS, options=small_options()
    )


def test_failed_uploads_stop_the_run(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path, good=10**6)
    repo = _repo(store)
    kept = backup(repo, {"a": pseudo_random("a", 50_000)})
    store.good = 2
    writer = repo.writer({})
    with pytest.raises(BackupFailed, match="No space left") as raised:
        for i in range(20):
            writer.add_file(pseudo_random(f"b{i}", 50_000))
        writer.commit()
    assert isinstance(raised.value.__cause__, OSError)
    writer.abort()  # keeps what is durable; a no-op if commit already closed the run
    assert store.list("locks/") == []
    assert store.spooled() == []
    assert [s.id for s in repo.snapshots()] == [kept]
    store.good = 10**6
    assert repo.verify().ok
    assert restore(repo, kept) == {"a": pseudo_random("a", 50_000)}


def test_a_pack_whose_spool_fails_mid_pack_is_never_stored(tmp_path: Path) -> None:
    """The disk fills while a pack is being spooled (its bytes go out in pieces as blobs come):
    that pack is dropped whole, never finished with a hole; what was durable stays, and once
    there is room again the same content is stored and restores byte for byte."""
    store = FlakyStore(tmp_path, good=10**6)
    repo = _repo(store)
    kept = backup(repo, {"a": pseudo_random("a", 50_000)})
    writer = repo.writer({})
    writer.add_file(pseudo_random("b0", 150_000))  # a few packs durable, one being filled
    store.full = True
    with pytest.raises(BackupFailed, match="No space left") as raised:
        for i in range(1, 20):
            writer.add_file(pseudo_random(f"b{i}", 50_000))
    assert isinstance(raised.value.__cause__, OSError)
    store.full = False
    writer.abort()
    assert store.list("locks/") == []
    assert store.spooled() == []
    assert [s.id for s in repo.snapshots()] == [kept]
    assert repo.verify().ok
    files = {f"b{i}": pseudo_random(f"b{i}", 150_000 if i == 0 else 50_000) for i in range(20)}
    again = backup(repo, files)
    assert repo.verify().ok
    assert restore(repo, again) == files
