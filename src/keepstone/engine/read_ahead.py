"""Reading many items' content in order while a small thread pool reads the chunks ahead.

A full restore reads every chunk of every item: one item after another, each chunk is a pack
read, a zstd decompression and a BLAKE3 check, all of which release the GIL. Reading the next
chunks in pool threads while the caller writes the current one keeps both cores busy. What is
read ahead is bounded in plaintext bytes (and in chunks), so a restore of large files holds a
few MiB more, not a file.

A pool task reads a batch of consecutive chunks, not one: most messages are one chunk, and a task
per chunk cost the caller's thread (the restore's critical path, which also creates and writes
the files) a future, a queue hand-off and a wake-up per chunk. Chunks written one after another
lie one after another in a pack, so a batch is also mostly one store read (``read_blobs``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from keepstone.engine.heap import release_big_buffers
from keepstone.engine.model import Item

READ_WORKERS = 2  # one per core of the machines this runs on; more only adds GIL hand-offs
AHEAD_BYTES = 8 * 1024 * 1024  # plaintext read ahead of the chunk being consumed
AHEAD_CHUNKS = 64  # small messages are one chunk each: enough to keep the pool fed
BATCH_CHUNKS = 16  # chunks one pool task reads (four batches in flight keep two workers fed)
BATCH_BYTES = 1024 * 1024  # ... and their plaintext: a large file's chunks go a few at a time

ReadBlobs = Callable[[Sequence[bytes]], list[bytes]]  # checked plaintexts, in the order asked
Outcome = bytes | Exception  # a chunk, or why it could not be read (raised where consumed)
ChunkSize = Callable[[bytes], int]  # a chunk's plaintext size as the index knows it (0: unknown)


def read_items(
    items: Iterable[Item],
    read_blobs: ReadBlobs,
    chunk_size: ChunkSize,
    parse_id: Callable[[str], bytes],
    *,
    workers: int = READ_WORKERS,
) -> Iterator[tuple[Item, Iterator[bytes]]]:
    """Each item with its content, one checked chunk at a time, in the order given. The
    content of an item must be consumed before the next item is asked for (what is left of it
    is read and dropped). A failure to read a chunk is raised where that chunk is consumed."""
    release_big_buffers()  # chunks are read in pool threads and freed in the caller's
    reader = _Reader(read_blobs, chunk_size, parse_id, workers)
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
        self, read_blobs: ReadBlobs, chunk_size: ChunkSize, parse_id: Callable[[str], bytes],
        workers: int,
    ) -> None:  # fmt: skip
        self._read = read_blobs
        self._size = chunk_size
        self._parse = parse_id
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ks-read")
        # Batches submitted, in the order consumed: (future, plaintext bytes, chunks).
        self._queued: deque[tuple[Future[list[Outcome]], int, int]] = deque()
        self._queued_bytes = self._queued_chunks = 0
        self._current: deque[Outcome] = deque()  # the batch being consumed
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
            if not self._current:
                self._next_batch()
            chunk = self._current.popleft()
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def _next_batch(self) -> None:
        self._fill()
        future, size, count = self._queued.popleft()
        self._queued_bytes -= size
        self._queued_chunks -= count
        self._fill()
        self._current.extend(future.result())

    def _fill(self) -> None:
        """Submit batches of planned chunks while the bounds leave room for a whole batch (or
        nothing is in flight: then at least one chunk goes)."""
        while self._waiting and (not self._queued or self._room_for_a_batch()):
            batch: list[bytes] = []
            size = 0
            most = max(1, min(BATCH_CHUNKS, AHEAD_CHUNKS - self._queued_chunks))
            while self._waiting and len(batch) < most:
                next_size = self._size(self._waiting[0])
                if batch and (
                    size + next_size > BATCH_BYTES
                    or self._queued_bytes + size + next_size > AHEAD_BYTES
                ):
                    break
                batch.append(self._waiting.popleft())
                size += next_size
            self._queued.append((self._pool.submit(self._read_batch, batch), size, len(batch)))
            self._queued_bytes += size
            self._queued_chunks += len(batch)

    def _room_for_a_batch(self) -> bool:
        wanted = min(BATCH_CHUNKS, len(self._waiting))
        return self._queued_chunks + wanted <= AHEAD_CHUNKS and self._queued_bytes < AHEAD_BYTES

    def _read_batch(self, blob_ids: list[bytes]) -> list[Outcome]:
        """In a pool thread: the batch's chunks; if one fails, each alone, so that the failure
        is raised where its own chunk is consumed (the chunks before it are still given)."""
        try:
            return list(self._read(blob_ids))
        except Exception:
            return [self._read_one(blob_id) for blob_id in blob_ids]

    def _read_one(self, blob_id: bytes) -> Outcome:
        try:
            return self._read([blob_id])[0]
        except Exception as error:
            return error

    def close(self) -> None:
        for future, _, _ in self._queued:
            future.cancel()
        self._pool.shutdown(wait=True)
