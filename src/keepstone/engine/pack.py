"""Packs: many encoded blobs, then an encoded header listing them, then the header's length."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from blake3 import blake3

from keepstone.engine.codec import Codec
from keepstone.engine.errors import ObjectExists, RepositoryCorrupt, UnsupportedFormat
from keepstone.engine.store import ObjectStore, Spool, open_spool

DATA = 0
TREE = 1
BLOB_TYPES = (DATA, TREE)
HEADER_VERSION = 1
_ENTRY = struct.Struct("<BIII32s")  # type, offset, length, raw_length, id
_TRAILER = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class PackEntry:
    id: bytes
    type: int
    offset: int
    length: int
    raw_length: int


def pack_path(pack_id: str) -> str:
    return f"packs/{pack_id[:2]}/{pack_id}"


def pack_id_of(path: str) -> str:
    return path.rsplit("/", 1)[-1]


class PackBuilder:
    """The blobs of one pack, written to a spool (a temporary file on a local store) in pieces
    of ``piece`` bytes as they come: a pack being filled or uploaded holds at most that
    much in memory, not the whole pack (three packs in flight were a tenth of the bench's
    initial backup's peak; restic spools its packs to temporary files too)."""

    def __init__(self, store: ObjectStore, piece: int) -> None:
        self._store = store
        self._piece = piece
        self._spool: Spool | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._hasher = blake3()
        self.entries: list[PackEntry] = []
        self.size = 0

    def add(
        self, blob_id: bytes, blob_type: int, encoded: Sequence[bytes], raw_length: int
    ) -> None:
        """Append a blob given as the pieces of its envelope."""
        length = sum(len(part) for part in encoded)
        self.entries.append(PackEntry(blob_id, blob_type, self.size, length, raw_length))
        self._pending.extend(encoded)
        self._pending_size += length
        self.size += length
        if self._pending_size >= self._piece:
            self._spool_pending()

    def finish(self, codec: Codec) -> str:
        """Append the header and its length; the pack's id (the hash of all its bytes)."""
        header = codec.encode(encode_header(self.entries))
        self._pending += [header, _TRAILER.pack(len(header))]
        self.size += len(header) + _TRAILER.size
        self._spool_pending()
        return self._hasher.hexdigest()

    def store(self, pack_id: str) -> None:
        """Store the finished pack under its id; one already there has the same bytes."""
        assert self._spool is not None  # finish() spooled at least the header
        with contextlib.suppress(ObjectExists):
            self._spool.commit(pack_path(pack_id))

    def discard(self) -> None:
        """Drop what was spooled: the pack will not be stored."""
        self._pending, self._pending_size = [], 0
        if self._spool is not None:
            self._spool.discard()

    def _spool_pending(self) -> None:
        # One write (writev) per piece, not per blob, and no join: a large chunk's envelope is
        # written as it is, never copied once more.
        pending, self._pending, self._pending_size = self._pending, [], 0
        if self._spool is None:
            self._spool = open_spool(self._store)
        for part in pending:
            self._hasher.update(part)
        self._spool.write(pending)


def encode_header(entries: list[PackEntry]) -> bytes:
    body = b"".join(_ENTRY.pack(e.type, e.offset, e.length, e.raw_length, e.id) for e in entries)
    return bytes([HEADER_VERSION]) + body


def parse_header(plain: bytes, what: str) -> list[PackEntry]:
    if not plain:
        raise RepositoryCorrupt(f"{what} has an empty header")
    if plain[0] != HEADER_VERSION:
        raise UnsupportedFormat(f"{what} has header version {plain[0]}; this engine reads 1")
    body = memoryview(plain)[1:]
    if len(body) % _ENTRY.size:
        raise RepositoryCorrupt(f"{what} has a truncated header")
    entries = []
    for blob_type, offset, length, raw_length, blob_id in _ENTRY.iter_unpack(body):
        if blob_type not in BLOB_TYPES:
            raise RepositoryCorrupt(f"{what} lists a blob of unknown type {blob_type}")
        entries.append(PackEntry(blob_id, blob_type, offset, length, raw_length))
    return entries


def header_span(pack_size: int, trailer: bytes, what: str) -> tuple[int, int]:
    """(offset, length) of the encoded header, from the pack size and its last 4 bytes."""
    (length,) = _TRAILER.unpack(trailer)
    if length + _TRAILER.size > pack_size:
        raise RepositoryCorrupt(f"{what} has a header longer than itself")
    return pack_size - _TRAILER.size - length, length


def split_pack(data: bytes, codec: Codec, what: str) -> list[PackEntry]:
    """The header entries of a whole pack held in memory; each must lie before the header."""
    if len(data) < _TRAILER.size:
        raise RepositoryCorrupt(f"{what} is too short to be a pack")
    offset, length = header_span(len(data), data[-_TRAILER.size :], what)
    entries = parse_header(codec.decode(data[offset : offset + length], what), what)
    _check_bounds(entries, offset, what)
    return entries


def read_header(store: ObjectStore, pack_id: str, codec: Codec) -> list[PackEntry]:
    """The header entries of a stored pack, read with two range requests."""
    path = pack_path(pack_id)
    size = store.size(path)
    if size < _TRAILER.size:
        raise RepositoryCorrupt(f"{path} is too short to be a pack")
    offset, length = header_span(size, store.get_range(path, size - _TRAILER.size, 4), path)
    entries = parse_header(codec.decode(store.get_range(path, offset, length), path), path)
    _check_bounds(entries, offset, path)
    return entries


def _check_bounds(entries: list[PackEntry], limit: int, what: str) -> None:
    if any(e.offset + e.length > limit for e in entries):
        raise RepositoryCorrupt(f"{what} lists a blob beyond its data")
