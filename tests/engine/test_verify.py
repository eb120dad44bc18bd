"""verify: damage is found and named down to the items and snapshots it touches."""

from __future__ import annotations

from pathlib import Path

import pytest

from keepstone.engine import LocalStore, Repository, RepositoryCorrupt
from keepstone.engine.pack import pack_path

from .helpers import PASSWORD, backup, new_repo, pseudo_random, restore, small_options, text


def _files(tag: str) -> dict[str, bytes]:
    return {
        f"alice/{tag}/a": pseudo_random(f"{tag}a", 40_000),
        f"alice/{tag}/b": text(f"{tag}b", 30_000),
        f"bob/{tag}/c": pseudo_random(f"{tag}c", 50_000),
    }


def _flip(root: Path, pack: str, offset: int) -> None:
    path = root / pack_path(pack)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("password", [None, PASSWORD], ids=["plain", "encrypted"])
def test_bit_flip_is_traced_to_items_and_snapshots(tmp_path: Path, password: str | None) -> None:
    repo = new_repo(tmp_path, password, options=small_options(pack_size=1 << 20))
    first_files, second_files = _files("one"), _files("two")
    first = backup(repo, first_files)
    second = backup(repo, {**second_files, "alice/one/a": first_files["alice/one/a"]})
    victim = next(i for i in repo.items(first) if i.key == "alice/one/a")
    chunk = victim.chunks[1]
    location = repo._ctx.index.get(bytes.fromhex(chunk))
    assert location is not None
    _flip(tmp_path, location.pack, location.offset + location.length // 2)

    reopened = Repository.open(LocalStore(tmp_path), password)
    progress: list[tuple[int, int]] = []
    report = reopened.verify(progress=lambda done, total: progress.append((done, total)))
    assert not report.ok
    assert report.damaged_packs == [location.pack]
    assert report.damaged_chunks == {chunk}
    assert sorted(report.damaged_items) == sorted([(first, victim.key), (second, victim.key)])
    assert sorted(report.damaged_snapshots) == sorted([first, second])
    assert report.checked_bytes > 0 and progress[-1][0] == progress[-1][1]

    with pytest.raises(RepositoryCorrupt):
        b"".join(reopened.read(victim))
    for snapshot_id, files in ((first, first_files), (second, second_files)):
        for item in reopened.items(snapshot_id):
            if item.key != victim.key:
                assert b"".join(reopened.read(item)) == files[item.key]


def test_damaged_pack_header_is_reported_without_losing_blobs(tmp_path: Path) -> None:
    repo = new_repo(tmp_path, options=small_options(pack_size=1 << 20))
    files = _files("x")
    snapshot_id = backup(repo, files)
    [pack] = repo._ctx.index.packs()
    size = (tmp_path / pack_path(pack)).stat().st_size
    _flip(tmp_path, pack, size - 10)  # inside the header
    report = Repository.open(LocalStore(tmp_path)).verify()
    assert report.damaged_packs == [pack] and not report.ok
    assert report.damaged_items == [] and report.damaged_chunks == set()
    assert restore(repo, snapshot_id) == files


def test_missing_pack_found_without_reading_data(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    snapshot_id = backup(repo, _files("m"))
    item = next(repo.items(snapshot_id))
    location = repo._ctx.index.get(bytes.fromhex(item.chunks[0]))
    assert location is not None
    (tmp_path / pack_path(location.pack)).unlink()
    report = Repository.open(LocalStore(tmp_path)).verify(read_data=False)
    assert report.damaged_packs == [location.pack]
    assert (snapshot_id, item.key) in report.damaged_items
    assert report.checked_bytes == 0


def test_damaged_snapshot_and_index_files(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    keep = backup(repo, _files("k"))
    lose = backup(repo, _files("l"))
    (tmp_path / "snapshots" / lose).write_bytes(b"\x00garbage")
    [index_file, *_] = sorted((tmp_path / "index").iterdir())
    index_file.write_bytes(b"\x00\x07")
    reopened = Repository.open(LocalStore(tmp_path))
    assert [s.id for s in reopened.snapshots()] == [keep]  # the damaged one is left out
    report = reopened.verify()
    assert lose in report.damaged_snapshots
    assert report.damaged_index == [f"index/{index_file.name}"]
    assert not report.ok
    reopened.rebuild_index()
    after = reopened.verify()
    assert after.damaged_index == [] and after.damaged_snapshots == [lose]


def test_rebuild_index_from_pack_headers(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    files = _files("r")
    snapshot_id = backup(repo, files)
    for index_file in (tmp_path / "index").iterdir():
        index_file.unlink()
    reopened = Repository.open(LocalStore(tmp_path))
    with pytest.raises(RepositoryCorrupt, match="missing"):
        restore(reopened, snapshot_id)
    assert not reopened.verify().ok
    reopened.rebuild_index()
    assert restore(reopened, snapshot_id) == files
    assert reopened.verify().ok
