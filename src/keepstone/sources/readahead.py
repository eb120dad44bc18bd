"""The bounded buffer between a connector's reader thread and the run that consumes it.

A connector reading ahead (IMAP: a mailbox per connection; Microsoft 365: a part per worker)
puts items and skips into a ``ReadAheadBuffer``; the run drains it on its own thread. The
buffer is bounded by bytes, so memory stays bounded however fast a source answers, and the
consumer keeps the run's lease and stop checks going while a source is slow.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator

from keepstone.sources.connector import Skipped, SourceItem


class ReaderClosed(Exception):
    """The run stopped reading this part: its reader ends."""


class _End:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class ReadAheadBuffer:
    """A queue bounded by bytes (an entry larger than the bound passes alone). The consumer
    waits at most ``WAIT_SECONDS`` at a time and calls ``check`` in between (the run's lease
    and stop requests are kept up while a source is slow, throttled or retried)."""

    WAIT_SECONDS = 1.0

    def __init__(self, limit: int, stopped: threading.Event) -> None:
        self.limit = limit
        self.stopped = stopped
        self._entries: deque[tuple[SourceItem | Skipped | _End, int]] = deque()
        self._bytes = 0
        self._closed = False
        self._cond = threading.Condition()

    def put(self, entry: SourceItem | Skipped | _End, weight: int) -> None:
        with self._cond:
            while self._bytes and self._bytes + weight > self.limit and not self._closed:
                self._cond.wait()
            if self._closed or self.stopped.is_set():
                raise ReaderClosed
            self._entries.append((entry, weight))
            self._bytes += weight
            self._cond.notify_all()

    def finish(self) -> None:
        with contextlib.suppress(ReaderClosed):
            self.put(_End(None), 0)

    def fail(self, error: BaseException) -> None:
        with contextlib.suppress(ReaderClosed):
            self.put(_End(error), 0)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._entries.clear()
            self._cond.notify_all()

    def drain(self, check: Callable[[], None]) -> Iterator[SourceItem | Skipped]:
        while True:
            with self._cond:
                while not self._entries:
                    if not self._cond.wait(self.WAIT_SECONDS):
                        break
                entry_weight = self._entries.popleft() if self._entries else None
                if entry_weight is not None:
                    self._bytes -= entry_weight[1]
                    self._cond.notify_all()
            if entry_weight is None:
                check()
                continue
            entry = entry_weight[0]
            if isinstance(entry, _End):
                if entry.error is not None:
                    raise entry.error
                return
            yield entry
