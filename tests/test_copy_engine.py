"""engine/copy.py: snapshots copied between repositories of any keys, incrementally."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from keepstone.engine import LocalStore, Repository, WrongPassword
from keepstone.engine.copy import TAG_COPY_OF, copy_snapshots, pending
from keepstone.engine.store import FileSpool
from tests.engine.helpers import PASSWORD, backup, new_repo, pseudo_random, small_options

OTHER_PASSWORD = "another battery, another horse"


class CountingStore(LocalStore):
    """A local store that counts reads per kind of object (packs, index, snapshots, ...)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: Counter[str] = Counter()
        self.puts: Counter[str] = Counter()

    def get(self, name: str) -> bytes:
        self.reads[name.split("/", 1)[0]] += 1
        return super().get(name)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        self.reads[name.split("/", 1)[0]] += 1
        return super().get_range(name, offset, length)

    def open_spool(self) -> FileSpool:
        return CountingSpool(self)


class CountingSpool(FileSpool):
    """Every object a local store writes is a spool committed under its name."""

    def __init__(self, store: CountingStore) -> None:
        super().__init__(store)
        self.puts = store.puts

    def commit(self, name: str) -> None:
        self.puts[name.split("/", 1)[0]] += 1
        super().commit(name)


def _open(root: Path, password: str | None) -> tuple[Repository, CountingStore]:
    store = CountingStore(root)
    return Repository.open(store, password, options=small_options()), store


def _files(run: int, count: int, changed: int = 1) -> dict[str, bytes]:
    """``count`` files of which the first ``changed`` differ from run to run."""
    return {
        f"u/f{i}": pseudo_random(f"{'run' + str(run) if i < changed else 'same'}/{i}", 20_000)
        for i in range(count)
    }


def _contents(repo: Repository, snapshot_id: str) -> dict[str, bytes]:
    return {item.key: b"".join(repo.read(item)) for item in repo.items(snapshot_id)}


def _copy_all(source: Repository, target: Repository) -> list[tuple[str, str]]:
    todo = pending(source, target, lambda info: True)
    return copy_snapshots(source, target, todo, lambda info: info.tags | {"copy_job": "cj"}).copied


@pytest.mark.parametrize(
    ("source_password", "target_password"),
    [(None, PASSWORD), (PASSWORD, None), (PASSWORD, OTHER_PASSWORD), (None, None)],
)
def test_a_copy_restores_alone_and_verifies(
    tmp_path: Path, source_password: str | None, target_password: str | None
) -> None:
    source = new_repo(tmp_path / "source", source_password)
    target = new_repo(tmp_path / "target", target_password)
    files = _files(1, 5)
    snapshot = backup(source, files, {"job_id": "j1", "session_id": "s1"})

    ((copied_from, copy_id),) = _copy_all(source, target)

    assert copied_from == snapshot
    shutil.rmtree(tmp_path / "source")
    reopened = Repository.open(LocalStore(tmp_path / "target"), target_password)
    (info,) = reopened.snapshots()
    assert info.id == copy_id
    assert info.tags["job_id"] == "j1" and info.tags[TAG_COPY_OF] == snapshot
    assert _contents(reopened, copy_id) == files
    assert reopened.verify().ok


def test_an_encrypted_target_cuts_with_its_own_seed(tmp_path: Path) -> None:
    """Chunks of an unencrypted source are cut again with the target's secret seed: their
    lengths (public in the source) do not reach the encrypted copy."""
    source = new_repo(tmp_path / "source")
    target = new_repo(tmp_path / "target", PASSWORD)
    snapshot = backup(source, {"u/big": pseudo_random("big", 200_000)})
    _copy_all(source, target)
    (src_item,) = source.items(snapshot)
    (copy_item,) = target.items(target.snapshots()[0].id)
    assert not set(src_item.chunks) & set(copy_item.chunks)
    assert b"".join(target.read(copy_item)) == pseudo_random("big", 200_000)


def test_the_second_copy_reads_only_what_changed(tmp_path: Path) -> None:
    source = new_repo(tmp_path / "source", PASSWORD)
    new_repo(tmp_path / "target", OTHER_PASSWORD)
    backup(source, _files(1, 20), {"job_id": "j"})
    target, _ = _open(tmp_path / "target", OTHER_PASSWORD)
    _copy_all(source, target)
    second = backup(source, _files(2, 20), {"job_id": "j"})  # one file of twenty changed
    # The source's chunker seed is secret and random: count the changed file's chunks.
    changed = next(len(i.chunks) for i in source.items(second) if i.key == "u/f0")

    source_again, source_store = _open(tmp_path / "source", PASSWORD)
    target_again, target_store = _open(tmp_path / "target", OTHER_PASSWORD)
    stats = copy_snapshots(
        source_again, target_again, pending(source_again, target_again, lambda i: True)
    )

    assert (stats.snapshots, stats.items_read, stats.items_carried) == (1, 1, 19)
    assert stats.bytes_read == 20_000
    # packs read: the changed file's chunks and the trees of the new point and of the last pair
    assert source_store.reads["packs"] <= changed + 3
    assert target_store.puts["packs"] <= 2
    assert target_again.verify().ok


def test_nothing_new_reads_only_indexes_and_snapshots(tmp_path: Path) -> None:
    source = new_repo(tmp_path / "source")
    new_repo(tmp_path / "target", PASSWORD)
    backup(source, _files(1, 10), {"job_id": "j"})
    target, _ = _open(tmp_path / "target", PASSWORD)
    _copy_all(source, target)

    source_again, source_store = _open(tmp_path / "source", None)
    target_again, target_store = _open(tmp_path / "target", PASSWORD)
    todo = pending(source_again, target_again, lambda i: True)
    stats = copy_snapshots(source_again, target_again, todo)

    assert todo == [] and stats.snapshots == 0
    assert source_store.reads["packs"] == target_store.reads["packs"] == 0
    assert sum(target_store.puts.values()) == 0


def test_the_first_copy_takes_the_newest_point_then_every_newer_one(tmp_path: Path) -> None:
    source = new_repo(tmp_path / "source")
    target = new_repo(tmp_path / "target")
    older = backup(source, _files(1, 2), {"job_id": "j"})
    newest = backup(source, _files(2, 2), {"job_id": "j"})
    backup(source, _files(9, 2), {"job_id": "other"})
    mine = lambda info: info.tags.get("job_id") == "j"  # noqa: E731

    assert [s.id for s in pending(source, target, mine)] == [newest]
    copy_snapshots(source, target, pending(source, target, mine))
    later = [backup(source, _files(run, 2), {"job_id": "j"}) for run in (3, 4)]

    assert [s.id for s in pending(source, target, mine)] == later
    assert older not in {s.tags[TAG_COPY_OF] for s in target.snapshots()}


def test_a_copy_survives_its_pairs_source_being_forgotten(tmp_path: Path) -> None:
    source = new_repo(tmp_path / "source")
    target = new_repo(tmp_path / "target", PASSWORD)
    first = backup(source, _files(1, 4), {"job_id": "j"})
    _copy_all(source, target)
    source.forget([first])
    second = backup(source, _files(2, 4), {"job_id": "j"})
    stats = copy_snapshots(source, target, pending(source, target, lambda i: True))
    assert stats.items_read == 4  # no pair to carry from: read, but stored only where new
    copy = next(s for s in target.snapshots() if s.tags[TAG_COPY_OF] == second)
    assert _contents(target, copy.id) == _files(2, 4)


def _copy_work(tmp_path: Path, points: int) -> tuple[int, int]:
    """Reads of source packs and puts of target packs to copy ``points`` new restore points."""
    source = new_repo(tmp_path / f"s{points}")
    target = new_repo(tmp_path / f"t{points}", PASSWORD)
    backup(source, _files(0, 8), {"job_id": "j"})
    _copy_all(source, target)
    for run in range(1, points + 1):
        backup(source, _files(run, 8, changed=2), {"job_id": "j"})
    source_again, source_store = _open(tmp_path / f"s{points}", None)
    target_again, target_store = _open(tmp_path / f"t{points}", PASSWORD)
    stats = copy_snapshots(
        source_again, target_again, pending(source_again, target_again, lambda i: True)
    )
    assert stats.snapshots == points and stats.items_read == 2 * points
    return source_store.reads["packs"], target_store.puts["packs"]


def test_copy_work_is_linear_in_restore_points(tmp_path: Path) -> None:
    reads_n, puts_n = _copy_work(tmp_path, 3)
    reads_4n, puts_4n = _copy_work(tmp_path, 12)
    assert reads_4n <= 4 * reads_n + 4
    assert puts_4n <= 4 * puts_n + 4


def test_keys_of_two_repositories_never_mix(tmp_path: Path) -> None:
    """Opening the copy with the source's password fails: it has its own master key."""
    source = new_repo(tmp_path / "source", PASSWORD)
    target = new_repo(tmp_path / "target", OTHER_PASSWORD)
    backup(source, _files(1, 1))
    _copy_all(source, target)
    with pytest.raises(WrongPassword):
        Repository.open(LocalStore(tmp_path / "target"), PASSWORD, options=small_options())
