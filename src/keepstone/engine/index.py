"""Index files (blob id -> pack, offset, length) and the in-memory index built from them."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from keepstone.engine.errors import RepositoryCorrupt, UnsupportedFormat
from keepstone.engine.pack import BLOB_TYPES, PackEntry

INDEX_VERSION = 1
_COUNT = struct.Struct("<I")
_ENTRY = struct.Struct("<32sBIIII")  # id, type, offset, length, raw_length, pack_no


@dataclass(frozen=True, slots=True)
class BlobLocation:
    pack: str
    type: int
    offset: int
    length: int
    raw_length: int


def encode_index(packs: Mapping[str, Sequence[PackEntry]]) -> bytes:
    pack_ids = sorted(packs)
    parts = [bytes([INDEX_VERSION]), _COUNT.pack(len(pack_ids))]
    parts.extend(bytes.fromhex(p) for p in pack_ids)
    for number, pack_id in enumerate(pack_ids):
        parts.extend(
            _ENTRY.pack(e.id, e.type, e.offset, e.length, e.raw_length, number)
            for e in packs[pack_id]
        )
    return b"".join(parts)


def parse_index(plain: bytes, what: str) -> dict[str, list[PackEntry]]:
    pack_ids, rows = index_rows(plain, what)
    packs: dict[str, list[PackEntry]] = {p: [] for p in pack_ids}
    for blob_id, blob_type, offset, length, raw_length, number in rows:
        packs[pack_ids[number]].append(PackEntry(blob_id, blob_type, offset, length, raw_length))
    return packs


# One entry of an index file: id, type, offset, length, raw length, the pack's number in it.
IndexRow = tuple[bytes, int, int, int, int, int]


def index_rows(plain: bytes, what: str) -> tuple[list[str], list[IndexRow]]:
    """An index file's packs and its entries as they are stored, every entry checked."""
    if not plain:
        raise RepositoryCorrupt(f"{what} is empty")
    if plain[0] != INDEX_VERSION:
        raise UnsupportedFormat(f"{what} has index version {plain[0]}; this engine reads 1")
    if len(plain) < 1 + _COUNT.size:
        raise RepositoryCorrupt(f"{what} is truncated")
    (count,) = _COUNT.unpack_from(plain, 1)
    table_end = 1 + _COUNT.size + 32 * count
    body = memoryview(plain)[table_end:]
    if len(plain) < table_end or len(body) % _ENTRY.size:
        raise RepositoryCorrupt(f"{what} is truncated")
    pack_ids = [plain[o : o + 32].hex() for o in range(1 + _COUNT.size, table_end, 32)]
    rows: list[IndexRow] = list(_ENTRY.iter_unpack(body))
    if rows:
        # Checked a column at a time (a Python step per entry was most of opening an index).
        _, types, _, _, _, numbers = zip(*rows, strict=True)
        if max(numbers) >= count or not set(types) <= set(BLOB_TYPES):
            raise RepositoryCorrupt(f"{what} has a malformed entry")
    return pack_ids, rows


class Index:
    """Blob id -> location of the first copy added. Lookups take no lock (dict reads are atomic);
    a location is packed into one int, which keeps a million blobs near 150 MB."""

    def __init__(self) -> None:
        self._blobs: dict[bytes, int] = {}
        self._packs: list[str] = []
        self._pack_numbers: dict[str, int] = {}
        self._mutex = threading.Lock()

    def add(self, pack_id: str, entries: Iterable[PackEntry]) -> None:
        with self._mutex:
            number = self._number(pack_id)
            for e in entries:
                packed = number | e.type << 32 | e.offset << 40 | e.length << 72
                self._blobs.setdefault(e.id, packed | e.raw_length << 104)

    def add_rows(self, pack_ids: list[str], rows: Iterable[IndexRow]) -> None:
        """``add`` of an index file's entries as ``index_rows`` gives them."""
        with self._mutex:
            numbers = [self._number(pack_id) for pack_id in pack_ids]
            blobs = self._blobs
            for blob_id, blob_type, offset, length, raw_length, number in rows:
                packed = numbers[number] | blob_type << 32 | offset << 40 | length << 72
                blobs.setdefault(blob_id, packed | raw_length << 104)

    def _number(self, pack_id: str) -> int:
        number = self._pack_numbers.get(pack_id)
        if number is None:
            number = self._pack_numbers[pack_id] = len(self._packs)
            self._packs.append(pack_id)
        return number

    def get(self, blob_id: bytes) -> BlobLocation | None:
        packed = self._blobs.get(blob_id)
        if packed is None:
            return None
        mask = 0xFFFFFFFF
        return BlobLocation(
            pack=self._packs[packed & mask],
            type=packed >> 32 & 0xFF,
            offset=packed >> 40 & mask,
            length=packed >> 72 & mask,
            raw_length=packed >> 104 & mask,
        )

    def raw_length(self, blob_id: bytes) -> int:
        """The blob's plaintext size (0: not in the index), without building its location: the
        restore's read-ahead asks this of every chunk on the caller's thread."""
        return self._blobs.get(blob_id, 0) >> 104 & 0xFFFFFFFF

    def __contains__(self, blob_id: bytes) -> bool:
        return blob_id in self._blobs

    def __len__(self) -> int:
        return len(self._blobs)

    def packs(self) -> list[str]:
        with self._mutex:
            return list(self._packs)
