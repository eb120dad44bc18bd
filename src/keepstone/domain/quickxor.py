"""quickXorHash, the only content hash OneDrive for Business and SharePoint give
(``file.hashes.quickXorHash``, base64; graph.md §1.4).

Byte ``i`` of the content is XORed into a 160-bit circular register at bit ``11·i mod 160``, and
the length (64-bit little-endian) into the digest's last 8 bytes. Bytes 160 apart land on the
same bits, so the data is first folded into 160 columns (``i mod 160``) and the register is
built from the columns once at the end. The fold works on large blocks as single integers
(XOR of halves), so hashing a file costs a few big-integer operations per block, in C.

Pure maths, no I/O: ``QuickXor`` takes the bytes in pieces of any size (a download as it
arrives), ``quickxor_hash`` takes them at once.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

WIDTH = 160  # bits of the register, and bytes in one row of the fold
SHIFT = 11
_ROW_BITS = WIDTH * 8
_ROW_MASK = (1 << _ROW_BITS) - 1
_REGISTER_MASK = (1 << WIDTH) - 1


def _fold_rows(block: bytes) -> int:
    """XOR of the 160-byte rows of ``block`` (its length a multiple of 160) as one integer."""
    rows = len(block) // WIDTH
    value = int.from_bytes(block, "little")
    folded = 0
    while rows > 1:
        if rows % 2:
            folded ^= value & _ROW_MASK
            value >>= _ROW_BITS
            rows -= 1
        half = rows // 2
        value = (value & ((1 << (_ROW_BITS * half)) - 1)) ^ (value >> (_ROW_BITS * half))
        rows = half
    return folded ^ value


def _rotate_columns(value: int, by: int) -> int:
    """The 160 columns moved ``by`` places up (column c goes to (c + by) mod 160)."""
    if by == 0:
        return value
    bits = by * 8
    return ((value << bits) | (value >> (_ROW_BITS - bits))) & _ROW_MASK


class QuickXor:
    """The hash of bytes given in pieces: ``update`` any number of times, then ``digest``."""

    def __init__(self) -> None:
        self._columns = 0  # column c holds the XOR of every byte i with i mod 160 == c
        self._length = 0

    def update(self, data: bytes) -> None:
        if not data:
            return
        offset = self._length % WIDTH
        whole = len(data) - len(data) % WIDTH
        folded = _fold_rows(data[:whole]) if whole else 0
        tail = data[whole:]
        if tail:
            folded ^= int.from_bytes(tail, "little")
        self._columns ^= _rotate_columns(folded, offset)
        self._length += len(data)

    def digest(self) -> bytes:
        register = 0
        for index, byte in enumerate(self._columns.to_bytes(WIDTH, "little")):
            if byte:
                shift = (index * SHIFT) % WIDTH
                register ^= ((byte << shift) | (byte >> (WIDTH - shift))) & _REGISTER_MASK
        digest = bytearray(register.to_bytes(WIDTH // 8, "little"))
        for i, b in enumerate(self._length.to_bytes(8, "little")):
            digest[WIDTH // 8 - 8 + i] ^= b
        return bytes(digest)

    def b64digest(self) -> str:
        """The digest as ``file.hashes.quickXorHash`` carries it."""
        return base64.b64encode(self.digest()).decode("ascii")


def quickxor_hash(pieces: bytes | Iterable[bytes]) -> str:
    """The base64 quickXorHash of ``pieces`` (one bytes object, or several in order)."""
    hasher = QuickXor()
    for piece in [pieces] if isinstance(pieces, bytes) else pieces:
        hasher.update(piece)
    return hasher.b64digest()
