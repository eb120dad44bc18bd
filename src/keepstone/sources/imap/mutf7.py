"""IMAP's modified UTF-7 for folder names (RFC 3501 section 5.1.3), strict on decode.

A name that is not valid modified UTF-7 raises ``ValueError``; callers keep the raw name then
(names are data: a server's odd name is shown as it is, never a crash).
"""

from __future__ import annotations

import base64
import binascii
import re

_RUN = re.compile(r"&([^-]*)-")
_PRINTABLE = re.compile(r"[\x20-\x25\x27-\x7e]+")


def encode(text: str) -> str:
    """``Été`` -> ``&AMk-t&AOk-``; ``&`` -> ``&-``."""
    out: list[str] = []
    pos = 0
    while pos < len(text):
        plain = _PRINTABLE.match(text, pos)
        if plain:
            out.append(plain.group())
            pos = plain.end()
        elif text[pos] == "&":
            out.append("&-")
            pos += 1
        else:
            end = pos
            while end < len(text) and not ("\x20" <= text[end] <= "\x7e"):
                end += 1
            raw = text[pos:end].encode("utf-16-be", "surrogatepass")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            pos = end
    return "".join(out)


def decode(name: str) -> str:
    """The inverse of ``encode``; ``ValueError`` for anything ``encode`` would not produce."""
    if any(not ("\x20" <= char <= "\x7e") for char in name):
        raise ValueError("not 7-bit printable")
    out: list[str] = []
    pos = 0
    for run in _RUN.finditer(name):
        if "&" in name[pos : run.start()]:
            raise ValueError("unterminated shift")
        out.append(name[pos : run.start()])
        out.append(_decode_run(run.group(1)) if run.group(1) else "&")
        pos = run.end()
    if "&" in name[pos:]:
        raise ValueError("unterminated shift")
    out.append(name[pos:])
    decoded = "".join(out)
    if encode(decoded) != name:  # non-canonical forms (encoded ASCII, padding) are not names
        raise ValueError("not canonical modified UTF-7")
    return decoded


def _decode_run(b64: str) -> str:
    padded = b64.replace(",", "/") + "=" * (-len(b64) % 4)
    try:
        return base64.b64decode(padded, validate=True).decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError) as error:
        raise ValueError("bad base64 run") from error
