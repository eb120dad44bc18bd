"""Big buffers go back to the system when they are freed.

Backups and restores pass chunks of up to 8 MiB between threads: read or decompressed in one,
freed in another. glibc serves such a buffer with its own mapping at first, but every time one
is freed it raises that threshold to the freed size (up to 32 MiB), so later chunks come from
the threads' heaps, and what they leave there stays resident, in every thread's arena: in the
bench's initial backup that was about 16 MB of a peak of 163 MB. A fixed threshold keeps every
buffer of at least 1 MiB in a mapping of its own, unmapped when freed. Costs a mapping and its
page faults per large chunk: small beside reading, hashing and compressing a MiB.
"""

from __future__ import annotations

import ctypes
import platform
import sys

MMAP_THRESHOLD = 1024 * 1024
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
_done = False


def release_big_buffers() -> bool:
    """Make glibc map buffers of ``MMAP_THRESHOLD`` bytes or more on their own, once per
    process; whether it took effect (not glibc: nothing to do)."""
    global _done
    if _done:
        return True
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    _done = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1)
    return _done
