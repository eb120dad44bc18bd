"""Per-process knobs of the engine: tuning values and the hooks tests make deterministic.
None of these is part of the format."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from keepstone.clock import Clock, SystemClock

MiB = 1024 * 1024


@dataclass(frozen=True)
class Options:
    clock: Clock = field(default_factory=SystemClock)
    random_bytes: Callable[[int], bytes] = os.urandom
    hostname: str = field(default_factory=socket.gethostname)
    pid: int | None = None  # None: the current pid, read when a lock is written
    # A writer closes a pack once it is this big (restic's packs were 4 MiB too). Packs are
    # spooled, so their size no longer sets the memory a run holds (8 MiB packs held in memory
    # made the bench's initial backup peak 144 MB instead of 125).
    pack_size: int = 4 * MiB
    # A pack's bytes go to its spool (a temporary file on a local store) in pieces this big:
    # what a pack being filled holds in memory (engine/pack.py).
    spool_piece: int = 512 * 1024
    index_every: int = 32  # packs per index file while a run goes on
    uploads: int = 2  # packs finished and stored at once (a spooled pack holds little memory)
    index_refresh: float = 5.0  # seconds between re-reads of other processes' index files
    lock_refresh: float = 60.0
    lock_stale: float = 300.0

    def current_pid(self) -> int:
        return self.pid if self.pid is not None else os.getpid()
