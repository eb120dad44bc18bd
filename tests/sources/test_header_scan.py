"""A message's header block is found and parsed as the regular expression and the full line
walk found and parsed it (``_header_end`` with ``bytes.find``, ``_parse_headers`` stopping
once the four headers are in), on every short arrangement of the bytes that matter."""

from __future__ import annotations

import itertools
import random
import re

from keepstone.sources import local

BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def _regex_end(data: bytes) -> int | None:
    if data.startswith((b"\n", b"\r\n")):
        return 0
    match = BLANK_LINE.search(data)
    return match.start() if match else None


def test_the_header_end_is_where_the_regular_expression_found_it() -> None:
    for length in range(9):
        for parts in itertools.product((b"a", b"\r", b"\n"), repeat=length):
            data = b"".join(parts)
            assert local._header_end(data) == _regex_end(data), data


def _full_walk(block: bytes) -> dict[str, list[bytes]]:
    """The headers' raw lines, every line of the block looked at (the walk before the stop)."""
    name: str | None = None
    raw: dict[str, list[bytes]] = {}
    for line in block.split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                raw[name].append(line)
            continue
        head, colon, value = line.partition(b":")
        key = head.strip().decode("ascii", "replace").lower() if colon else ""
        name = key if key in local._HEADERS and key not in raw else None
        if name is not None:
            raw[name] = [value]
    return raw


def test_the_headers_are_the_ones_the_full_walk_found() -> None:
    lines = [
        b"Subject: one", b"subject: two", b"From: a@b", b"To: c@d", b"Date: today",
        b"X-Other: x", b" folded more", b"\tfolded tab", b"no colon", b"=?utf-8?q?caf=C3=A9?=",
    ]  # fmt: skip
    rng = random.Random(15)
    for _ in range(3000):
        chosen = [rng.choice(lines) for _ in range(rng.randrange(12))]
        block = rng.choice((b"\n", b"\r\n")).join(chosen)
        expected = {key: "" for key in local._HEADERS}
        for key, raw in _full_walk(block).items():
            expected[key] = local._decode_header_value(b"".join(raw).decode("utf-8", "replace"))
        assert local._parse_headers(block) == expected, block
