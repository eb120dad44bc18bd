"""One backup run: chunks content into packs, items into tree blobs, and ends in a snapshot."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime
from types import TracebackType

import structlog

from keepstone.domain.errors import InvalidInput
from keepstone.engine import wire
from keepstone.engine.chunker import Source
from keepstone.engine.codec import BytesLike
from keepstone.engine.context import SNAPSHOT_PREFIX, RepoContext
from keepstone.engine.errors import BackupFailed
from keepstone.engine.heap import release_big_buffers
from keepstone.engine.locks import Lock
from keepstone.engine.model import (
    CarriedRecord,
    FolderSummary,
    Item,
    Snapshot,
    SnapshotInfo,
    TreePlace,
    WriterStats,
    folder_of,
)
from keepstone.engine.pack import DATA, TREE, PackBuilder, PackEntry

log = structlog.get_logger(__name__)

TREE_MAX_ITEMS = 10_000
TREE_MAX_BYTES = 4 * 1024 * 1024
# Full trees hashed and compressed in a thread of their own while the run goes on (zstd and
# BLAKE3 release the GIL: an incremental's trees were a sixth of its time in the caller's
# thread); at most this many wait, which bounds their memory.
TREES_PENDING = 2

OnDurable = Callable[[str, list[PackEntry]], None]


class BackupWriter:
    """``add_file``, ``known`` and ``add_item`` may be called from many threads at once;
    ``commit`` or ``abort`` once, after they have all returned."""

    def __init__(
        self, ctx: RepoContext, lock: Lock, tags: dict[str, str], parent: str | None
    ) -> None:
        release_big_buffers()  # chunks and packs pass between threads
        self._ctx = ctx
        self._lock = lock
        self._tags = dict(tags)
        self._parent = parent
        self.stats = WriterStats()
        self._mutex = threading.Lock()  # guards _own, _pack, _unindexed, stats
        self._own: set[bytes] = set()  # every blob this run stored, in whatever state
        self._pack = ctx.new_pack()
        self._unindexed: dict[str, list[PackEntry]] = {}  # durable packs no index names yet
        self._uploads = _Uploads(ctx, self._pack_durable)
        self._trees = _TreeBuilder()
        self._items_mutex = threading.Lock()
        self._tree_pool = ThreadPoolExecutor(1, thread_name_prefix="ks-trees")
        self._tree_ids: list[Future[str]] = []  # in the snapshot's order
        self._failure: BaseException | None = None
        self._closed = False
        # A run dropped without commit or abort must not hold its lock (and block prune) forever.
        self._finalizer = weakref.finalize(self, _abandon, lock)

    # -- content -------------------------------------------------------------------------

    def add_file(self, stream: Source) -> tuple[tuple[str, ...], int, int]:
        """Chunk, deduplicate and store ``stream``: (chunk ids, plaintext bytes, bytes stored)."""
        self._check_usable()
        ids: list[str] = []
        size = stored = 0
        for data in self._ctx.chunker.chunks(stream):
            blob_id = self._ctx.codec.blob_id(data)
            stored += self._store(blob_id, DATA, data)
            ids.append(blob_id.hex())
            size += len(data)
        with self._mutex:
            self.stats.files += 1
            self.stats.bytes_read += size
        return tuple(ids), size, stored

    def known(self, chunk_ids: Iterable[str]) -> bool:
        """Whether every chunk is in the repository or this run, so an item can be reused."""
        return all(self._has(parse_chunk_id(c)) for c in chunk_ids)

    def add_item(self, item: Item, record: bytes | None = None) -> None:
        """Add ``item`` to the snapshot. ``record``: the item's JSON, written as it is: as a
        previous tree holds it (``Repository.item_records``) when ``item`` is what it decodes
        to (an unchanged item of an incremental: encoding items is much of an incremental's
        work), or as ``item_record`` made it in the thread that stored the item's content
        (items are added in order, in one thread: their JSON is made where it runs in
        parallel)."""
        self._check_usable()
        missing = [c for c in item.chunks if not self._has(parse_chunk_id(c))]
        if missing:
            raise InvalidInput(f"item {item.key!r} names chunks this repository lacks: {missing}")
        with self._items_mutex:
            full = self._trees.add(item, record)
            if full is not None:
                self._store_tree(full)
        with self._mutex:
            self.stats.items += 1

    def add_records(
        self, user: str, kind: str, folder: str, records: Sequence[CarriedRecord]
    ) -> int:
        """Add items of a previous tree as they are, without decoding them: ``records`` of
        ``user``'s items of ``kind`` in ``folder`` (their ``folder_of``), which the caller found
        unchanged and whose chunks it checked with this writer's ``known_ids`` (as
        ``PreviousPoint.carry`` does: ``record_chunks``, ``record_size_mtime``). Returns the sum
        of their sizes."""
        self._check_usable()
        with self._items_mutex:
            for full in self._trees.add_block(user, kind, folder, records):
                self._store_tree(full)
        with self._mutex:
            self.stats.items += len(records)
        return sum(size for _, size, _ in records)

    def known_ids(self, chunk_ids: Iterable[bytes]) -> bool:
        """``known`` for raw chunk ids (as ``model.record_chunks`` gives them)."""
        index, own = self._ctx.index, self._own
        for chunk in chunk_ids:  # noqa: SIM110 (all() of a generator costs more, per item)
            if chunk not in own and chunk not in index:
                return False
        return True

    # -- ending --------------------------------------------------------------------------

    def commit(self, time: datetime | None = None) -> str:
        """Store everything, then the snapshot; returns the snapshot id."""
        with self._closing():
            with self._items_mutex:
                last = self._trees.take()
                if last is not None:
                    self._store_tree(last)
                self._trees.ids = [future.result() for future in self._tree_ids]
            self._finish_packs()
            self._raise_failure()
            self._lock.check()
            return self._write_snapshot(time or self._ctx.options.clock.now())

    def checkpoint(self) -> None:
        """Make everything stored so far durable and indexed, and go on: a later run (another
        proxy taking this run over) finds it in the index and does not store it again. Call it
        while no ``add_file``/``add_item`` is in progress."""
        self._check_usable()
        self._finish_packs()
        self._raise_failure()

    def abort(self) -> None:
        """Keep what is finished (packs and their index, for later runs), write no snapshot.
        Does nothing once the run is committed or aborted (even by a failed ``commit``)."""
        if self._closed:
            return
        with self._closing():
            self._finish_packs()

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed:
            self.abort()

    # -- internals -----------------------------------------------------------------------

    def _has(self, blob_id: bytes) -> bool:
        return blob_id in self._own or blob_id in self._ctx.index

    def _store(self, blob_id: bytes, blob_type: int, data: BytesLike) -> int:
        with self._mutex:
            if blob_id in self._own or blob_id in self._ctx.index:
                self.stats.chunks_dedup += blob_type == DATA
                return 0
            self._own.add(blob_id)  # reserved: other threads now count it as stored
        try:
            encoded = self._ctx.codec.encode_parts(data)
        except BaseException as e:
            self._failure = self._failure or e  # other threads may already count on this blob
            raise
        stored = len(encoded[0]) + len(encoded[1])
        with self._mutex:
            self._add_to_pack(blob_id, blob_type, encoded, len(data))
            if blob_type == DATA:
                self.stats.chunks_new += 1
                self.stats.bytes_new += len(data)
            self.stats.bytes_stored += stored
            full = None
            if self._pack.size >= self._ctx.options.pack_size:
                full, self._pack = self._pack, self._ctx.new_pack()
        if full is not None:
            self._uploads.submit(full)
            self._refresh_index()
        return stored

    def _add_to_pack(
        self, blob_id: bytes, blob_type: int, encoded: tuple[bytes, bytes], raw_length: int
    ) -> None:
        """Add to the pack being filled (the caller holds ``_mutex``). Its spool failing (a
        full disk) loses that pack: it is dropped, never finished with a hole in it, and the
        run fails as when an upload fails."""
        try:
            self._pack.add(blob_id, blob_type, encoded, raw_length)
        except BaseException as e:
            lost, self._pack = self._pack, self._ctx.new_pack()
            lost.discard()
            self._failure = self._failure or e
            self._raise_failure()  # raises: the failure was just kept

    def _refresh_index(self) -> None:
        """Learn what other processes finished since, to deduplicate against it."""
        try:
            self._ctx.refresh_index(only_if_due=True)
        except Exception as e:  # only deduplication suffers
            log.warning("engine.index_refresh_failed", error=repr(e))

    def _store_tree(self, data: bytes) -> None:
        """Store a full tree in the trees' thread (the caller holds ``_items_mutex``)."""
        pending = [future for future in self._tree_ids[-TREES_PENDING:] if not future.done()]
        if len(pending) >= TREES_PENDING:
            wait(pending[:1])
        self._tree_ids.append(self._tree_pool.submit(self._store_tree_now, data))

    def _store_tree_now(self, data: bytes) -> str:
        try:
            tree_id = self._ctx.codec.blob_id(data)
            self._store(tree_id, TREE, data)
        except BaseException as e:  # a checkpoint or an abort learns of it too
            self._failure = self._failure or e
            raise
        return tree_id.hex()

    def _pack_durable(self, pack_id: str, entries: list[PackEntry]) -> None:
        """Runs in an upload thread once a pack is durable."""
        with self._mutex:
            self._unindexed[pack_id] = entries
            self.stats.packs += 1
            batch = None
            if len(self._unindexed) >= self._ctx.options.index_every:
                batch, self._unindexed = self._unindexed, {}
        if batch:
            self._ctx.write_index(batch)

    def _finish_packs(self) -> None:
        with self._items_mutex:
            wait(self._tree_ids)  # their blobs are in the pack being built or submitted
        with self._mutex:
            pack, self._pack = self._pack, self._ctx.new_pack()
        if pack.entries:
            self._uploads.submit(pack)
        self._uploads.drain()
        with self._mutex:
            batch, self._unindexed = self._unindexed, {}
        if batch:
            self._ctx.write_index(batch)

    def _write_snapshot(self, time: datetime) -> str:
        trees = self._trees
        info = SnapshotInfo("", time, self._tags, self._parent, trees.count, trees.size)
        snapshot = Snapshot(info, tuple(trees.ids), trees.summary(), self._tree_places())
        data = self._ctx.codec.encode(snapshot.to_bytes())
        return self._ctx.put_hashed(SNAPSHOT_PREFIX, data)

    def _tree_places(self) -> tuple[TreePlace | None, ...]:
        """Where each tree is (every one is indexed once the packs are finished), so a reader
        that only browses need not load the index."""
        places: list[TreePlace | None] = []
        for tree in self._trees.ids:
            found = self._ctx.index.get(bytes.fromhex(tree))
            places.append(
                None
                if found is None
                else (found.pack, found.offset, found.length, found.raw_length)
            )
        return tuple(places)

    def _check_usable(self) -> None:
        if self._closed:
            raise InvalidInput("this backup run is already committed or aborted")
        self._raise_failure()

    def _raise_failure(self) -> None:
        failure = self._failure or self._uploads.failure
        if failure is not None:
            raise BackupFailed(
                f"this backup run could not store its data: {failure!r}"
            ) from failure

    @contextlib.contextmanager
    def _closing(self) -> Iterator[None]:
        if self._closed:
            raise InvalidInput("this backup run is already committed or aborted")
        self._closed = True
        self._finalizer.detach()
        try:
            yield
        finally:
            self._tree_pool.shutdown(wait=True)
            self._uploads.close()
            try:
                self._lock.release()
            except Exception as e:  # a stale lock is harmless; the result above matters
                log.warning("engine.lock_release_failed", error=str(e))


def _abandon(lock: Lock) -> None:
    # Its upload threads end with their pool; its unindexed packs are left for prune.
    log.warning("engine.writer_abandoned", detail="neither committed nor aborted")
    lock.release()


class _TreeBuilder:
    """Items as canonical JSON, cut into tree blobs of bounded size; and the snapshot's folder
    summary (a few numbers per folder, so browsing reads only the trees of one folder)."""

    def __init__(self) -> None:
        self.ids: list[str] = []  # filled when the run commits
        self.taken = 0  # trees cut so far
        self.count = 0
        self.size = 0
        self._items: list[bytes] = []
        self._bytes = 0
        # (user, kind, folder) -> [count, newest mtime, positions of the trees holding them]
        self._folders: dict[tuple[str, str, str], tuple[list[float], list[int]]] = {}

    def summary(self) -> tuple[FolderSummary, ...]:
        return tuple(
            FolderSummary(user, kind, folder, int(numbers[0]), numbers[1], tuple(trees))
            for (user, kind, folder), (numbers, trees) in self._folders.items()
        )

    def _count(self, user: str, kind: str, folder: str, mtime: float, count: int = 1) -> None:
        """``count`` items of the folder go into the tree being filled, the newest ``mtime``."""
        numbers, trees = self._folders.setdefault((user, kind, folder), ([0, mtime], []))
        numbers[0] += count
        numbers[1] = max(numbers[1], mtime)
        position = self.taken  # the tree this item goes into is stored as the next one
        if not trees or trees[-1] != position:
            trees.append(position)

    def add(self, item: Item, record: bytes | None = None) -> bytes | None:
        """Add ``item`` (``record``: its JSON, already encoded); the JSON of a full tree blob
        when this one filled it."""
        try:
            encoded = record if record is not None else item.record()
        except UnicodeEncodeError:  # a lone surrogate (an undecoded file name): refuse the item
            raise InvalidInput(
                f"item {item.key.encode('utf-8', 'backslashreplace').decode()!r} holds text "
                "that is not valid Unicode"
            ) from None
        return self.add_encoded(
            encoded, item.user, item.kind, folder_of(item), item.size, item.mtime
        )

    def add_encoded(
        self, encoded: bytes, user: str, kind: str, folder: str, size: int, mtime: float
    ) -> bytes | None:
        """``add`` of an item already encoded, with what the folder summary needs of it."""
        self._items.append(encoded)
        self._count(user, kind, folder, mtime)
        self._bytes += len(encoded) + 1
        self.count += 1
        self.size += size
        if len(self._items) >= TREE_MAX_ITEMS or self._bytes >= TREE_MAX_BYTES:
            return self.take()
        return None

    def add_block(
        self, user: str, kind: str, folder: str, records: Sequence[CarriedRecord]
    ) -> Iterator[bytes]:
        """``add_encoded`` of items of one folder (``BackupWriter.add_records``): the folder
        summary counted once per tree they go into, not once per item; the JSON of each tree
        they fill."""
        added, newest = 0, 0.0
        for record, size, mtime in records:
            self._items.append(record)
            self._bytes += len(record) + 1
            self.size += size
            newest = mtime if not added or mtime > newest else newest
            added += 1
            if len(self._items) >= TREE_MAX_ITEMS or self._bytes >= TREE_MAX_BYTES:
                self._count(user, kind, folder, newest, added)
                self.count += added
                added = 0
                full = self.take()
                assert full is not None  # it holds this item at least
                yield full
        if added:
            self._count(user, kind, folder, newest, added)
            self.count += added

    def take(self) -> bytes | None:
        if not self._items:
            return None
        # The same bytes as wire.dumps(list of items): compact JSON joins with bare commas. The
        # brackets go onto the first and last items, so the tree (4 MiB) is copied once: the
        # concatenations of the join made two more copies of it at once.
        items, self._items, self._bytes = self._items, [], 0
        items[0] = b"[" + items[0]
        items[-1] += b"]"
        data = b",".join(items)
        self.taken += 1
        return data


class _Uploads:
    """A few upload threads; ``submit`` blocks while ``options.uploads`` packs are in flight,
    which bounds what waits to be stored (on S3, packs in memory). The first failure is kept
    for the writer to raise."""

    def __init__(self, ctx: RepoContext, on_durable: OnDurable) -> None:
        self._ctx = ctx
        self._on_durable = on_durable
        self._slots = threading.Semaphore(ctx.options.uploads)
        self._pool = ThreadPoolExecutor(ctx.options.uploads, thread_name_prefix="ks-upload")
        self._futures: list[Future[None]] = []
        self._mutex = threading.Lock()
        self.failure: BaseException | None = None

    def submit(self, pack: PackBuilder) -> None:
        self._slots.acquire()
        future = self._pool.submit(self._upload, pack)
        with self._mutex:
            self._futures = [f for f in self._futures if not f.done()] + [future]

    def drain(self) -> None:
        """Wait until every submitted pack is durable or failed."""
        with self._mutex:
            pending = self._futures
        wait(pending)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _upload(self, pack: PackBuilder) -> None:
        try:
            pack_id = self._ctx.store_pack(pack)
            self._on_durable(pack_id, pack.entries)
        except BaseException as e:  # recorded before the future completes: drain() sees it
            log.error("engine.upload_failed", error=repr(e))
            with self._mutex:
                self.failure = self.failure or e
        finally:
            self._slots.release()


def item_record(item: Item) -> bytes | None:
    """``item``'s JSON as ``add_item`` writes it; None when it holds text that is not valid
    Unicode (a lone surrogate): ``add_item`` refuses such an item, with its reason."""
    try:
        return item.record()
    except UnicodeEncodeError:
        return None


def parse_chunk_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != wire.ID_SIZE:
        raise InvalidInput(f"not a chunk id: {text!r}")
    return raw
