"""Reading many items' content in order while a small thread pool reads the chunks ahead.

A full restore reads every chunk of every item: one item after another, each chunk is a pack
read, a zstd decompression and a BLAKE3 check, all of which release the GIL. Reading the next
chunks in pool threads while the caller writes the current one keeps both cores busy. What is
read ahead is bounded in plaintext bytes (and in chunks), so a restore of large files holds a
few MiB more, not a file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from keepstone.engine.heap import release_big_buffers
from keepstone.engine.model import Item

READ_WORKERS = 2  # one per core of the machines this runs on; more only adds GIL hand-offs
AHEAD_BYTES = 8 * 1024 * 1024  # plaintext read ahead of the chunk being consumed
AHEAD_CHUNKS = 64  # small messages are one chunk each: enough to keep the pool fed

ReadBlob = Callable[[bytes], bytes]
ChunkSize = Callable[[bytes], int]  # a chunk's plaintext size as the index knows it (0: unknown)


def read_items(
    items: Iterable[Item],
    read_blob: ReadBlob,
    chunk_size: ChunkSize,
    parse_id: Callable[[str], bytes],
    *,
    workers: int = READ_WORKERS,
) -> Iterator[tuple[Item, Iterator[bytes]]]:
    """Each item with its content, one checked chunk at a time, in the order given. The
    content of an item must be consumed before the next item is asked for (what is left of it
    is read and dropped). A failure to read a chunk is raised where that chunk is consumed."""
    release_big_buffers()  # chunks are read in pool threads and freed in the caller's
    reader = _Reader(read_blob, chunk_size, parse_id, workers)
    try:
        for item in reader.planned(items):
            chunks = reader.content(item)
            yield item, chunks
            for _ in chunks:  # the caller stopped early: keep the queue in step
                pass
    finally:
        reader.close()


class _Reader:
    def __init__(
        self, read_blob: ReadBlob, chunk_size: ChunkSize, parse_id: Callable[[str], bytes],
        workers: int,
    ) -> None:  # fmt: skip
        self._read = read_blob
        self._size = chunk_size
        self._parse = parse_id
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ks-read")
        self._queued: deque[tuple[Future[bytes], int]] = deque()  # in the order consumed
        self._queued_bytes = 0
        self._waiting: deque[bytes] = deque()  # chunk ids planned, not yet submitted
        self._items: Iterator[Item] = iter(())

    def planned(self, items: Iterable[Item]) -> Iterator[Item]:
        """The items, while their chunks are put in the plan a little ahead of them."""
        self._items = iter(items)
        ahead: deque[Item] = deque()
        while True:
            while len(self._waiting) < AHEAD_CHUNKS:
                item = next(self._items, None)
                if item is None:
                    break
                ahead.append(item)
                self._waiting.extend(self._parse(c) for c in item.chunks)
            self._fill()
            if not ahead:
                return
            yield ahead.popleft()

    def content(self, item: Item) -> Iterator[bytes]:
        for _ in item.chunks:
            self._fill()
            future, size = self._queued.popleft()
            self._queued_bytes -= size
            self._fill()
            yield future.result()

    def _fill(self) -> None:
        """Submit planned chunks while fewer than the bounds are in flight (at least one)."""
        while self._waiting and (
            not self._queued
            or (len(self._queued) < AHEAD_CHUNKS and self._queued_bytes < AHEAD_BYTES)
        ):
            blob_id = self._waiting.popleft()
            size = self._size(blob_id)
            self._queued.append((self._pool.submit(self._read, blob_id), size))
            self._queued_bytes += size

    def close(self) -> None:
        for future, _ in self._queued:
            future.cancel()
        self._pool.shutdown(wait=True)
