"""A snapshot's folder summary and tree places: what browsing reads instead of every tree and the
index (issue 15), checked against the items themselves, and refused when malformed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from keepstone.engine import LocalStore, Repository, RepositoryCorrupt, folder_of, writer
from keepstone.engine.model import Snapshot
from tests.engine.helpers import backup, new_repo


def _files() -> dict[str, bytes]:
    return {
        f"{user}/docs/{n}.txt": f"{user} {n}".encode()
        for user in ("alice", "bob")
        for n in range(7)
    }


def test_the_summary_matches_the_items_and_names_their_trees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "TREE_MAX_ITEMS", 3)
    repo = new_repo(tmp_path)
    snapshot = backup(repo, _files())
    summary = repo.folders(snapshot)
    assert summary is not None
    assert repo.tree_count(snapshot) == 5  # 14 items, 3 a tree
    for folder in summary:
        held = [
            item
            for position in folder.trees
            for item in repo.tree_items(snapshot, position)
            if (item.user, item.kind, folder_of(item)) == (folder.user, folder.kind, folder.folder)
        ]
        assert len(held) == folder.count == 7
        assert folder.newest == max(item.mtime for item in held)
    everything = {(i.user, folder_of(i)) for i in repo.items(snapshot)}
    assert {(f.user, f.folder) for f in summary} == everything


def test_browsing_needs_no_index_and_finds_a_moved_tree_through_it(tmp_path: Path) -> None:
    snapshot = backup(new_repo(tmp_path), _files())
    reopened = Repository.open(LocalStore(tmp_path), load_index=False)
    assert len(reopened._ctx.index) == 0
    first = reopened.tree_items(snapshot, 0)
    assert len(reopened._ctx.index) == 0  # read from the place the snapshot records
    # A prune that rewrote the tree's pack: the recorded place names a pack that is gone.
    cached = reopened._snapshot(snapshot)
    assert cached.places is not None and cached.places[0] is not None
    gone = ("0" * 64, *cached.places[0][1:])
    reopened._snapshots[snapshot] = dataclasses.replace(cached, places=(gone,))
    assert reopened.tree_items(snapshot, 0) == first
    assert len(reopened._ctx.index) > 0  # found through the index, loaded for it


@pytest.mark.parametrize(
    "folders",
    [
        '"folders"',
        '[["alice","file","docs",1,0.0]]',
        '[["alice","file","docs","many",0.0,[0]]]',
        '[["alice","file","docs",1,0.0,[1]]]',  # a tree the snapshot does not have
        '[["alice","file","docs",1,0.0,[-1]]]',
    ],
)
def test_a_malformed_summary_is_refused(folders: str) -> None:
    plain = (
        '{"folders":' + folders + ',"item_count":1,"parent":null,"size":1,"tags":{},'
        '"time":"2026-06-10T10:00:00.000000+00:00","trees":["' + "a" * 64 + '"],"version":1}'
    )
    with pytest.raises(RepositoryCorrupt):
        Snapshot.parse("b" * 64, plain.encode())


def test_malformed_tree_places_are_refused() -> None:
    for places in ('[["nothex",0,1,1]]', "[]", '[["' + "c" * 64 + '",0,1]]'):
        plain = (
            '{"item_count":1,"parent":null,"size":1,"tags":{},"tree_places":' + places + ","
            '"time":"2026-06-10T10:00:00.000000+00:00","trees":["' + "a" * 64 + '"],"version":1}'
        )
        with pytest.raises(RepositoryCorrupt):
            Snapshot.parse("b" * 64, plain.encode())


def test_records_carried_in_blocks_give_the_trees_and_summary_of_items_added_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``add_records`` (an incremental's unchanged items, a folder block at a time, counted in
    the summary once per tree) writes what ``add_item`` writes, blocks crossing trees included."""
    monkeypatch.setattr(writer, "TREE_MAX_ITEMS", 3)
    repo = new_repo(tmp_path)
    first = backup(repo, _files())
    records = list(repo.item_records(first))
    items = {item.key: item for item in repo.items(first)}
    with repo.writer({}) as again:
        for user in ("alice", "bob"):  # 7 items each: blocks of 5 and 2, across trees
            mine = [(r, items[k].size, items[k].mtime) for k, u, r in records if u == user]
            folder = folder_of(items[f"{user}/docs/0.txt"])
            for block in (mine[:5], mine[5:]):
                again.add_records(user, "file", folder, block)
        second = again.commit()
    assert repo.folders(second) == repo.folders(first)
    assert [repo.tree_items(second, p) for p in range(5)] == [
        repo.tree_items(first, p) for p in range(5)
    ]
