"""The per-item path of a backup's main thread and pool, counted, not timed: a stored item's
after-read check is one attribute look-up, not a runtime protocol check (``isinstance`` with a
runtime-checkable ``Protocol`` walks its members: about 5 us an item, under the GIL, in every
backup thread); the items read ahead of the one being recorded are bounded in count and bytes."""

from __future__ import annotations

import io
import os
import typing
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from keepstone.engine import Item
from keepstone.proxy.backup import (
    BATCH_ITEM_BYTES,
    BATCH_ITEMS,
    IN_FLIGHT,
    IN_FLIGHT_BYTES,
    Batches,
    ReadAhead,
    Stored,
    UnreadableItem,
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


class _CountingPool(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(2)
        self.tasks = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.tasks += 1
        return super().submit(fn, *args, **kwargs)


def _through_batches(sizes: list[int], unreadable: int = -1) -> tuple[int, list[str]]:
    """Items of ``sizes`` stored through ``Batches`` (item ``unreadable`` fails): the pool's
    tasks, and each item's outcome in the order given."""

    def store(items: list[SourceItem]) -> list[Stored | UnreadableItem]:
        return [
            UnreadableItem("gone") if i.key == f"u/file/{unreadable}" else
            Stored(Item(i.key, "u", "file", i.path, i.size, 0.0, 0o644))
            for i in items
        ]  # fmt: skip

    outcomes = []
    with _CountingPool() as pool:
        batches = Batches(pool, store)  # type: ignore[arg-type]
        slots = [batches.add(_item(n, size)) for n, size in enumerate(sizes)]
        batches.flush()
        for slot in slots:
            try:
                outcomes.append(slot.result().item.key)
            except UnreadableItem as error:
                outcomes.append(str(error))
    return pool.tasks, outcomes


@pytest.mark.parametrize("items", [160, 640], ids=["N", "4N"])
def test_small_items_go_to_the_pool_a_batch_at_a_time(items: int) -> None:
    """A task per item cost a future, a queue hand-off and a wake-up under the GIL each."""
    tasks, outcomes = _through_batches([30_000] * items, unreadable=7)
    assert tasks == items // BATCH_ITEMS
    assert outcomes == [f"u/file/{n}" if n != 7 else "gone" for n in range(items)]


def test_a_large_item_goes_alone_and_keeps_its_place() -> None:
    large = BATCH_ITEM_BYTES + 1
    tasks, outcomes = _through_batches([100, 100, large, 100])
    assert tasks == 3  # [0, 1], [2], [3]
    assert outcomes == [f"u/file/{n}" for n in range(4)]


def test_an_item_asked_for_before_its_batch_is_full_is_stored() -> None:
    with _CountingPool() as pool:
        batches = Batches(
            pool,
            lambda items: [Stored(Item(i.key, "u", "file", "p", 1, 0.0, 0o644)) for i in items],
        )
        slot = batches.add(_item(0, 100))
        assert slot.result().item.key == "u/file/0"
        batches.flush()  # nothing left to submit
    assert pool.tasks == 1
