"""The envelope of every stored object (optional zstd, then optional AES-256-GCM), and blob ids."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import zstandard
from blake3 import blake3

from keepstone.engine.errors import RepositoryCorrupt

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BytesLike = bytes | bytearray | memoryview

# Level 2, not zstd's default 3: on the bench organization's chunks it spent 15 % less CPU for
# 0.25 % more bytes (docs/benchmarks.md); readers take frames of any level.
ZSTD_LEVEL = 2
NONCE_SIZE = 12
TAG_SIZE = 16
_STORED = b"\x00"
_COMPRESSED = b"\x01"
# A frame claiming more than this is corrupt: no object of the format gets near it.
_MAX_PLAINTEXT = 1 << 31
# Chunks this large are probed before zstd sees them whole: a few samples compressed together,
# and if they save less than 1/PROBE_GAIN of their size the chunk is stored as it is (photos,
# archives, video: already compressed). zstd gives up on such data at about 2 GB/s per
# core, plus a fresh output buffer as large as the chunk; the probe costs a hundredth of that.
PROBE_FROM = 128 * 1024
PROBE_SAMPLE = 4 * 1024  # bytes at each of the start, the middle and the end
PROBE_GAIN = 32


class Codec:
    """Encodes and decodes objects and computes blob ids; safe to share between threads."""

    def __init__(
        self,
        data_key: bytes | None,
        id_key: bytes | None,
        random_bytes: Callable[[int], bytes],
    ) -> None:
        self._aead = _aes_gcm(data_key) if data_key is not None else None
        self._id_key = id_key
        self._random = random_bytes
        # zstd contexts are not thread-safe but are costly to create: one per thread.
        self._local = threading.local()

    @property
    def encrypted(self) -> bool:
        return self._aead is not None

    def blob_id(self, data: BytesLike) -> bytes:
        if self._id_key is None:
            return blake3(data).digest()
        return blake3(data, key=self._id_key).digest()

    def encode(self, plain: BytesLike) -> bytes:
        return b"".join(self.encode_parts(plain))

    def encode_parts(self, plain: BytesLike) -> tuple[bytes, bytes]:
        """The envelope as two pieces whose concatenation is ``encode(plain)``: packs write them
        as they are, which saves copying every chunk once more under the GIL."""
        flag, body = _STORED, plain
        if not self._incompressible(plain):
            packed = self._compressor().compress(plain)
            if len(packed) < len(plain):
                flag, body = _COMPRESSED, packed
        if self._aead is None:
            return flag, bytes(body)  # a copy only when body is a view of a reused buffer
        nonce = self._random(NONCE_SIZE)
        return nonce, self._aead.encrypt(nonce, b"".join((flag, body)), None)

    def _incompressible(self, plain: BytesLike) -> bool:
        """Whether samples of a large ``plain`` show it will not compress (never for a small
        one: it is compressed whole, as cheaply as probed)."""
        size = len(plain)
        if size < PROBE_FROM:
            return False
        view = memoryview(plain)
        middle = (size - PROBE_SAMPLE) // 2
        sample = b"".join(
            (
                view[:PROBE_SAMPLE],
                view[middle : middle + PROBE_SAMPLE],
                view[size - PROBE_SAMPLE :],
            )
        )
        packed = len(self._compressor().compress(sample))
        return packed > len(sample) - len(sample) // PROBE_GAIN

    def decode(self, stored: BytesLike, what: str, raw_length: int | None = None) -> bytes:
        inner = self._decrypt(stored, what) if self._aead is not None else memoryview(stored)
        if len(inner) < 1:
            raise RepositoryCorrupt(f"{what} is empty")
        flag, body = inner[:1], inner[1:]
        if flag == _STORED:
            plain = bytes(body)
        elif flag == _COMPRESSED:
            plain = self._decompress(body, what, raw_length)
        else:
            raise RepositoryCorrupt(f"{what} has an unknown encoding {bytes(flag).hex()}")
        if raw_length is not None and len(plain) != raw_length:
            raise RepositoryCorrupt(f"{what} has {len(plain)} bytes, {raw_length} expected")
        return plain

    def _decrypt(self, stored: BytesLike, what: str) -> memoryview:
        assert self._aead is not None
        if len(stored) < NONCE_SIZE + TAG_SIZE + 1:
            raise RepositoryCorrupt(f"{what} is too short to be encrypted")
        view = memoryview(stored)
        from cryptography.exceptions import InvalidTag  # imported by _aes_gcm already

        try:
            return memoryview(self._aead.decrypt(view[:NONCE_SIZE], view[NONCE_SIZE:], None))
        except InvalidTag:
            raise RepositoryCorrupt(f"{what} fails authentication (damaged or foreign)") from None

    def _decompress(self, body: memoryview, what: str, raw_length: int | None) -> bytes:
        try:
            size = zstandard.frame_content_size(body)
        except zstandard.ZstdError:
            size = -1
        if size < 0 or size > _MAX_PLAINTEXT or raw_length not in (None, size):
            raise RepositoryCorrupt(f"{what} has a bad zstd frame header")
        try:
            return self._decompressor().decompress(body)
        except zstandard.ZstdError as e:
            raise RepositoryCorrupt(f"{what} does not decompress: {e}") from None

    def _compressor(self) -> zstandard.ZstdCompressor:
        compressor: zstandard.ZstdCompressor | None = getattr(self._local, "c", None)
        if compressor is None:
            compressor = self._local.c = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        return compressor

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        decompressor: zstandard.ZstdDecompressor | None = getattr(self._local, "d", None)
        if decompressor is None:
            decompressor = self._local.d = zstandard.ZstdDecompressor()
        return decompressor


def _aes_gcm(data_key: bytes) -> AESGCM:
    """An encrypted repository's cipher. cryptography is imported here, not with the module: its
    library is about 8 MB resident, which the processes of an unencrypted repository (a
    backup's, a restore's, the bench's) never need (docs/benchmarks.md, the peak memory)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(data_key)
