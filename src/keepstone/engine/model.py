"""The values the engine's API speaks in, and their JSON form inside trees and snapshots."""

from __future__ import annotations

import binascii
import json
import json.scanner
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, Literal, cast

import orjson

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

    def record(self) -> bytes:
        """The item's canonical JSON, ``wire.dumps(self.to_json())``; raises
        ``UnicodeEncodeError`` as that does for text that is not valid Unicode (a lone
        surrogate). A backup makes one per item: orjson, its type checks and the copy take
        under half the time (1.9 against 4.5 us for a message of the bench's)."""
        return _fast_record(self) or wire.dumps(self.to_json())

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


def _fast_record(item: Item) -> bytes | None:
    """``wire.dumps(item.to_json())`` by orjson, or None where the two could differ.

    orjson writes the same bytes as the format's JSON for strings (escapes included), integers,
    booleans, null, lists and dicts with string keys, and for finite floats of magnitude 1e-4
    or more, and zero (``tests/engine/test_item_record.py``); it spells smaller floats its own
    way (``0.00009999``, not ``9.999e-05``), NaN as null, and accepts types ``json`` refuses
    (dates, dataclasses). So an item whose ``mtime`` is outside that range, whose ``meta``
    holds a float or another type, whose other fields are not exactly the types they are
    declared with, or that orjson refuses (a lone surrogate, an integer beyond 64 bits, a key
    that is not a string) takes ``wire.dumps``."""
    mtime = float(item.mtime) if type(item.mtime) is int else item.mtime
    if (
        type(mtime) is not float
        or not (mtime == 0.0 or _SMALLEST_ALIKE <= abs(mtime) < math.inf)
        or not _TEXT.issuperset(map(type, (item.key, item.user, item.kind, item.path)))
        or type(item.size) is not int
        or type(item.mode) is not int
        or not _plain_json(item.meta)
        or not _TEXT.issuperset(map(type, item.chunks))
    ):
        return None
    try:
        record = orjson.dumps(item.to_json(), option=orjson.OPT_SORT_KEYS)
        # A copy: orjson's bytes keep the whole buffer it wrote into (about 8 KiB for a record
        # of 700 bytes), and a run holds thousands of records until their tree is cut (the
        # bench's initial backup peaked 20 MB higher).
        return memoryview(record).tobytes()
    except orjson.JSONEncodeError:
        return None


# orjson and Python's repr spell every finite float alike from here up (and zero).
_SMALLEST_ALIKE = 1e-4


_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})
_TEXT = frozenset({str})


def _plain_json(value: object) -> bool:
    """Whether ``value`` holds only strings, integers, booleans, None, lists and dicts: what
    ``json`` and orjson spell alike (a dict key that is not a string makes orjson fail)."""
    values: Iterable[object]
    if isinstance(value, dict):
        values = value.values()
    elif isinstance(value, list | tuple):
        values = value
    else:
        return type(value) in _PLAIN_SCALARS
    # The usual value, a flat meta of strings, in one pass in C; nested values one by one.
    return _PLAIN_SCALARS.issuperset(map(type, values)) or all(map(_plain_json, values))


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    time: datetime
    tags: dict[str, str]
    parent: str | None
    item_count: int
    size: int


def folder_of(item: Item) -> str:
    """The folder an item is browsed in: a message's (or folder item's) path, a file's parent
    (``.`` at the root of a drive)."""
    return parent_folder(item.path) if item.kind == "file" else item.path


def parent_folder(path: str) -> str:
    """``str(PurePosixPath(path).parent)``. A path as a scan makes it (names joined by single
    slashes, none of them ``.``) is cut at its last slash: a writer asks this of every file it
    adds, in the one thread that adds items in order, and pathlib's parsing cost 5 us a file.
    Any other spelling (``//``, a leading or trailing slash, a ``.`` component, which pathlib
    drops or keeps) goes through pathlib."""
    head, slash, _ = path.rpartition("/")
    if not slash:
        return "."  # a bare name, "", or "."
    if (
        head
        and "//" not in path
        and not path.endswith(("/", "/."))
        and "/./" not in path
        and not path.startswith("./")
    ):
        return head
    return str(PurePosixPath(path).parent)


@dataclass(frozen=True, slots=True)
class FolderSummary:
    """One folder of one user and kind in a snapshot: how many items it holds directly, the
    newest ``mtime`` among them, and which of the snapshot's trees (by position) hold them. A
    browser reads the summaries to list owners and folders, and only those trees to list one
    folder's items."""

    user: str
    kind: str
    folder: str
    count: int
    newest: float
    trees: tuple[int, ...]

    def to_json(self) -> list[Any]:
        return [self.user, self.kind, self.folder, self.count, self.newest, list(self.trees)]

    @classmethod
    def from_json(cls, value: object, what: str) -> FolderSummary:
        try:
            _require(isinstance(value, list) and len(value) == 6 and isinstance(value[5], list))
            assert isinstance(value, list)
            user, kind, folder, count, newest, trees = value
            return cls(
                str(user),
                str(kind),
                str(folder),
                int(count),
                float(newest),
                tuple(int(t) for t in trees),
            )
        except (TypeError, ValueError):
            raise RepositoryCorrupt(f"{what} holds a malformed folder summary") from None


# Where a tree blob was stored when its snapshot was written: pack, offset, length, plain
# length. A prune may move it since; the index is the truth, these save loading it to browse.
TreePlace = tuple[str, int, int, int]


@dataclass(frozen=True)
class Snapshot:
    """A snapshot object as stored: its listing info, its tree blobs in order, the summary of
    its folders and where each tree was stored (None in snapshots written before they existed;
    a place is None when the writer did not know it)."""

    info: SnapshotInfo
    trees: tuple[str, ...]
    folders: tuple[FolderSummary, ...] | None = None
    places: tuple[TreePlace | None, ...] | None = None

    def to_bytes(self) -> bytes:
        info = self.info
        document: dict[str, Any] = {
            "version": wire.FORMAT_VERSION,
            "time": wire.format_time(info.time),
            "tags": info.tags,
            "parent": info.parent,
            "trees": list(self.trees),
            "item_count": info.item_count,
            "size": info.size,
        }
        if self.folders is not None:
            document["folders"] = [f.to_json() for f in self.folders]
        if self.places is not None:
            document["tree_places"] = [None if p is None else list(p) for p in self.places]
        return wire.dumps(document)

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
        folders = document.get("folders")
        if folders is not None and not isinstance(folders, list):
            raise RepositoryCorrupt(f"{what} is malformed")
        summary = (
            None if folders is None else tuple(FolderSummary.from_json(f, what) for f in folders)
        )
        if summary is not None and any(t >= len(trees) or t < 0 for f in summary for t in f.trees):
            raise RepositoryCorrupt(f"{what} names a tree it does not have")
        return cls(info, tuple(trees), summary, _places(document.get("tree_places"), trees, what))


def _places(value: object, trees: list[Any], what: str) -> tuple[TreePlace | None, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != len(trees):
        raise RepositoryCorrupt(f"{what} has malformed tree places")
    places: list[TreePlace | None] = []
    for place in value:
        if place is None:
            places.append(None)
            continue
        try:
            _require(isinstance(place, list) and len(place) == 4)
            pack, offset, length, raw = place
            places.append((wire.parse_id(pack, what).hex(), int(offset), int(length), int(raw)))
        except (TypeError, ValueError):
            raise RepositoryCorrupt(f"{what} has malformed tree places") from None
    return tuple(places)


def _require(condition: bool) -> None:
    if not condition:
        raise ValueError("malformed")


def parse_tree(plain: bytes, what: str) -> list[Item]:
    value = wire.loads(plain, what)
    if not isinstance(value, list):
        raise RepositoryCorrupt(f"{what} is not a list of items")
    return [Item.from_json(v, what) for v in value]


# One item of a tree as it is stored: its key, its user and its canonical JSON.
ItemRecord = tuple[str, str, bytes]

# Between two items of a canonical tree: an item's JSON starts with its first key in sorted
# order, "chunks", a list. Inside a string a quote is escaped, so this can only occur inside an
# item's JSON in a nested object of its `meta` (then the count of pieces gives it away).
_ITEM_START = b'{"chunks":['
_BETWEEN_ITEMS = b"}," + _ITEM_START


def tree_records(plain: bytes, what: str) -> list[ItemRecord]:
    """The items of a tree blob, each as its own JSON: the very bytes the tree holds for it when
    the tree is canonical (as every writer of the format writes it), else its canonical JSON.
    Keeps a previous restore point compact; ``item_of_record`` decodes one."""
    value = wire.loads(plain, what)
    if not isinstance(value, list):
        raise RepositoryCorrupt(f"{what} is not a list of items")
    for v in value:
        if not (isinstance(v, dict) and isinstance(v.get("key"), str)):
            raise RepositoryCorrupt(f"{what} holds a malformed item")
        if not isinstance(v.get("user"), str):
            raise RepositoryCorrupt(f"{what} holds a malformed item")
    owners = [(v["key"], sys.intern(v["user"])) for v in value]
    del value  # the decoded tree is several times its JSON: gone before it is cut
    pieces = _item_pieces(plain, len(owners))
    if pieces is None:
        pieces = [wire.dumps(v) for v in wire.loads(plain, what)]
    return [(key, user, p) for (key, user), p in zip(owners, pieces, strict=True)]


def cut_tree_records(plain: bytes) -> list[ItemRecord] | None:
    """The items of a canonical tree blob as ``tree_records`` gives them, without decoding the
    tree: cut at every separator, each piece's key and user read from its bytes. A separator
    inside an item's ``meta`` would make more pieces than items, so the caller trusts the cut
    only when the pieces of all a snapshot's trees add up to its ``item_count`` (each tree
    gives at least its own count); None when the tree is not in the canonical shape."""
    cut = _canonical_records(plain)
    if cut is None:
        return None
    records: list[ItemRecord] = []
    # Users follow each other: the user of the piece before, as bytes and as text, spares
    # decoding the same name again (this loop runs once per item of the previous point).
    user_bytes, user = b"", ""
    for record in cut:
        user_at = record.rfind(_USER_MARK)
        if user_at >= 0 and record[user_at:] == user_bytes:
            key = _record_key(record, user_at)
            if key is None:
                return None
            records.append((key, user, record))
            continue
        owner = _record_owner(record)
        if owner is None:
            return None
        records.append((owner[0], owner[1], record))
        user_bytes, user = record[user_at:], owner[1]
    return records


def folder_marker(kind: str, folder: str) -> bytes | None:
    """Bytes every canonical record of an item of ``kind`` browsed in ``folder`` holds (its own
    ``path`` field, or the start of it), for ``marked_items``; None for a drive's root, whose
    files' paths have no common start."""
    if kind != "file":
        return _PATH_MARK + wire.dumps(folder) + b","
    if folder in ("", "."):
        return None
    return _PATH_MARK + wire.dumps(folder)[:-1] + b"/"  # the quoted folder, open, then a slash


def marked_items(plain: bytes, marker: bytes, what: str) -> list[Item] | None:
    """The items of a canonical tree blob whose JSON holds ``marker``, each decoded alone: one
    folder's items (``folder_marker``) without decoding the tree's others (a tree holds up to
    10,000 items, and decoding them all is most of a folder's first page). Items whose ``meta``
    merely holds the marker come too: the caller keeps what it asked for. None when the tree
    does not look canonical or a marked piece is not one whole item (a separator inside an
    item's ``meta``, see ``cut_tree_records``: such a piece never decodes as one whole object);
    the caller then decodes the whole tree. A marker cannot straddle two pieces: it ends in a
    comma or a slash, and the separator holds a quote, which no string holds unescaped. An item
    of a tree written otherwise (spaces, other escapes) may hold no marker and be missed: the
    caller compares what it finds with the count it expects (the snapshot's folder summary)."""
    records = _canonical_records(plain)
    if records is None:
        return None
    return _items_of(records, (n for n, record in enumerate(records) if marker in record), what)


def window_items(plain: bytes, count: int, start: int, stop: int, what: str) -> list[Item] | None:
    """Items ``start`` to ``stop`` of a canonical tree blob known to hold ``count`` items, each
    decoded alone, the others left undecoded (a page of an owner's items without decoding the
    10,000 items of its tree). None when the tree is not canonical, is not cut into exactly
    ``count`` pieces (each item gives at least one piece, so as many pieces as items means each
    piece is one whole item: a separator inside an item's ``meta`` makes more) or a piece does
    not decode as one whole item; the caller then decodes the whole tree."""
    records = _canonical_records(plain)
    if records is None or len(records) != count:
        return None
    return _items_of(records, range(max(0, start), min(stop, count)), what)


def _canonical_records(plain: bytes) -> list[bytes] | None:
    """A canonical tree blob cut at every separator between items, each piece as the tree holds
    it from its opening to its closing brace (an item's JSON when the piece is one whole item;
    see ``cut_tree_records``); None when it is not in the canonical shape. Each piece is sliced
    from the tree: one copy of its bytes (a split and a concatenation per piece made three, and
    the split's list, as large as the tree, was an incremental's memory peak)."""
    if not (plain.startswith(b"[" + _ITEM_START) and plain.endswith(b"}]")):
        return None
    records: list[bytes] = []
    start, body_end = 1, len(plain) - 1
    while (cut := plain.find(_BETWEEN_ITEMS, start, body_end)) >= 0:
        records.append(plain[start : cut + 1])
        start = cut + 2  # past "},"
    records.append(plain[start:body_end])
    return records


def _items_of(records: list[bytes], chosen: Iterable[int], what: str) -> list[Item] | None:
    """The items of the records numbered ``chosen``, each decoded alone; None when one is not
    one whole item (the caller then decodes the whole tree)."""
    found: list[Item] = []
    for n in chosen:
        try:
            text = records[n].decode()
            value, end = _scan_json(text, 0)
        except (UnicodeDecodeError, StopIteration, json.JSONDecodeError):
            return None
        if end != len(text):
            return None
        try:
            found.append(Item.from_json(value, what))
        except RepositoryCorrupt:
            return None  # decoding the whole tree says what is wrong with it
    return found


def tree_piece_count(plain: bytes) -> int | None:
    """How many pieces ``cut_tree_records`` would cut the tree into, without cutting it (None
    when the tree is not in the canonical shape): a snapshot whose trees' counts add up to its
    ``item_count`` has no separator inside an item, so every cut of its trees is trusted."""
    if not (plain.startswith(b"[" + _ITEM_START) and plain.endswith(b"}]")):
        return None
    return plain.count(_BETWEEN_ITEMS, 1, len(plain) - 1) + 1


_KEY_MARK, _KIND_MARK, _USER_MARK = b'],"key":"', b'","kind":"', b',"user":"'


def _record_owner(record: bytes) -> tuple[str, str] | None:
    """Key and user of a canonical item record, read from its bytes: the key follows the chunk
    list (ids hold no "]"), the user is the last value; a quote inside a string is escaped, so
    neither marker can occur inside one."""
    user_at = record.rfind(_USER_MARK)
    key = _record_key(record, user_at)
    if key is None or not record.endswith(b'"}'):
        return None
    try:
        user = _json_string(record[user_at + len(_USER_MARK) - 1 : -1])
    except (UnicodeDecodeError, ValueError):
        return None
    return key, sys.intern(user)


def _record_key(record: bytes, user_at: int) -> str | None:
    """The key of a canonical item record whose user field starts at ``user_at`` (see
    ``_record_owner``); None when the record is not in that shape."""
    key_at = record.find(_KEY_MARK)
    key_end = record.find(_KIND_MARK, key_at + len(_KEY_MARK) - 1)
    if key_at < 0 or key_end < 0 or user_at < key_end:
        return None
    try:
        return _json_string(record[key_at + len(_KEY_MARK) - 1 : key_end + 1])
    except (UnicodeDecodeError, ValueError):
        return None


def _json_string(quoted: bytes) -> str:
    if b"\\" not in quoted:
        return quoted[1:-1].decode()
    value = json.loads(quoted)
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value


def _item_pieces(plain: bytes, count: int) -> list[bytes] | None:
    """The tree's JSON cut between its items without decoding it (None if it cannot be)."""
    records = _canonical_records(plain) if count else None
    if records is None or len(records) != count:
        return None  # not canonical, or the separator inside an item's meta: no cut is trusted
    return records


def item_of_record(record: bytes, key: str, what: str) -> Item:
    """The item whose JSON is ``record`` (from ``tree_records``), checked to be ``key``'s.
    Decoded by the JSON scanner itself: ``json.loads`` spends as long again per small
    document finding the encoding and skipping whitespace, and an incremental decodes one
    record per item."""
    try:
        text = record.decode()
        value, end = _scan_json(text, 0)
    except (UnicodeDecodeError, StopIteration, json.JSONDecodeError):
        raise RepositoryCorrupt(f"{what} holds a malformed item") from None
    item = Item.from_json(value, what)
    if end != len(text) or item.key != key:
        raise RepositoryCorrupt(f"{what} holds a malformed item")
    return item


_scan_json = json.scanner.make_scanner(cast(Any, json.JSONDecoder()))

# A canonical item's JSON ends with its last keys in sorted order: ..."mode":M,"mtime":T,
# "path":P,"size":S,"user":U}. Strings escape every quote, so these markers cannot occur inside
# a string value; searched from the end, they are the item's own top-level keys.
_SIZE_MARK = b',"size":'
_MTIME_MARK = b',"mtime":'
_PATH_MARK = b',"path":'


_QUOTED_ID = 2 * wire.ID_SIZE + 3  # "<hex>",
_QUOTE, _COMMA = ord('"'), ord(",")

# An item carried undecoded: its canonical JSON, its size and its mtime (read from that JSON).
CarriedRecord = tuple[bytes, int, float]


def record_chunks(record: bytes) -> list[bytes] | None:
    """The chunk ids (raw) of a canonical item record (``tree_records``) without decoding it;
    None when the record is not in the canonical shape."""
    first = len(_ITEM_START)
    end = record.find(b"]", first)
    if end < 0 or not record.startswith(_ITEM_START):
        return None
    if end == first:
        return []  # no content
    # Each id is "<64 hex>" followed by a comma, except the last.
    if (end - first + 1) % _QUOTED_ID:
        return None
    ids: list[bytes] = []
    for at in range(first, end, _QUOTED_ID):
        after = at + _QUOTED_ID - 1
        if record[at] != _QUOTE or record[after - 1] != _QUOTE:
            return None
        if after < end and record[after] != _COMMA:
            return None
        try:
            ids.append(binascii.unhexlify(record[at + 1 : after - 1]))
        except binascii.Error:
            return None
    return ids


def record_size_mtime(record: bytes) -> tuple[int, float] | None:
    """``size`` and ``mtime`` of a canonical item record without decoding it (None when the
    record is not in the canonical shape)."""
    size_at = record.rfind(_SIZE_MARK)
    if size_at < 0:
        return None
    size_end = record.find(b",", size_at + len(_SIZE_MARK))
    mtime_at = record.rfind(_MTIME_MARK, 0, size_at)
    path_at = record.find(_PATH_MARK, mtime_at)
    if size_end < 0 or mtime_at < 0 or path_at < 0 or path_at > size_at:
        return None
    try:
        size = int(record[size_at + len(_SIZE_MARK) : size_end])
        mtime = float(record[mtime_at + len(_MTIME_MARK) : path_at])
    except ValueError:
        return None
    return size, mtime


def record_has(record: bytes, field: str, value: str) -> bool:
    """Whether the canonical record holds ``"field":value`` (a string value; quotes are
    escaped inside strings, so this can only be a key of the item or of its flat ``meta``)."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        needle = f'"{field}":"{value}"'  # JSON spells such a string as it is
    else:
        needle = json.dumps(field) + ":" + json.dumps(value, ensure_ascii=False)
    return needle.encode() in record


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
