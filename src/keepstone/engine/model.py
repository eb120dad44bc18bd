"""The values the engine's API speaks in, and their JSON form inside trees and snapshots."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from keepstone.domain.errors import InvalidInput
from keepstone.engine import wire
from keepstone.engine.errors import RepositoryCorrupt

ItemKind = Literal["mail", "file", "folder"]
ITEM_KINDS: tuple[ItemKind, ...] = ("mail", "file", "folder")


@dataclass(frozen=True, slots=True)
class Item:
    """One backed-up thing. ``chunks`` are the ids of its content's chunks, in order."""

    key: str
    user: str
    kind: str  # one of ITEM_KINDS; a plain str so sources need no cast
    path: str
    size: int
    mtime: float
    mode: int
    meta: dict[str, Any] = field(default_factory=dict)
    chunks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ITEM_KINDS:
            raise InvalidInput(f"item kind must be one of {ITEM_KINDS}, not {self.kind!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "user": self.user,
            "kind": self.kind,
            "path": self.path,
            "size": self.size,
            "mtime": float(self.mtime),
            "mode": self.mode,
            "meta": self.meta,
            "chunks": list(self.chunks),
        }

    @classmethod
    def from_json(cls, value: object, what: str) -> Item:
        if not isinstance(value, dict):
            raise RepositoryCorrupt(f"{what} holds a malformed item")
        try:
            kind, meta, chunks = value["kind"], value["meta"], value["chunks"]
            _require(kind in ITEM_KINDS and isinstance(meta, dict) and isinstance(chunks, list))
            # Positional, chunks through map: an incremental loads every item of the previous
            # point, and this is most of that cost. A user's name and a folder's path repeat in
            # thousands of items: one string each (JSON decoding makes a copy per item).
            return cls(
                str(value["key"]),
                sys.intern(str(value["user"])),
                sys.intern(kind),
                sys.intern(str(value["path"])),
                int(value["size"]),
                float(value["mtime"]),
                int(value["mode"]),
                meta,
                tuple(map(str, chunks)),
            )
        except (KeyError, TypeError, ValueError):
            raise RepositoryCorrupt(f"{what} holds a malformed item") from None


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    time: datetime
    tags: dict[str, str]
    parent: str | None
    item_count: int
    size: int


@dataclass(frozen=True)
class Snapshot:
    """A snapshot object as stored: its listing info and its tree blobs, in order."""

    info: SnapshotInfo
    trees: tuple[str, ...]

    def to_bytes(self) -> bytes:
        info = self.info
        return wire.dumps(
            {
                "version": wire.FORMAT_VERSION,
                "time": wire.format_time(info.time),
                "tags": info.tags,
                "parent": info.parent,
                "trees": list(self.trees),
                "item_count": info.item_count,
                "size": info.size,
            }
        )

    @classmethod
    def parse(cls, snapshot_id: str, plain: bytes) -> Snapshot:
        what = f"snapshot {snapshot_id}"
        document = wire.load_object(plain, what)
        try:
            tags, trees, parent = document["tags"], document["trees"], document["parent"]
            _require(isinstance(tags, dict) and isinstance(trees, list))
            info = SnapshotInfo(
                id=snapshot_id,
                time=wire.parse_time(document["time"], what),
                tags={str(k): str(v) for k, v in tags.items()},
                parent=None if parent is None else str(parent),
                item_count=int(document["item_count"]),
                size=int(document["size"]),
            )
        except (KeyError, TypeError, ValueError):
            raise RepositoryCorrupt(f"{what} is malformed") from None
        for tree in trees:
            wire.parse_id(tree, what)
        return cls(info, tuple(trees))


def _require(condition: bool) -> None:
    if not condition:
        raise ValueError("malformed")


def parse_tree(plain: bytes, what: str) -> list[Item]:
    value = wire.loads(plain, what)
    if not isinstance(value, list):
        raise RepositoryCorrupt(f"{what} is not a list of items")
    return [Item.from_json(v, what) for v in value]


@dataclass
class VerifyReport:
    """What ``verify`` found. ``damaged_chunks`` holds blob ids (data or tree) as hex;
    ``damaged_index`` index files that do not decode; ``unindexed_packs`` packs no index names
    (crash leftovers, not damage)."""

    ok: bool
    damaged_packs: list[str]
    damaged_chunks: set[str]
    damaged_items: list[tuple[str, str]]
    damaged_snapshots: list[str]
    checked_bytes: int
    damaged_index: list[str] = field(default_factory=list)
    unindexed_packs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PruneReport:
    """Pack ids deleted outright, pack ids whose live blobs were copied before deletion, and the
    bytes the store holds less."""

    deleted_packs: list[str]
    rewritten_packs: list[str]
    freed_bytes: int


@dataclass
class WriterStats:
    """Live counters of one run. ``bytes_read`` and ``bytes_new`` count file content (plaintext,
    all of it and the part not already stored); ``bytes_stored`` counts what went into packs,
    item metadata included; ``packs`` those uploaded."""

    files: int = 0
    items: int = 0
    bytes_read: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0
    chunks_new: int = 0
    chunks_dedup: int = 0
    packs: int = 0
