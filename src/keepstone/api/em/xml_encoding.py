"""The text of an XML request body: its encoding found, and the bytes decoded, before any check.

A DOCTYPE written in UTF-16 or UTF-32 is invisible to a search of the raw bytes, so the body is
decoded first and every check (and the parser) then sees the same text. The encoding is, in
order (RFC 7303 section 3, XML 1.0 appendix F): the byte order mark; the ``charset`` of the
``Content-Type``; the layout of NUL bytes in the first four (UTF-16/UTF-32 without a BOM); the
``encoding`` of the XML declaration; UTF-8. Only the encodings below are read; any other, or
bytes that are not valid in the encoding found, are a 400.
"""

from __future__ import annotations

import codecs
import re

from keepstone.domain.errors import InvalidInput

# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Python codec name -> the name to decode with; UTF-16/32 without a BOM default to big-endian.
SUPPORTED = {
    "utf-8": "utf-8",
    "utf-16": "utf-16-be",
    "utf-16-le": "utf-16-le",
    "utf-16-be": "utf-16-be",
    "utf-32": "utf-32-be",
    "utf-32-le": "utf-32-le",
    "utf-32-be": "utf-32-be",
    "ascii": "ascii",
    "iso8859-1": "iso8859-1",
    "cp1252": "cp1252",
}
_DECLARED = re.compile(rb"""^<\?xml[^>]{0,200}?\sencoding\s*=\s*["']([A-Za-z0-9._-]{1,40})["']""")
_CHARSET = re.compile(r"""charset\s*=\s*"?([^";\s]*)""", re.IGNORECASE)


def body_text(body: bytes, content_type: str | None) -> str:
    """The body as text, or InvalidInput naming ``body`` when its encoding cannot be read."""
    encoding, start = _encoding(body, content_type)
    try:
        return body[start:].decode(encoding)
    except UnicodeDecodeError as error:
        raise InvalidInput(
            f"the body is not valid {encoding}: {error.reason} at byte {start + error.start}",
            "body",
        ) from None


def _encoding(body: bytes, content_type: str | None) -> tuple[str, int]:
    """(codec, offset of the first character) for ``body``."""
    for mark, encoding in _BOMS:
        if body.startswith(mark):
            return encoding, len(mark)
    sniffed = _sniffed(body[:4])
    charset = _CHARSET.search(content_type or "")
    if charset is not None:
        return _supported(charset.group(1), "Content-Type", sniffed), 0
    if sniffed is not None:
        return sniffed, 0
    declared = _DECLARED.match(body)
    if declared is not None:
        encoding = _supported(declared.group(1).decode("ascii"), "body", None)
        if not encoding.startswith("utf-16") and not encoding.startswith("utf-32"):
            return encoding, 0
        raise InvalidInput(
            f"the XML declaration names {declared.group(1).decode('ascii')}, but the body is "
            "written in a single-byte or UTF-8 form; send a byte order mark",
            "body",
        )
    return "utf-8", 0


def _sniffed(first: bytes) -> str | None:
    """UTF-16 or UTF-32 without a BOM, from where the NUL bytes of ASCII characters fall."""
    if len(first) < 4:
        return None
    zeros = (first[0] == 0, first[1] == 0, first[2] == 0, first[3] == 0)
    return {
        (True, True, True, False): "utf-32-be",
        (False, True, True, True): "utf-32-le",
        (True, False, True, False): "utf-16-be",
        (False, True, False, True): "utf-16-le",
    }.get(zeros)


def _supported(name: str, prop: str, sniffed: str | None) -> str:
    """The codec for an encoding a client named, in the byte order the body shows if it has
    none of its own; InvalidInput naming ``prop`` for an unknown or unsupported one."""
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        canonical = ""
    if canonical not in SUPPORTED:
        raise InvalidInput(
            f"the encoding '{name}' is not supported; use UTF-8, UTF-16 or UTF-32", prop
        )
    if canonical in ("utf-16", "utf-32") and sniffed is not None and sniffed.startswith(canonical):
        return sniffed
    return SUPPORTED[canonical]
