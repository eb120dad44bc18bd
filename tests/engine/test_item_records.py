"""A tree's items as their stored JSON (what an incremental keeps of its previous point), and
the writer taking that JSON back as it is."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from keepstone.engine import Item, RepositoryCorrupt, wire
from keepstone.engine.model import (
    cut_tree_records,
    item_of_record,
    record_chunks,
    record_has,
    record_size_mtime,
    tree_records,
)

from .helpers import item_for, new_repo


def _tree(items: list[Item]) -> bytes:
    return wire.dumps([i.to_json() for i in items])


def test_a_canonical_tree_is_cut_into_its_items_stored_bytes() -> None:
    items = [item_for(f"alice/f{n}", (f"{n:064x}",), n) for n in range(5)]
    records = tree_records(_tree(items), "tree")
    assert [(k, u) for k, u, _ in records] == [(i.key, i.user) for i in items]
    assert [r for _, _, r in records] == [wire.dumps(i.to_json()) for i in items]
    assert [item_of_record(r, k, "tree") for k, _, r in records] == items


def test_the_separator_inside_an_item_is_not_taken_for_a_cut() -> None:
    tricky = Item("bob/x", "bob", "file", "x", 1, 0.0, 0o644, {"a": [{}, {"chunks": []}]}, ())
    items = [item_for("alice/a", (), 0), tricky, item_for("carol/c", (), 0)]
    records = tree_records(_tree(items), "tree")
    assert [item_of_record(r, k, "tree") for k, _, r in records] == items


def test_a_record_read_without_decoding_agrees_with_its_decoding() -> None:
    """Chunks, size, mtime and a field's value read from a record's bytes (an incremental carries
    unchanged items so) are the decoded item's, whatever its strings hold."""
    hostile = ',"size":7,"mtime":1.5,"path":"x","user":"u"}],"change_token":"t\\"'
    items = [
        Item("a/1", "a", "mail", hostile, 123, 1.7e9, 0o600, {"change_token": "a:1:2:3"}),
        Item("a/2", hostile, "file", "p", 0, 0.0, 0o644, {"s": hostile, "change_token": ""}),
        Item("a/3", "a", "file", 'é/"', 2**40, 1e-7, 0o644, {"change_token": 'q"\\é'}),
    ]
    chunked = [replace(i, chunks=(f"{7:064x}", f"{9:064x}")) for i in items]
    for item in items + chunked:
        record = wire.dumps(item.to_json())
        assert record_chunks(record) == [bytes.fromhex(c) for c in item.chunks]
        assert record_size_mtime(record) == (item.size, item.mtime)
        token = item.meta["change_token"]
        assert record_has(record, "change_token", token)
        assert not record_has(record, "change_token", token + "x")
        assert not record_has(record, "change_token", "t\\")
    assert record_chunks(b'{"key":"a","chunks":[]}') is None  # not canonical: not carried


def test_a_tree_cut_without_decoding_gives_what_decoding_gives() -> None:
    """Keys and users read from the bytes (escapes, quotes, non-ASCII, empty strings) are the
    decoded ones; a separator inside an item's meta makes one piece too many, which the
    snapshot's item count gives away (``Repository.item_records`` then decodes)."""
    odd = ['a"b', "c\\d", "é/ü", "", '],"key":"x', ',"user":"y']
    items = [
        Item(f"{k}/{n}", u, "file", "p", n, 0.0, 0o644, {"m": k}, ())
        for n, (k, u) in enumerate(zip(odd, reversed(odd), strict=True))
    ]
    assert cut_tree_records(_tree(items)) == tree_records(_tree(items), "tree")
    # Runs of the same user (read once per run), ended by a user whose name only starts alike.
    runs = [Item(f"k/{n}", u, "file", "p", n, 0.0, 0o644, {}, ()) for n, u in
            enumerate(['a"b', 'a"b', "é", "é", "é", "é2", 'a"b', ""])]  # fmt: skip
    assert cut_tree_records(_tree(runs)) == tree_records(_tree(runs), "tree")
    tricky = Item("bob/x", "bob", "file", "x", 1, 0.0, 0o644, {"a": [{}, {"chunks": []}]}, ())
    cut = cut_tree_records(_tree([tricky]))
    assert cut is None or len(cut) > 1


def test_item_records_of_a_snapshot_whose_cut_is_off_are_decoded(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tricky = Item("bob/x", "bob", "file", "x", 1, 0.0, 0o644, {"a": [{}, {"chunks": []}]}, ())
    plain = [item_for("alice/a", (), 0), item_for("carol/c", (), 0)]
    with repo.writer({}) as writer:
        for item in [plain[0], tricky, plain[1]]:
            writer.add_item(item)
        snapshot = writer.commit()
    records = list(repo.item_records(snapshot))
    assert [item_of_record(r, k, "tree") for k, _, r in records] == [plain[0], tricky, plain[1]]


def test_a_record_under_another_key_is_refused() -> None:
    [(_, _, record)] = tree_records(_tree([item_for("alice/a", (), 0)]), "tree")
    with pytest.raises(RepositoryCorrupt):
        item_of_record(record, "alice/b", "tree")
    with pytest.raises(RepositoryCorrupt):
        item_of_record(record[:-1], "alice/a", "tree")


def test_an_item_added_with_its_record_makes_the_same_tree(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    writer = repo.writer({"job_id": "t"})
    chunks, size, _ = writer.add_file(io.BytesIO(b"content"))
    first = item_for("alice/a", chunks, size)
    writer.add_item(first)
    snapshot = writer.commit()
    [(key, _, record)] = list(repo.item_records(snapshot))
    again = repo.writer({"job_id": "t"}, parent=snapshot)
    again.add_item(item_of_record(record, key, "tree"), record)
    second = again.commit()
    assert repo._snapshot(second).trees == repo._snapshot(snapshot).trees
