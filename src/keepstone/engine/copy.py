"""Copying snapshots from one repository into another (a copy job's work).

Blob ids are keyed per encrypted repository and chunk cut points depend on each repository's
secret chunker seed, so a blob cannot simply move: the target would then hold chunks cut with
the source's seed (for an unencrypted source, the public one, whose lengths fingerprint known
files). Each item's content is therefore read from the source, cut, encrypted and deduplicated
by an ordinary ``BackupWriter`` of the target, exactly as a backup would store it.

What makes the copy incremental without reading data again: the target keeps, for every copy,
the tag ``copy_of`` (the source snapshot). The newest pair (a source snapshot and its copy, both
still present) says, item by item, which target chunks hold which source chunks; an item whose
key and source chunks are the same as in that pair takes the pair's target chunks, unread, when
the target still has them. Only changed or new items are read, and the writer stores only the
chunks the target lacks. A copy whose source snapshot is already copied is not made twice.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from keepstone.engine.errors import SnapshotNotFound
from keepstone.engine.model import Item, SnapshotInfo
from keepstone.engine.repository import Repository
from keepstone.engine.writer import BackupWriter

TAG_COPY_OF = "copy_of"  # the source snapshot a target snapshot is a copy of
TAG_COPY_SOURCE = "copy_source"  # the source repository's config id

ChunkMap = dict[str, tuple[tuple[str, ...], tuple[str, ...]]]  # key -> (source, target chunks)
Check = Callable[[], None]  # raises to stop between items (a user's stop, a lost claim)
Retag = Callable[[SnapshotInfo], dict[str, str]]  # a copy's tags, from its source snapshot's


@dataclass
class CopyStats:
    """What one copy did: snapshots written, items carried (unread) or read, bytes read from
    the source and stored new in the target."""

    snapshots: int = 0
    items: int = 0
    items_carried: int = 0
    items_read: int = 0
    bytes_read: int = 0
    bytes_stored: int = 0
    copied: list[tuple[str, str]] = field(default_factory=list)  # (source, target) snapshot ids
    kinds: dict[str, Counter[str]] = field(default_factory=dict)  # target snapshot -> kinds' counts


class _ChunkStream:
    """An item's content from the source, one checked chunk at a time, as a readable stream."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.read_bytes = 0

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self.read_bytes += len(chunk)
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def copied_sources(target: Repository, source: Repository) -> dict[str, SnapshotInfo]:
    """Source snapshot id -> the target snapshot that is its copy."""
    return {
        info.tags[TAG_COPY_OF]: info
        for info in target.snapshots()
        if TAG_COPY_OF in info.tags and info.tags.get(TAG_COPY_SOURCE) == source.id
    }


def pending(
    source: Repository, target: Repository, wanted: Callable[[SnapshotInfo], bool]
) -> list[SnapshotInfo]:
    """The source snapshots ``wanted`` selects that the target has no copy of, oldest first.

    As the vendor's copy jobs do, a first copy takes only the newest one; later copies take
    every one newer than the newest copied."""
    done = copied_sources(target, source)
    candidates = [s for s in source.snapshots() if wanted(s)]
    copied = [s for s in candidates if s.id in done]
    if not copied:
        return candidates[-1:]
    newest = copied[-1].time
    return [s for s in candidates if s.id not in done and s.time > newest]


def copy_snapshots(
    source: Repository,
    target: Repository,
    snapshots: list[SnapshotInfo],
    retag: Retag = lambda info: info.tags,
    check: Check = lambda: None,
) -> CopyStats:
    """Copy ``snapshots`` (oldest first) into ``target``; each keeps its time, and its tags as
    ``retag`` makes them (plus ``copy_of`` and ``copy_source``)."""
    stats = CopyStats()
    done = copied_sources(target, source)
    todo = [info for info in snapshots if info.id not in done]
    pair = _newest_pair(source, target, done) if todo else {}  # nothing new: no tree is read
    for info in todo:
        check()
        target_id = _copy_one(source, target, info, pair, retag(info), check, stats)
        stats.snapshots += 1
        stats.copied.append((info.id, target_id))
        pair = _chunk_map(source, target, info.id, target_id)
    return stats


def _copy_one(
    source: Repository,
    target: Repository,
    info: SnapshotInfo,
    pair: ChunkMap,
    tags: dict[str, str],
    check: Check,
    stats: CopyStats,
) -> str:
    tags = {**tags, TAG_COPY_OF: info.id, TAG_COPY_SOURCE: source.id}
    kinds: Counter[str] = Counter()
    with target.writer(tags) as writer:
        for item in source.items(info.id):
            writer.add_item(_copy_item(source, writer, item, pair.get(item.key), stats))
            kinds[item.kind] += 1
            stats.items += 1
            if stats.items % 256 == 0:
                check()
        target_id = writer.commit(info.time)
    stats.bytes_stored += writer.stats.bytes_stored
    stats.kinds[target_id] = kinds
    return target_id


def _copy_item(
    source: Repository,
    writer: BackupWriter,
    item: Item,
    known: tuple[tuple[str, ...], tuple[str, ...]] | None,
    stats: CopyStats,
) -> Item:
    if not item.chunks:
        return item
    if known is not None and known[0] == item.chunks and writer.known(known[1]):
        stats.items_carried += 1
        return dataclasses.replace(item, chunks=known[1])
    stream = _ChunkStream(source.read(item))
    chunks, _, _ = writer.add_file(stream)
    stats.items_read += 1
    stats.bytes_read += stream.read_bytes
    return dataclasses.replace(item, chunks=chunks)


def _newest_pair(source: Repository, target: Repository, done: dict[str, SnapshotInfo]) -> ChunkMap:
    """The chunk map of the newest copy whose source snapshot is still there (else empty)."""
    for source_id, copy in sorted(done.items(), key=lambda kv: kv[1].time, reverse=True):
        try:
            return _chunk_map(source, target, source_id, copy.id)
        except SnapshotNotFound:  # removed by the source's retention: try an older pair
            continue
    return {}


def _chunk_map(source: Repository, target: Repository, source_id: str, target_id: str) -> ChunkMap:
    """Item key -> (source chunks, target chunks), from a snapshot and its copy's trees. The
    copy may have lost items since (item-level retention): matching is by key, not position."""
    copies = {item.key: item.chunks for item in target.items(target_id)}
    return {
        item.key: (item.chunks, copies[item.key])
        for item in source.items(source_id)
        if item.key in copies and item.chunks
    }
