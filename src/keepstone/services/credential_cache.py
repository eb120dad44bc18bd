"""A bounded, short-lived memory of credentials the catalog recently vouched for.

Checking an access token or a logon session in the catalog on every request cost most of a
request (a connection, a transaction, a join: bench/api.py). A server therefore remembers what
the catalog answered for a token, by the token's SHA-256, for at most ``TRUST_SECONDS`` of real
time, and for at most ``CAPACITY`` tokens (least recently used forgotten first).

Revocation takes effect at once on the server that revokes: every revoking use case of
``services.auth`` forgets everything it remembered (revocations are rare; re-reading is cheap).
A revocation made by another process on the same catalog (another server, ``keepstone admin user
revoke-tokens``) takes effect on this server within ``TRUST_SECONDS``, when what it remembered
is read again. A revocation that commits while a request is reading the catalog cannot leave the
older answer behind: ``put`` refuses an answer read before the latest ``clear``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

CAPACITY = 4096
TRUST_SECONDS = 1.0
V = TypeVar("V")


@dataclass(slots=True)
class _Remembered(Generic[V]):
    value: V
    until: float  # monotonic


class CredentialCache(Generic[V]):
    def __init__(
        self,
        capacity: int = CAPACITY,
        trust_seconds: float | None = None,  # None: TRUST_SECONDS when each answer is put
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.trust_seconds = trust_seconds
        self._monotonic = monotonic
        self._entries: OrderedDict[str, _Remembered[V]] = OrderedDict()
        self._lock = threading.Lock()  # the event loop and request threads both use it
        self._generation = 0

    @property
    def generation(self) -> int:
        """Read before asking the catalog; hand it to ``put`` with the answer."""
        return self._generation

    def get(self, key: str) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found.until <= self._monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return found.value

    def put(self, key: str, value: V, generation: int) -> None:
        """Remember ``value``, read from the catalog after ``generation`` was observed; an answer
        read before a ``clear`` is dropped (it may predate the revocation that cleared)."""
        with self._lock:
            if generation != self._generation:
                return
            trust = TRUST_SECONDS if self.trust_seconds is None else self.trust_seconds
            self._entries[key] = _Remembered(value, self._monotonic() + trust)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1

    def __len__(self) -> int:
        return len(self._entries)
