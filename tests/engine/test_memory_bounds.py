"""What a backup thread keeps resident between files, counted in the kernel's own page counts
(``/proc/self/smaps``), not timed: a large file's window pages are given back after it."""

from __future__ import annotations

import ctypes
import gc
import io
import mmap
import subprocess
import sys
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest

from keepstone.engine import ChunkerParams, LocalStore, Repository, heap, wire
from keepstone.engine import chunker as chunker_module
from keepstone.engine.chunker import WINDOW_KEPT, Chunker
from keepstone.engine.store import FileSpool
from keepstone.engine.writer import _TreeBuilder

from .helpers import (
    CHEAP_KDF,
    SMALL_CHUNKS,
    backup,
    item_for,
    new_repo,
    pseudo_random,
    restore,
    small_options,
)

MiB = 1024 * 1024
# Real-sized bounds: an 8 MiB window (max_size) per thread, of which a large file makes all
# resident while it is read.
PARAMS = ChunkerParams(min_size=256 * 1024, avg_size=MiB, max_size=8 * MiB)


def _resident(window: mmap.mmap) -> int:
    """Bytes of ``window``'s mapping resident now, as the kernel counts them."""
    start = ctypes.addressof(ctypes.c_char.from_buffer(window))
    found = None
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                low, high = (int(part, 16) for part in head.split("-"))
                found = low <= start < high
            elif found and line.startswith("Rss:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("the window's mapping is not in smaps")


def _window(chunker: Chunker) -> mmap.mmap:
    view: memoryview = chunker._local.window
    window = view.obj
    assert isinstance(window, mmap.mmap)
    return window


@pytest.mark.parametrize("size_mib", [6, 24], ids=["N", "4N"])
def test_a_large_file_leaves_at_most_the_kept_window_resident(size_mib: int) -> None:
    chunker = Chunker(PARAMS)
    data = pseudo_random(f"big{size_mib}", size_mib * MiB)
    cut = [bytes(c) for c in chunker.chunks(io.BytesIO(data))]
    assert b"".join(cut) == data
    assert _resident(_window(chunker)) <= WINDOW_KEPT  # 6 or 24 MiB read through it
    # The released pages read back as the next stream fills them: the same cuts as before.
    assert [bytes(c) for c in chunker.chunks(io.BytesIO(data))] == cut


@pytest.mark.parametrize("size_mib", [6, 24], ids=["N", "4N"])
def test_a_large_file_never_holds_more_than_one_largest_chunk(
    size_mib: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a file is read, its thread's window holds at most ``max_size`` bytes resident (it
    was twice that), and only a tail without a cut point is moved to the window's front: a few
    chunks' worth for the whole file, not the rest of every window (7.3 of 24 MiB before)."""
    moved: list[int] = []
    shift = chunker_module._shift
    monkeypatch.setattr(
        chunker_module, "_shift", lambda view, a, b: moved.append(b - a) or shift(view, a, b)
    )
    chunker = Chunker(PARAMS)
    data = pseudo_random(f"big{size_mib}", size_mib * MiB)
    peak = 0
    cut = []
    for chunk in chunker.chunks(io.BytesIO(data)):
        peak = max(peak, _resident(_window(chunker)))
        cut.append(bytes(chunk))
    assert b"".join(cut) == data
    assert peak <= PARAMS.max_size
    assert sum(moved) <= len(data) // 4
    assert len(moved) <= size_mib * MiB // (PARAMS.max_size // 2)


def test_small_files_keep_their_pages() -> None:
    chunker = Chunker(PARAMS)
    for n in range(3):
        data = pseudo_random(f"small{n}", 300_000)
        assert b"".join(bytes(c) for c in chunker.chunks(io.BytesIO(data))) == data
    assert 300_000 <= _resident(_window(chunker)) <= WINDOW_KEPT


def test_big_buffers_are_mapped_on_their_own_once_asked() -> None:
    assert heap.release_big_buffers()  # glibc: this machine's and CI's
    assert heap.release_big_buffers()  # once per process, then a no-op


# Threads that each allocate, then glibc's count of heaps (``malloc_info``'s ``<heap nr=``), in
# a new process (heaps made before the limit stay).
_HEAPS_AFTER_THREADS = """
import ctypes, sys, threading
from keepstone.engine import heap
if sys.argv[1] == "limited":
    assert heap.release_big_buffers()
started, done = threading.Barrier(9), threading.Event()
def work():
    kept = bytearray(100_000)  # glibc's malloc, not Python's small-object allocator
    started.wait()
    done.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
started.wait()  # all eight allocated at once
libc = ctypes.CDLL(None)
libc.open_memstream.restype = ctypes.c_void_p
buffer, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
done.set()
print(buffer.value.decode().count("<heap nr="))
"""


@pytest.mark.parametrize(("mode", "most"), [("limited", heap.HEAPS), ("default", 64)])
def test_the_threads_share_a_few_heaps_once_asked(mode: str, most: int) -> None:
    """Each thread that allocates gets a heap of its own by default (up to eight a core), and
    keeps what it freed there resident; once ``release_big_buffers`` ran, all share two."""
    found = subprocess.run(
        [sys.executable, "-c", _HEAPS_AFTER_THREADS, mode],
        capture_output=True,
        text=True,
        check=True,
    )
    heaps = int(found.stdout)
    assert heaps <= most
    if mode == "default":  # the control: the threads did make heaps of their own
        assert heaps > heap.HEAPS


def test_a_backup_leaves_what_the_process_made_before_it_to_no_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's full collections walk only what the run makes: the process's modules and tables
    are in the collector's permanent generation once a backup begins (engine/heap.py)."""
    monkeypatch.setattr(heap, "_frozen", False)
    gc.unfreeze()  # as a new process: nothing frozen yet
    long_lived = sys.modules["keepstone.engine.writer"].__dict__
    assert any(o is long_lived for o in gc.get_objects())
    backup(new_repo(tmp_path / "repo"), {"a": b"x" * 1000})
    assert gc.get_freeze_count() > 10_000
    assert not any(o is long_lived for o in gc.get_objects())  # no generation holds it now
    assert gc.is_tracked(long_lived)


@pytest.mark.parametrize("items", [1000, 4000], ids=["N", "4N"])
def test_a_full_tree_is_made_with_one_copy_of_its_items(items: int) -> None:
    """Cutting a tree (4 MiB at most) allocates about its size once: the bracket-and-join of
    before held three copies at its peak (traced by Python's allocator, not timed)."""
    trees = _TreeBuilder()
    records = [wire.dumps({"key": f"k{n}", "pad": "x" * 1000}) for n in range(items)]
    for record in records:
        trees.add_encoded(record, "u", "mail", "Inbox", 1, 0.0)
    size = sum(len(r) + 1 for r in records)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tree = trees.take()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert tree == wire.dumps([wire.loads(r, "item") for r in records])
    assert peak <= size * 1.2


@pytest.mark.parametrize("size_mib", [8, 32], ids=["N", "4N"])
def test_a_run_holds_a_spool_piece_of_each_pack_not_the_pack(tmp_path: Path, size_mib: int) -> None:
    """Packs go to their spools (temporary files) in pieces while they fill: what a run's packs
    hold in memory is a few pieces, whatever the pack size and however much is stored (held
    whole until stored, the one filling and two being stored were three packs)."""
    options = small_options(pack_size=4 * MiB, spool_piece=256 * 1024, index_every=32)
    repo = new_repo(tmp_path / "repo", options=options)
    files = {f"f{n}": pseudo_random(f"spool{n}", MiB) for n in range(size_mib)}
    writer = repo.writer({"job_id": "test"})
    tracemalloc.start()
    try:
        for key, content in files.items():
            chunks, size, _ = writer.add_file(io.BytesIO(content))
            writer.add_item(item_for(key, chunks, size))
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    snapshot = writer.commit()
    assert writer.stats.packs >= size_mib // 4
    # Beyond what the run keeps per item (its chunk ids, entries, items), at its peak.
    assert peak - kept <= 2 * MiB
    assert restore(repo, snapshot) == files


class _CountedWrites(LocalStore):
    """A local store that counts its spools' writes (each a system call)."""

    writes = 0

    def open_spool(self) -> FileSpool:
        store = self

        class Counted(FileSpool):
            def write(self, parts: Sequence[bytes]) -> None:
                store.writes += 1
                super().write(parts)

        return Counted(self)


@pytest.mark.parametrize("size_mib", [2, 8], ids=["N", "4N"])
def test_a_pack_is_written_a_piece_at_a_time_not_a_blob_at_a_time(
    tmp_path: Path, size_mib: int
) -> None:
    """Spooling writes a pack in pieces: the writes grow with the bytes stored over the piece
    size (plus a header per pack), not with the blobs (about 4 KiB each here)."""
    store = _CountedWrites(tmp_path)
    options = small_options(pack_size=MiB, spool_piece=64 * 1024, index_every=32)
    repo = Repository.init(store, None, kdf_cost=CHEAP_KDF, chunker=SMALL_CHUNKS, options=options)
    store.writes = 0
    snapshot = backup(
        repo, {f"f{n}": pseudo_random(f"w{n}", 256 * 1024) for n in range(4 * size_mib)}
    )
    blobs = sum(len(item.chunks) for item in repo.items(snapshot))
    packs = len(store.list("packs/"))
    assert blobs >= size_mib * 200
    # pieces of the packs, their headers, and the few other objects (index, snapshot, lock)
    assert store.writes <= size_mib * MiB // (64 * 1024) + 2 * packs + 8
