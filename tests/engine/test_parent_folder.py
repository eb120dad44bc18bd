"""``folder_of`` cuts a file's path at its last slash where pathlib would give the same, and
asks pathlib otherwise: the same folder for every arrangement of names, dots and slashes."""

from __future__ import annotations

import itertools
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepstone.engine import Item, folder_of, model


def _pathlib(path: str) -> str:
    return str(PurePosixPath(path).parent)


def test_every_short_arrangement_of_names_dots_and_slashes() -> None:
    for length in range(8):
        for parts in itertools.product(("a", "b", ".", "/", ".."), repeat=length):
            path = "".join(parts)
            assert model.parent_folder(path) == _pathlib(path), path


@given(st.text(alphabet=st.sampled_from("ab./é \\"), max_size=24))
def test_any_path_of_a_small_alphabet(path: str) -> None:
    assert model.parent_folder(path) == _pathlib(path)


def test_a_scanned_file_path_is_cut_without_pathlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer asks ``folder_of`` of every file it adds: no pathlib parse for a path as the
    scan spells it (one per file before), for N files or 4N."""
    parsed: list[str] = []

    class Counting(PurePosixPath):
        def __new__(cls, *args: str) -> Counting:
            parsed.append(args[0])
            return super().__new__(cls, *args)

    monkeypatch.setattr(model, "PurePosixPath", Counting)
    for count in (10, 40):
        items = [
            Item(f"u/drive/d{n}", "u", "file", f"Documents/été/d{n % 3}/f {n}.txt", 1, 0.0, 0o644)
            for n in range(count)
        ]
        assert [folder_of(item) for item in items] == [
            f"Documents/été/d{n % 3}" for n in range(count)
        ]
        assert folder_of(Item("u/drive/top", "u", "file", "top.txt", 1, 0.0, 0o644)) == "."
        assert parsed == []
