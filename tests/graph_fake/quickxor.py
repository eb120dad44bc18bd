"""quickXorHash, the only content hash OneDrive for Business gives (graph.md §1.4 [G-hash]).

Each byte i is XORed into a 160-bit circular register at bit 11·i mod 160; the length (64-bit
little-endian) is XORed into the last 8 bytes. Bytes 160 apart land on the same bits, so the
data is first folded into 160 columns, which keeps this fast in Python.
"""

from __future__ import annotations

import base64

WIDTH = 160
SHIFT = 11
MASK = (1 << WIDTH) - 1


def _fold(data: bytes) -> bytes:
    folded = 0
    for start in range(0, len(data), WIDTH):
        folded ^= int.from_bytes(data[start : start + WIDTH], "little")
    return folded.to_bytes(WIDTH, "little")


def quickxorhash(data: bytes) -> str:
    """The base64 digest, as `file.hashes.quickXorHash` carries it."""
    register = 0
    for index, byte in enumerate(_fold(data)):
        shift = (index * SHIFT) % WIDTH
        register ^= ((byte << shift) | (byte >> (WIDTH - shift))) & MASK
    digest = bytearray(register.to_bytes(WIDTH // 8, "little"))
    for i, b in enumerate(len(data).to_bytes(8, "little")):
        digest[WIDTH // 8 - 8 + i] ^= b
    return base64.b64encode(bytes(digest)).decode("ascii")
