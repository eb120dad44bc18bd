"""The per-item path of a backup's main thread and pool, counted, not timed: a stored item's
after-read check is one attribute look-up, not a runtime protocol check (``isinstance`` with a
runtime-checkable ``Protocol`` walks its members: about 5 us an item, under the GIL, in every
backup thread); the items read ahead of the one being recorded are bounded in count and bytes."""

from __future__ import annotations

import io
import os
import typing
from concurrent.futures import Future
from pathlib import Path

import pytest

from keepstone.engine import Item
from keepstone.proxy.backup import (
    IN_FLIGHT,
    IN_FLIGHT_BYTES,
    ReadAhead,
    Stored,
    _changed_while_read,
)
from keepstone.sources.confined import OpenedFile
from keepstone.sources.connector import CarriedBlock, SourceItem


@pytest.mark.parametrize("items", [5, 20], ids=["N", "4N"])
def test_the_check_after_reading_makes_no_protocol_check(
    items: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks: list[type] = []
    real = type(typing.Protocol).__instancecheck__

    def counting(cls: type, instance: object) -> bool:
        checks.append(cls)
        return bool(real(cls, instance))

    monkeypatch.setattr(type(typing.Protocol), "__instancecheck__", counting)
    changed = []
    for n in range(items):
        path = tmp_path / f"m{n}"
        path.write_bytes(b"x" * 100)
        fd = os.open(path, os.O_RDONLY)
        with OpenedFile(fd, os.fstat(fd), str(path)) as stream:
            stream.read()
            changed.append(_changed_while_read(stream, 100))
            changed.append(_changed_while_read(stream, 99))  # fewer bytes than it had
        changed.append(_changed_while_read(io.BytesIO(b"plain"), 5))  # not watched
    assert changed == [False, True, False] * items
    assert checks == []


def _item(n: int, size: int) -> SourceItem:
    return SourceItem(
        f"u/file/{n}", "u", "file", f"f{n}", size, 0.0, 0o644, {}, "t", None, io.BytesIO
    )


def _held(sizes: list[int]) -> tuple[int, int]:
    """Feed items of ``sizes`` (each handed to the pool) through a ``ReadAhead`` as a run
    does; the most entries and the most pool bytes it held at once."""
    ahead, most, most_bytes, held = ReadAhead(), 0, 0, []
    for n, size in enumerate(sizes):
        ahead.add((_item(n, size), Future()))
        held.append(size)
        most, most_bytes = max(most, len(held)), max(most_bytes, sum(held))
        for _ in ahead.due():
            held.pop(0)
    assert len(list(ahead.rest())) == len(held)
    return most, most_bytes


@pytest.mark.parametrize("items", [1000, 4000], ids=["N", "4N"])
def test_read_ahead_holds_a_bounded_count_of_small_items(items: int) -> None:
    assert _held([30_000] * items)[0] == IN_FLIGHT


@pytest.mark.parametrize("items", [100, 400], ids=["N", "4N"])
def test_read_ahead_holds_a_bounded_size_of_large_items(items: int) -> None:
    """A remote source's items carry their content until stored: bytes bound them too."""
    size = 5 * 1024 * 1024
    most, most_bytes = _held([size] * items)
    assert most_bytes <= IN_FLIGHT_BYTES + size
    assert most == IN_FLIGHT_BYTES // size + 1


def test_read_ahead_counts_only_items_given_to_the_pool() -> None:
    ahead = ReadAhead()
    for n in range(IN_FLIGHT - 1):  # carried items: already stored, no bytes held
        ahead.add((_item(n, 10**9), Stored(Item(f"k{n}", "u", "file", "p", 10**9, 0.0, 0o644))))
    assert list(ahead.due()) == []
    ahead.add(CarriedBlock("u", "mail", "Inbox", []))
    assert len(list(ahead.due())) == 1
