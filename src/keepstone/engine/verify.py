"""``verify``: check that every pack, blob, tree and snapshot is present and intact."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from blake3 import blake3

from keepstone.engine.context import INDEX_PREFIX, RepoContext
from keepstone.engine.errors import (
    ObjectNotFound,
    RepositoryCorrupt,
    SnapshotNotFound,
    UnsupportedFormat,
)
from keepstone.engine.locks import Lock
from keepstone.engine.model import Item, VerifyReport
from keepstone.engine.pack import PackEntry, pack_id_of, pack_path, split_pack

Progress = Callable[[int, int], None]
_DAMAGE = (RepositoryCorrupt, UnsupportedFormat, ObjectNotFound)


def verify(ctx: RepoContext, *, read_data: bool, progress: Progress | None) -> VerifyReport:
    lock = Lock.acquire(ctx.store, ctx.codec, ctx.options, exclusive=False)  # keeps prune away
    try:
        return _Verifier(ctx, read_data, progress).run()
    finally:
        lock.release()


class _Verifier:
    def __init__(self, ctx: RepoContext, read_data: bool, progress: Progress | None) -> None:
        self.ctx = ctx
        self.read_data = read_data
        self.progress = progress
        self.report = VerifyReport(True, [], set(), [], [], 0)

    def run(self) -> VerifyReport:
        self.ctx.refresh_index()
        indexed = self._read_index_files()
        self._check_packs(indexed)
        self._check_snapshots()
        r = self.report
        r.damaged_packs.sort()
        r.damaged_index.sort()
        r.ok = not (
            r.damaged_packs
            or r.damaged_chunks
            or r.damaged_items
            or r.damaged_snapshots
            or r.damaged_index
        )
        return r

    def _read_index_files(self) -> dict[str, dict[bytes, PackEntry]]:
        """Every (pack, blob) entry of every index file, duplicates across packs included."""
        packs: dict[str, dict[bytes, PackEntry]] = {}
        for name in self.ctx.store.list(INDEX_PREFIX):
            try:
                loaded = self.ctx.load_index_file(name)
            except _DAMAGE:
                self.report.damaged_index.append(name)
                continue
            for pack_id, entries in loaded.items():
                packs.setdefault(pack_id, {}).update((e.id, e) for e in entries)
        return packs

    def _check_packs(self, indexed: dict[str, dict[bytes, PackEntry]]) -> None:
        listed = {pack_id_of(n) for n in self.ctx.store.list("packs/")}
        self.report.unindexed_packs = sorted(listed - indexed.keys())
        sizes = {p: self.ctx.store.size(pack_path(p)) for p in indexed if p in listed}
        total, done = sum(sizes.values()), 0
        for pack_id, entries in sorted(indexed.items()):
            size = sizes.get(pack_id)
            if size is None:
                self._damage_pack(pack_id, entries.values())
                continue
            short = [e for e in entries.values() if e.offset + e.length > size]
            if short:
                self._damage_pack(pack_id, short)
            if self.read_data:
                self._check_pack_data(pack_id, entries)
                done += size
                if self.progress is not None:
                    self.progress(done, total)

    def _check_pack_data(self, pack_id: str, entries: dict[bytes, PackEntry]) -> None:
        try:
            data = self.ctx.store.get(pack_path(pack_id))
        except ObjectNotFound:
            self._damage_pack(pack_id, entries.values())
            return
        self.report.checked_bytes += len(data)
        if blake3(data).hexdigest() != pack_id:
            self._damage_pack(pack_id, [])
        try:
            header = {e.id: e for e in split_pack(data, self.ctx.codec, pack_path(pack_id))}
        except _DAMAGE:
            header = {}
        if header != entries:
            self._damage_pack(pack_id, [])
        bad = [e for e in entries.values() if not self._blob_ok(pack_id, e, data)]
        if bad:
            self._damage_pack(pack_id, bad)

    def _blob_ok(self, pack_id: str, entry: PackEntry, data: bytes) -> bool:
        stored = memoryview(data)[entry.offset : entry.offset + entry.length]
        try:
            self.ctx.open_blob(entry.id, stored, entry.raw_length, pack_path(pack_id))
        except _DAMAGE:
            return False
        return True

    def _damage_pack(self, pack_id: str, entries: Iterable[PackEntry]) -> None:
        """Mark the pack damaged and, of ``entries``, the blobs that readers would use."""
        if pack_id not in self.report.damaged_packs:
            self.report.damaged_packs.append(pack_id)
        for entry in entries:
            location = self.ctx.index.get(entry.id)
            if location is None or location.pack == pack_id:
                self.report.damaged_chunks.add(entry.id.hex())

    def _check_snapshots(self) -> None:
        for snapshot_id in self.ctx.snapshot_ids():
            try:
                snapshot = self.ctx.load_snapshot(snapshot_id)
            except SnapshotNotFound:
                continue  # forgotten meanwhile
            except _DAMAGE:
                self.report.damaged_snapshots.append(snapshot_id)
                continue
            damaged = [self._check_tree(snapshot_id, tree) for tree in snapshot.trees]
            if any(damaged):
                self.report.damaged_snapshots.append(snapshot_id)

    def _check_tree(self, snapshot_id: str, tree: str) -> bool:
        """Whether the tree or one of its items is damaged."""
        if not self._chunk_ok(tree):
            return True
        try:
            items = self.ctx.load_tree(tree)
        except _DAMAGE:
            self.report.damaged_chunks.add(tree)
            return True
        damaged = [item for item in items if not self._item_ok(item)]
        self.report.damaged_items.extend((snapshot_id, item.key) for item in damaged)
        return bool(damaged)

    def _item_ok(self, item: Item) -> bool:
        return all([self._chunk_ok(c) for c in item.chunks])  # a list: mark every bad chunk

    def _chunk_ok(self, chunk: str) -> bool:
        if chunk in self.report.damaged_chunks:
            return False
        try:
            blob_id = bytes.fromhex(chunk)
        except ValueError:
            blob_id = b""
        if blob_id not in self.ctx.index:
            self.report.damaged_chunks.add(chunk)
            return False
        return True
