"""A store that fails mid-run: the run refuses to commit, keeps what is durable, and leaves a
repository that verifies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from keepstone.engine import BackupFailed, LocalStore, Repository

from .helpers import CHEAP_KDF, SMALL_CHUNKS, backup, pseudo_random, restore, small_options


class FlakyStore(LocalStore):
    """Fails every pack put after the first ``good`` ones, like a disk that fills up."""

    def __init__(self, root: Path, good: int) -> None:
        super().__init__(root)
        self.good = good

    def put_parts(self, name: str, parts: Sequence[bytes]) -> None:
        if name.startswith("packs/"):
            if self.good <= 0:
                raise OSError(28, "No space left on device")
            self.good -= 1
        super().put_parts(name, parts)


def test_failed_uploads_stop_the_run(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path, good=10**6)
    repo = Repository.init(
        store, None, kdf_cost=CHEAP_KDF, chunker=SMALL_CHUNKS, options=small_options()
    )
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
    assert [s.id for s in repo.snapshots()] == [kept]
    store.good = 10**6
    assert repo.verify().ok
    assert restore(repo, kept) == {"a": pseudo_random("a", 50_000)}
