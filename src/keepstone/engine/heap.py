"""Big buffers go back to the system when they are freed; what a process made before its work
stays out of the garbage collector's sight.

Backups and restores pass chunks of up to 8 MiB between threads: read or decompressed in one,
freed in another. glibc serves such a buffer with its own mapping at first, but every time one
is freed it raises that threshold to the freed size (up to 32 MiB), so later chunks come from
the threads' heaps, and what they leave there stays resident, in every thread's arena: in the
bench's initial backup that was about 16 MB of a peak of 163 MB. A fixed threshold keeps every
buffer of at least 1 MiB in a mapping of its own, unmapped when freed. Costs a mapping and its
page faults per large chunk: small beside reading, hashing and compressing a MiB.

And the threads share two heaps rather than one each (glibc gives up to eight per core): what a
thread frees stays in its own heap for its next allocations, so every backup thread (readers,
uploads, trees) kept a heap's worth resident; two held the bench's initial backup 2-5 MB lower
at its peak (in its own process 113.7-114.8 -> 109.7-112.6 MB), and with the tree cut of
``model.cut_tree_records`` its 1 % incremental 10 MB lower, in no more time. The GIL serialises
most allocations anyway.
"""

from __future__ import annotations

import ctypes
import gc
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager

MMAP_THRESHOLD = 1024 * 1024
HEAPS = 2
# glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_done = False
_frozen = False


def release_big_buffers() -> bool:
    """Make glibc map buffers of ``MMAP_THRESHOLD`` bytes or more on their own, and keep at most
    ``HEAPS`` heaps for all threads (those made from now on), once per process; whether it took
    effect (not glibc: nothing to do)."""
    global _done
    if _done:
        return True
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    _done = bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_ARENA_MAX, HEAPS) == 1
    )
    return _done


def freeze_long_lived() -> None:
    """Once per process: everything tracked so far (modules, SQLAlchemy's mappers and tables,
    the app's routes) lives as long as the process, so it goes to the collector's permanent
    generation, which no collection walks. A backup's scan keeps promoting lists, and its full
    collections walked those 106,000 objects each time (0.05-0.11 s of an incremental); a
    server's walked 240,000 (160 ms of its loop at once). No collection first: that would cost
    what it saves; the little cyclic garbage the imports left is kept instead."""
    global _frozen
    if not _frozen:
        gc.freeze()
        _frozen = True


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection within: for work that makes many objects and no cycles
    worth collecting (a server's start, a repository's index, a previous point's trees), whose
    collections would walk everything and free nothing. Restores what it found."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
