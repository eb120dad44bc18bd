"""Large chunks that will not compress are stored as they are after a probe of a few samples,
counted in the bytes zstd is given, not timed; every envelope still decodes."""

from __future__ import annotations

import os

import pytest
import zstandard

from keepstone.engine import codec as codec_module
from keepstone.engine.codec import PROBE_FROM, Codec

from .helpers import pseudo_random

MiB = 1024 * 1024


class CountingCompressor:
    """zstd, counting the bytes it is given."""

    def __init__(self) -> None:
        self.given = 0
        self.calls = 0
        self._real = zstandard.ZstdCompressor(level=codec_module.ZSTD_LEVEL)

    def compress(self, data: bytes) -> bytes:
        self.calls += 1
        self.given += len(data)
        return self._real.compress(data)


def _counted(codec: Codec) -> CountingCompressor:
    counting = CountingCompressor()
    codec._local.c = counting  # this thread's compressor
    return counting


def _text(size: int) -> bytes:
    words = b"quarterly report invoice meeting budget notes draft review "
    return (words * (size // len(words) + 1))[:size]


@pytest.mark.parametrize("chunks", [1, 4], ids=["N", "4N"])
def test_incompressible_chunks_give_zstd_only_their_samples(chunks: int) -> None:
    codec = Codec(None, None, os.urandom)
    counting = _counted(codec)
    for n in range(chunks):
        plain = pseudo_random(f"photo{n}", MiB)
        flag, body = codec.encode_parts(plain)
        assert flag == b"\x00" and body == plain  # stored
        assert codec.decode(flag + body, "chunk", MiB) == plain
    assert counting.calls == chunks
    assert counting.given == chunks * 3 * codec_module.PROBE_SAMPLE  # 1 MiB each before


@pytest.mark.parametrize("chunks", [1, 4], ids=["N", "4N"])
def test_compressible_chunks_are_compressed_whole_after_the_probe(chunks: int) -> None:
    codec = Codec(None, None, os.urandom)
    counting = _counted(codec)
    for n in range(chunks):
        plain = _text(MiB + n)
        flag, body = codec.encode_parts(plain)
        assert flag == b"\x01" and len(body) < len(plain) // 10
        assert codec.decode(flag + body, "chunk", len(plain)) == plain
    assert counting.calls == 2 * chunks
    assert counting.given == chunks * 3 * codec_module.PROBE_SAMPLE + sum(
        MiB + n for n in range(chunks)
    )


def test_small_chunks_are_not_probed() -> None:
    """Below PROBE_FROM zstd sees the chunk once, whole, and decides itself (as before)."""
    codec = Codec(None, None, os.urandom)
    counting = _counted(codec)
    small_random = pseudo_random("small", PROBE_FROM - 1)
    small_text = _text(PROBE_FROM - 1)
    assert codec.encode_parts(small_random)[0] == b"\x00"
    assert codec.encode_parts(small_text)[0] == b"\x01"
    assert counting.calls == 2 and counting.given == 2 * (PROBE_FROM - 1)


def test_a_chunk_compressible_only_between_its_samples_is_still_read_back() -> None:
    """The probe's one risk is size, never content: a chunk whose samples are random but whose
    rest is text is stored as it is, and decodes, encrypted or not."""
    plain = bytearray(_text(MiB))
    for start in (0, MiB // 2 - 8192, MiB - 8192):
        plain[start : start + 8192] = pseudo_random(f"s{start}", 8192)
    for codec in (Codec(None, None, os.urandom), Codec(b"k" * 32, b"i" * 32, os.urandom)):
        stored = codec.encode(bytes(plain))
        assert codec.decode(stored, "chunk", MiB) == plain


def test_envelopes_written_before_the_probe_still_decode() -> None:
    """The probe chooses between the two encodings the format always had (flag 0: stored,
    flag 1: one zstd frame); envelopes made the old way, whole chunk through zstd, decode."""
    codec = Codec(None, None, os.urandom)
    for plain in (pseudo_random("old", MiB), _text(MiB)):
        packed = zstandard.ZstdCompressor(level=3).compress(plain)
        old = b"\x01" + packed if len(packed) < len(plain) else b"\x00" + plain
        assert codec.decode(old, "chunk", MiB) == plain
