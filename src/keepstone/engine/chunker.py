"""Content-defined chunking (FastCDC 2020) of byte strings and streams."""

from __future__ import annotations

import io
import mmap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, cast

from pyfastcdc.cy import FastCDC

from keepstone.engine.errors import RepositoryCorrupt


class Readable(Protocol):
    """Any binary stream: a file, a socket's file, a decompressor... ``readinto`` is used when
    the stream implements it (one copy less), ``read`` otherwise."""

    def read(self, size: int = -1, /) -> bytes: ...


Source = Readable | bytes | bytearray | memoryview
# What a thread's window keeps resident between streams (a multiple of the page size): small
# files fit in it and cost no page faults; a larger one's pages past it are given back after it.
WINDOW_KEPT = 1024 * 1024
NormalizedChunking = Literal[0, 1, 2, 3]


@dataclass(frozen=True)
class ChunkerParams:
    """Chunk size bounds, recorded in ``config``. Tests use small ones to get many chunks."""

    min_size: int = 256 * 1024
    avg_size: int = 1024 * 1024
    max_size: int = 8 * 1024 * 1024
    normalized_chunking: NormalizedChunking = 1

    def to_json(self) -> dict[str, object]:
        return {
            "algorithm": "fastcdc-2020",
            "min_size": self.min_size,
            "avg_size": self.avg_size,
            "max_size": self.max_size,
            "normalized_chunking": self.normalized_chunking,
        }

    @classmethod
    def from_json(cls, value: object) -> ChunkerParams:
        if not isinstance(value, dict) or value.get("algorithm") != "fastcdc-2020":
            raise RepositoryCorrupt("config names an unknown chunker")
        try:
            nc = int(value["normalized_chunking"])
            if nc not in (0, 1, 2, 3):
                raise ValueError(nc)
            params = cls(
                int(value["min_size"]),
                int(value["avg_size"]),
                int(value["max_size"]),
                cast(NormalizedChunking, nc),
            )
        except (KeyError, TypeError, ValueError):
            raise RepositoryCorrupt("config has bad chunker parameters") from None
        return params


class Chunker:
    """Cuts content into chunks; one instance serves many threads at once."""

    def __init__(self, params: ChunkerParams, seed: int = 0) -> None:
        self.params = params
        self._seed = seed
        self._local = threading.local()
        self._cdc()  # fail now, not in the first backup, on parameters pyfastcdc refuses

    def chunks(self, source: Source) -> Iterator[memoryview]:
        """The chunks of ``source``; a view is valid only until the next one is asked for."""
        if isinstance(source, bytes | bytearray | memoryview):
            return (chunk.data for chunk in self._cdc().cut_buf(source))
        return self._stream_chunks(source)

    def _stream_chunks(self, stream: Readable) -> Iterator[memoryview]:
        # One reusable window of max_size bytes per thread. FastCDC scans a chunk's bytes in
        # order and stops at the first cut point, so a cut found before the end of what the
        # window holds is the cut of the whole stream; only a tail without a cut (shorter than
        # max_size: a full window always ends a chunk) waits for more bytes, moved to the front.
        view = self._window()
        max_size = self.params.max_size
        start = end = reached = 0
        eof = False
        try:
            while True:
                if not eof:
                    if start:
                        start, end = 0, _shift(view, start, end)
                    end, eof = _fill(stream, view, end)
                    reached = max(reached, end)
                if start == end:
                    return
                for chunk in self._cdc().cut_buf(view[start:end]):
                    length = chunk.length
                    if not eof and length == end - start and length < max_size:
                        break  # no cut point in what is here yet
                    start += length
                    yield chunk.data
        finally:
            if reached > WINDOW_KEPT:
                self._release(view)

    def _release(self, view: memoryview) -> None:
        """Give the window's pages past ``WINDOW_KEPT`` back: a large file made them resident,
        and each backup thread would otherwise hold max_size for the rest of the run."""
        window = cast(mmap.mmap, view.obj)
        window.madvise(mmap.MADV_DONTNEED, WINDOW_KEPT, len(window) - WINDOW_KEPT)

    def _cdc(self) -> FastCDC:
        cdc: FastCDC | None = getattr(self._local, "cdc", None)
        if cdc is None:
            p = self.params
            cdc = self._local.cdc = FastCDC(
                p.avg_size,
                min_size=p.min_size,
                max_size=p.max_size,
                normalized_chunking=p.normalized_chunking,
                seed=self._seed,
            )
        return cdc

    def _window(self) -> memoryview:
        window: memoryview | None = getattr(self._local, "window", None)
        if window is None:
            # Anonymous memory: a page is resident only once a read reaches it, so a thread
            # that reads small files holds a few pages, not max_size (a zeroed bytearray made
            # all of it resident per thread). It is unmapped when its thread ends.
            buffer = mmap.mmap(-1, self.params.max_size)
            window = self._local.window = memoryview(buffer)
        return window


def _shift(view: memoryview, start: int, end: int) -> int:
    """Move ``view[start:end]`` to the front; its new end."""
    view[: end - start] = view[start:end]
    return end - start


def _fill(stream: Readable, view: memoryview, end: int) -> tuple[int, bool]:
    """Read into ``view[end:]`` until it is full or the stream ends."""
    while end < len(view):
        n = _read_into(stream, view[end:])
        if n == 0:
            return end, True
        end += n
    return end, False


def _read_into(stream: Readable, target: memoryview) -> int:
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        try:
            return int(readinto(target) or 0)
        except (NotImplementedError, io.UnsupportedOperation):
            pass  # e.g. an io.RawIOBase that only implements read()
    data = stream.read(len(target))
    target[: len(data)] = data
    return len(data)
