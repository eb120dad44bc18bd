"""Answers kept by exactly what they are made from.

A monitoring script asks for the same job again and again; building its answer (the job's
columns converted, its schedule policy, links, the JSON text) costs more than reading its row.
An answer made from one stored row alone (``store.prepared.Stored``), the API version and the
link base is a pure function of them: kept by that key, it is the same bytes the handler would
make, and a changed row is another key (its version, or any column, differs), so nothing is ever
invalidated or stale. Bounded: the oldest kept answer goes first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class AnswerMemo(Generic[V]):
    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._kept: dict[Hashable, V] = {}
        self._lock = threading.Lock()  # handlers on worker threads may share a memo

    def get(self, key: Hashable | None, make: Callable[[], V]) -> V:
        """The value kept for ``key``, else ``make()`` kept for it; ``key`` None: not kept."""
        if key is None:
            return make()
        found = self._kept.get(key)
        if found is None:
            found = make()
            with self._lock:
                if len(self._kept) >= self.capacity:
                    self._kept.pop(next(iter(self._kept)), None)  # insertion order: the oldest
                self._kept[key] = found
        return found

    def kept(self, key: Hashable) -> V | None:
        """The value kept for ``key``, if any."""
        return self._kept.get(key)

    def keep(self, key: Hashable, value: V) -> None:
        """Keep ``value`` for ``key``: for an answer whose key is known only once it is made
        (read from the very rows it is made from)."""
        with self._lock:
            if key not in self._kept and len(self._kept) >= self.capacity:
                self._kept.pop(next(iter(self._kept)), None)
            self._kept[key] = value

    def forget(self, key: Hashable) -> None:
        """Keep nothing for ``key``."""
        with self._lock:
            self._kept.pop(key, None)

    def __len__(self) -> int:
        return len(self._kept)
