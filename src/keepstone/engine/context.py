"""What every part of an open repository shares: store, codec, chunker, in-memory index."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Mapping, Sequence

import structlog
from blake3 import blake3

from keepstone.engine.chunker import Chunker
from keepstone.engine.codec import BytesLike, Codec
from keepstone.engine.config import RepoConfig
from keepstone.engine.errors import (
    ObjectExists,
    ObjectNotFound,
    RepositoryCorrupt,
    SnapshotNotFound,
    UnsupportedFormat,
)
from keepstone.engine.index import BlobLocation, Index, encode_index, index_rows, parse_index
from keepstone.engine.keys import MasterKey
from keepstone.engine.model import Item, ItemRecord, Snapshot, parse_tree, tree_records
from keepstone.engine.options import Options
from keepstone.engine.pack import PackBuilder, PackEntry, pack_path
from keepstone.engine.store import ObjectStore

log = structlog.get_logger(__name__)

INDEX_PREFIX = "index/"
SNAPSHOT_PREFIX = "snapshots/"
PackMap = Mapping[str, Sequence[PackEntry]]
_HEX_ID = re.compile(r"[0-9a-f]{64}")
# Blobs read one after another (a restore's chunks) mostly lie one after another in a pack, as
# they were written: such a run is one store read (one open and pread on a local store, one
# request on S3) instead of one per blob. A gap up to this size between two of them (a blob the
# caller does not want) is read and dropped.
SPAN_GAP = 64 * 1024
Located = tuple[bytes, BlobLocation | None]


class RepoContext:
    def __init__(
        self, store: ObjectStore, config: RepoConfig, master: MasterKey | None, options: Options
    ) -> None:
        self.store = store
        self.config = config
        self.options = options
        data_key, id_key = (master.data_key, master.id_key) if master else (None, None)
        self.codec = Codec(data_key, id_key, options.random_bytes)
        self.chunker = Chunker(config.chunker, master.chunker_seed if master else 0)
        self.index = Index()
        self.index_files: set[str] = set()
        self.bad_index: dict[str, str] = {}  # index files that did not decode -> why
        self._index_mutex = threading.Lock()
        self._last_refresh = float("-inf")

    def put_hashed(self, prefix: str, data: bytes) -> str:
        """Store ``data`` under the BLAKE3 of its bytes; an existing object has the same bytes."""
        object_id = blake3(data).hexdigest()
        name = prefix + object_id
        with contextlib.suppress(ObjectExists):
            self.store.put(name, data)
        return object_id

    def new_pack(self) -> PackBuilder:
        return PackBuilder(self.store, self.options.spool_piece)

    def store_pack(self, pack: PackBuilder) -> str:
        """Finish ``pack``, store it durably under its id, and return the id."""
        try:
            pack_id = pack.finish(self.codec)
            pack.store(pack_id)
        except BaseException:
            pack.discard()
            raise
        return pack_id

    def load_index_file(self, name: str) -> dict[str, list[PackEntry]]:
        return parse_index(self._index_plain(name), name)

    def _index_plain(self, name: str) -> bytes:
        data = self.store.get(name)
        if blake3(data).hexdigest() != name.removeprefix(INDEX_PREFIX):
            raise RepositoryCorrupt(f"{name} does not match its name")
        return self.codec.decode(data, name)

    def write_index(self, packs: PackMap) -> str:
        """Put an index file for durable ``packs`` and let this process deduplicate against it."""
        name = INDEX_PREFIX + self.put_hashed(INDEX_PREFIX, self.codec.encode(encode_index(packs)))
        with self._index_mutex:
            for pack_id, entries in packs.items():
                self.index.add(pack_id, entries)
            self.index_files.add(name)
        return name

    def refresh_index(self, *, only_if_due: bool = False) -> None:
        """Load index files written since the last look; start over if any known one vanished
        (a prune replaced them), so no location of a deleted pack survives."""
        with self._index_mutex:
            now = time.monotonic()
            if only_if_due and now - self._last_refresh < self.options.index_refresh:
                return
            self._last_refresh = now
            names = set(self.store.list(INDEX_PREFIX))
            known = self.index_files | set(self.bad_index)
            full = not known <= names
            index = Index() if full else self.index
            if full:
                self.index_files, self.bad_index = set(), {}
            for name in sorted(names if full else names - known):
                self._load_into(index, name)
            self.index = index

    def _load_into(self, index: Index, name: str) -> None:
        try:
            pack_ids, rows = index_rows(self._index_plain(name), name)
        except ObjectNotFound:
            return  # deleted since the listing: its replacement is in the listing too
        except (RepositoryCorrupt, UnsupportedFormat) as e:
            log.warning("engine.index_unreadable", name=name, error=e.message)
            self.bad_index[name] = e.message
            return
        index.add_rows(pack_ids, rows)
        self.index_files.add(name)

    def read_blob(self, blob_id: bytes) -> bytes:
        """A blob's plaintext, checked against its id. A pack may have been rewritten by a prune
        since the index was read: re-read the index once before giving up."""
        for attempt in range(2):
            location = self.index.get(blob_id)
            if location is not None:
                try:
                    return self.read_at(blob_id, location)
                except ObjectNotFound:
                    pass
            if attempt == 0:
                self.refresh_index()
        raise RepositoryCorrupt(f"blob {blob_id.hex()} is missing from the repository")

    def read_blobs(self, blob_ids: Sequence[bytes]) -> list[bytes]:
        """The blobs' plaintexts as ``read_blob`` gives them, in order; blobs close together in
        one pack are read from the store in one piece, each still checked against its id."""
        located = [(blob_id, self.index.get(blob_id)) for blob_id in blob_ids]
        plains: list[bytes] = []
        for run in _runs(located):
            plains.extend(self._read_run(run))
        return plains

    def _read_run(self, run: list[Located]) -> list[bytes]:
        first, last = run[0][1], run[-1][1]
        if len(run) == 1 or first is None or last is None:
            return [self.read_blob(blob_id) for blob_id, _ in run]
        path, span = pack_path(first.pack), last.offset + last.length - first.offset
        try:
            data = self.store.get_range(path, first.offset, span)
        except ObjectNotFound:  # pruned since the index was read: each found again
            return [self.read_blob(blob_id) for blob_id, _ in run]
        view = memoryview(data)
        plains = []
        for blob_id, location in run:
            assert location is not None  # a run holds located blobs only
            start = location.offset - first.offset
            stored = view[start : start + location.length]
            plains.append(self.open_blob(blob_id, stored, location.raw_length, path))
        return plains

    def read_at(self, blob_id: bytes, location: BlobLocation) -> bytes:
        path = pack_path(location.pack)
        data = self.store.get_range(path, location.offset, location.length)
        return self.open_blob(blob_id, data, location.raw_length, path)

    def open_blob(self, blob_id: bytes, data: BytesLike, raw_length: int, where: str) -> bytes:
        what = f"blob {blob_id.hex()} in {where}"
        plain = self.codec.decode(data, what, raw_length)
        if self.codec.blob_id(plain) != blob_id:
            raise RepositoryCorrupt(f"{what} does not match its id")
        return plain

    def snapshot_ids(self) -> list[str]:
        return [n.removeprefix(SNAPSHOT_PREFIX) for n in self.store.list(SNAPSHOT_PREFIX)]

    def load_snapshot(self, snapshot_id: str) -> Snapshot:
        if not _HEX_ID.fullmatch(snapshot_id):
            raise SnapshotNotFound(f"no snapshot {snapshot_id!r}")
        name = SNAPSHOT_PREFIX + snapshot_id
        try:
            data = self.store.get(name)
        except ObjectNotFound:
            raise SnapshotNotFound(f"no snapshot {snapshot_id}") from None
        if blake3(data).hexdigest() != snapshot_id:
            raise RepositoryCorrupt(f"{name} does not match its name")
        return Snapshot.parse(snapshot_id, self.codec.decode(data, name))

    def load_tree(self, tree_id: str) -> list[Item]:
        return parse_tree(self.read_blob(bytes.fromhex(tree_id)), f"tree {tree_id}")

    def load_tree_records(self, tree_id: str) -> list[ItemRecord]:
        return tree_records(self.read_blob(bytes.fromhex(tree_id)), f"tree {tree_id}")


def _runs(located: list[Located]) -> list[list[Located]]:
    """``located`` cut into runs of blobs that follow each other in one pack (gaps at most
    ``SPAN_GAP``); a blob the index does not know is a run of its own."""
    runs: list[list[Located]] = []
    previous: BlobLocation | None = None
    for blob_id, location in located:
        if (
            previous is None
            or location is None
            or location.pack != previous.pack
            or not 0 <= location.offset - (previous.offset + previous.length) <= SPAN_GAP
        ):
            runs.append([])
        runs[-1].append((blob_id, location))
        previous = location
    return runs
