"""The pure parts of the OneDrive connector: quickXorHash (against the fake's reference and
Microsoft's published vectors), folder paths from parent ids, and where a restore puts a file."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from keepstone.domain.quickxor import QuickXor, quickxor_hash
from keepstone.engine import Item
from keepstone.sources.graph.drive_backup import DriveModel, File, Folder, FolderPaths, _matches
from keepstone.sources.graph.drive_restore import target_of
from tests.graph_fake.quickxor import quickxorhash


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=6))
def test_quickxor_agrees_with_the_reference_however_the_bytes_are_cut(
    data: bytes, cuts: list[int]
) -> None:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert quickxor_hash(pieces) == quickxor_hash(data) == quickxorhash(data)


def test_quickxor_known_values() -> None:
    assert quickxor_hash(b"") == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    hasher = QuickXor()
    hasher.update(b"a" * 100_000)
    assert hasher.b64digest() == quickxorhash(b"a" * 100_000)


def _model(
    folders: dict[str, tuple[str, str | None]], deleted: frozenset[str] = frozenset()
) -> DriveModel:
    model = DriveModel(root_id="root")
    model.folders = {k: Folder(name, parent) for k, (name, parent) in folders.items()}
    model.deleted = set(deleted)
    return model


def test_folder_paths_from_parent_ids_orphans_cycles_and_deleted_parents() -> None:
    paths = FolderPaths(
        _model(
            {
                "c": ("Child/..", "b"),  # listed before its parents: order does not matter
                "b": ("B", "a"),
                "a": ("A", "root"),
                "o": ("Orphan", "unknown"),
                "x": ("X", "y"),
                "y": ("Y", "x"),
                "d": ("Under deleted", "gone"),
            },
            deleted=frozenset({"gone"}),
        )
    )
    assert paths.of("c") == "A/B/Child_.."
    assert paths.of("b") == "A/B" and paths.of("root") == ""
    assert paths.of("o") == "Orphan"
    assert paths.of("x") in ("Y/X", "X/Y", "X", "Y")  # a cycle is cut, never endless
    assert paths.of("d") is None


def test_folder_paths_are_linear_in_the_number_of_folders() -> None:
    chain = {str(n): (f"f{n}", str(n - 1) if n else "root") for n in range(3000)}
    paths = FolderPaths(_model(chain))
    assert paths.of("2999") is not None and paths.of("2999").count("/") == 2999  # type: ignore[union-attr]
    assert len(paths._memo) == 3001  # each folder computed once (and the root)


def test_a_download_matches_by_size_and_hash() -> None:
    data = b"hello" * 100
    file = File("i", "n", None, len(data), "c", quickxorhash(data), "", "")
    assert _matches(io.BytesIO(data), file)
    assert not _matches(io.BytesIO(data[:-1] + b"!"), file)
    assert not _matches(io.BytesIO(data[:-1]), File("i", "n", None, len(data), "c", "", "", ""))


def _item(path: str, **meta: Any) -> Item:
    return Item(f"u/graph-drive/{path}", "u", "file", path, 1, 0.0, 0o644, meta)


def test_restore_targets_are_safe_components_below_the_folder() -> None:
    assert target_of(_item("A/b.txt", source="graph", name="b.txt"), None) == (("A",), "b.txt")
    assert target_of(_item("x/y", source="graph", name="../../z"), "..") == (
        ("_..", "x"),
        ".._.._z",
    )
    assert target_of(_item("Docs/a.txt"), "To/Here") == (("To", "Here", "Docs"), "a.txt")
