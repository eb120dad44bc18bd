"""Operations that delete or replace objects, under an exclusive lock: prune, rebuild_index."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

import structlog

from keepstone.engine.context import INDEX_PREFIX, PackMap, RepoContext
from keepstone.engine.errors import (
    ObjectNotFound,
    RepositoryCorrupt,
    UnsupportedFormat,
)
from keepstone.engine.locks import Lock
from keepstone.engine.model import PruneReport
from keepstone.engine.pack import PackBuilder, PackEntry, pack_id_of, pack_path, read_header
from keepstone.engine.store import TemporaryFiles

log = structlog.get_logger(__name__)

# A pack is rewritten once this share of its blob bytes is no longer referenced.
REWRITE_UNUSED_RATIO = 0.2
# Blobs per index file written by prune and rebuild_index (about 2.5 MB each).
INDEX_FILE_ENTRIES = 50_000
# A temporary file untouched this long was left by a crash or a kill: prune deletes it.
STALE_TEMPORARIES = 24 * 3600.0
_DAMAGE = (RepositoryCorrupt, UnsupportedFormat, ObjectNotFound)


@contextlib.contextmanager
def _exclusive(ctx: RepoContext) -> Iterator[None]:
    lock = Lock.acquire(ctx.store, ctx.codec, ctx.options, exclusive=True)
    try:
        yield
    finally:
        lock.release()


def rebuild_index(ctx: RepoContext) -> None:
    """Replace every index file by what the pack headers say. Packs whose header is damaged are
    left out (their blobs become missing, which verify then reports)."""
    with _exclusive(ctx):
        old = ctx.store.list(INDEX_PREFIX)
        packs: dict[str, list[PackEntry]] = {}
        for name in ctx.store.list("packs/"):
            pack_id = pack_id_of(name)
            try:
                packs[pack_id] = read_header(ctx.store, pack_id, ctx.codec)
            except _DAMAGE as e:
                log.warning("engine.pack_header_unreadable", pack=pack_id, error=str(e))
        _replace_index(ctx, old, packs)


def prune(ctx: RepoContext) -> PruneReport:
    """Delete what no snapshot needs: packs, their index entries, and temporary files that
    crashed or killed runs left (untouched for ``STALE_TEMPORARIES`` seconds)."""
    with _exclusive(ctx):
        report = _Pruner(ctx).run()
        if not isinstance(ctx.store, TemporaryFiles):
            return report
        freed = ctx.store.remove_stale_temporaries(STALE_TEMPORARIES)
        return dataclasses.replace(report, freed_bytes=report.freed_bytes + freed)


@dataclass
class _Plan:
    delete: list[str] = field(default_factory=list)
    rewrite: list[str] = field(default_factory=list)
    keep: dict[str, list[PackEntry]] = field(default_factory=dict)


class _Pruner:
    def __init__(self, ctx: RepoContext) -> None:
        self.ctx = ctx
        self.sizes: dict[str, int] = {}
        self.index_names: list[str] = []
        self.entries: dict[str, list[PackEntry]] = {}  # pack -> its entries, from the index
        self.chosen: dict[bytes, str] = {}  # referenced blob -> the pack whose copy is kept

    def run(self) -> PruneReport:
        # Only packs listed now are considered: nothing written later is touched.
        listed = {pack_id_of(n): n for n in self.ctx.store.list("packs/")}
        self._read_index(listed)
        self._choose_copies(self._referenced())
        plan = self._plan(listed)
        if not plan.delete and not plan.rewrite:
            return PruneReport([], [], 0)
        new_packs = self._rewrite(plan)
        _replace_index(self.ctx, self.index_names, {**plan.keep, **new_packs})
        gone = [p for p in plan.delete + plan.rewrite if p not in new_packs]
        freed = sum(self._size(p) for p in gone) - sum(self._size(p) for p in new_packs)
        for pack_id in gone:
            with contextlib.suppress(ObjectNotFound):
                self.ctx.store.delete(pack_path(pack_id))
        return PruneReport(sorted(plan.delete), sorted(plan.rewrite), freed)

    def _read_index(self, listed: dict[str, str]) -> None:
        self.index_names = self.ctx.store.list(INDEX_PREFIX)
        for name in self.index_names:
            try:
                packs = self.ctx.load_index_file(name)
            except _DAMAGE as e:
                raise RepositoryCorrupt(
                    f"prune stopped, nothing deleted: {name} is unreadable ({e}); "
                    "run rebuild_index first"
                ) from None
            for pack_id, entries in packs.items():
                if pack_id in listed:
                    self.entries.setdefault(pack_id, []).extend(entries)
        self.ctx.refresh_index()

    def _referenced(self) -> set[bytes]:
        """Every blob some snapshot needs; any doubt stops the prune before it deletes."""
        referenced: set[bytes] = set()
        try:
            for snapshot_id in self.ctx.snapshot_ids():
                for tree in self.ctx.load_snapshot(snapshot_id).trees:
                    referenced.add(bytes.fromhex(tree))
                    for item in self.ctx.load_tree(tree):
                        referenced.update(bytes.fromhex(c) for c in item.chunks)
        except (*_DAMAGE, ValueError) as e:
            raise RepositoryCorrupt(f"prune stopped, nothing deleted: {e}; run verify") from None
        return referenced

    def _choose_copies(self, referenced: set[bytes]) -> None:
        for pack_id in sorted(self.entries):
            for entry in self.entries[pack_id]:
                if entry.id in referenced:
                    self.chosen.setdefault(entry.id, pack_id)
        missing = len(referenced) - len(self.chosen)
        if missing:
            raise RepositoryCorrupt(
                f"prune stopped, nothing deleted: {missing} referenced blobs are in no "
                "existing pack; run verify"
            )

    def _plan(self, listed: dict[str, str]) -> _Plan:
        plan = _Plan(delete=sorted(listed.keys() - self.entries.keys()))  # unindexed leftovers
        for pack_id, entries in sorted(self.entries.items()):
            total = sum(e.length for e in entries)
            used = sum(e.length for e in entries if self.chosen.get(e.id) == pack_id)
            if used == 0:
                plan.delete.append(pack_id)
            elif total - used >= REWRITE_UNUSED_RATIO * total:
                plan.rewrite.append(pack_id)
            else:
                plan.keep[pack_id] = _unique(entries)
        return plan

    def _rewrite(self, plan: _Plan) -> dict[str, list[PackEntry]]:
        """Copy the chosen blobs of packs to rewrite into new packs; keep a pack whose blobs do
        not check out rather than lose the damaged copies too."""
        new_packs: dict[str, list[PackEntry]] = {}
        builder = self.ctx.new_pack()
        try:
            for pack_id in list(plan.rewrite):
                blobs = self._chosen_blobs(pack_id)
                if blobs is None:
                    plan.rewrite.remove(pack_id)
                    plan.keep[pack_id] = _unique(self.entries[pack_id])
                    continue
                for entry, stored in blobs:
                    builder.add(entry.id, entry.type, (stored,), entry.raw_length)
                    if builder.size >= self.ctx.options.pack_size:
                        self._flush(builder, new_packs)
                        builder = self.ctx.new_pack()
            if builder.entries:
                self._flush(builder, new_packs)
        except BaseException:
            builder.discard()  # its spool, if any: nothing of it was stored
            raise
        return new_packs

    def _chosen_blobs(self, pack_id: str) -> list[tuple[PackEntry, bytes]] | None:
        path = pack_path(pack_id)
        data = self.ctx.store.get(path)
        blobs = []
        for entry in _unique(self.entries[pack_id]):
            if self.chosen.get(entry.id) != pack_id:
                continue
            stored = data[entry.offset : entry.offset + entry.length]
            try:
                self.ctx.open_blob(entry.id, stored, entry.raw_length, path)
            except _DAMAGE as e:
                log.warning("engine.prune_kept_damaged_pack", pack=pack_id, error=str(e))
                return None
            blobs.append((entry, stored))
        return blobs

    def _flush(self, builder: PackBuilder, new_packs: dict[str, list[PackEntry]]) -> None:
        pack_id = self.ctx.store_pack(builder)
        self.sizes[pack_id] = builder.size
        new_packs[pack_id] = builder.entries

    def _size(self, pack_id: str) -> int:
        if pack_id not in self.sizes:
            try:
                self.sizes[pack_id] = self.ctx.store.size(pack_path(pack_id))
            except ObjectNotFound:
                self.sizes[pack_id] = 0
        return self.sizes[pack_id]


def _unique(entries: list[PackEntry]) -> list[PackEntry]:
    """One entry per blob id (several index files may list the same pack)."""
    return list({e.id: e for e in entries}.values())


def _replace_index(ctx: RepoContext, old_names: list[str], packs: PackMap) -> None:
    """New index files first, then delete the old ones: there is never a moment without one."""
    new_names = {ctx.write_index(group) for group in _groups(packs)}
    for name in old_names:
        if name not in new_names:
            with contextlib.suppress(ObjectNotFound):
                ctx.store.delete(name)
    ctx.refresh_index()


def _groups(packs: PackMap) -> Iterator[PackMap]:
    group: dict[str, list[PackEntry]] = {}
    count = 0
    for pack_id in sorted(packs):
        group[pack_id] = list(packs[pack_id])
        count += len(packs[pack_id])
        if count >= INDEX_FILE_ENTRIES:
            yield group
            group, count = {}, 0
    if group:
        yield group
