"""A tree's items as their stored JSON (what an incremental keeps of its previous point), and
the writer taking that JSON back as it is."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from keepstone.engine import Item, RepositoryCorrupt, wire
from keepstone.engine.model import item_of_record, tree_records

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
