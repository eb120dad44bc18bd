"""Names are data: file names as the operating system gives them, and as text for everyone else.

POSIX names are bytes. Python hands them over as ``str`` with surrogate escapes (``\\udce9`` for
a byte ``0xE9`` that is not UTF-8), which no JSON document, SQLite text or UTF-8 encoder accepts.
So a name crosses into items, catalogs and answers in two forms:

- ``display(name)``: valid Unicode for people (an undecodable byte becomes U+FFFD);
- the exact bytes, base64 in an item's metadata, only when the name is not UTF-8
  (``put_exact``/``exact``), which restores use to write the name back byte for byte.

Keys must stay unique where display forms may collide (``caf\\xe9`` and ``caf\\xe8`` both show
as ``caf\\ufffd``): ``key_part`` appends a NUL (never part of a name) and the bytes in hex.
"""

from __future__ import annotations

import base64
import os
from typing import Any


def is_text(name: str) -> bool:
    """Whether the name is valid Unicode as it stands (no surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display(name: str) -> str:
    """The name as text every catalog, JSON document and page takes: bytes that are not UTF-8
    (surrogate escapes) become U+FFFD, and so do NUL (PostgreSQL refuses it) and any other lone
    surrogate (a remote source's JSON can hold "\\ud800")."""
    if is_text(name):
        return name.replace("\0", "\ufffd") if "\0" in name else name
    try:
        shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate no file system name gives
        shown = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in name)
    return shown.replace("\0", "\ufffd")


def key_part(name: str) -> str:
    """An injective text form for keys: the name itself when it is text."""
    if is_text(name):
        return name
    return f"{display(name)}\0{os.fsencode(name).hex()}"


def put_exact(meta: dict[str, Any], field: str, name: str, *, shown: bool = True) -> None:
    """Record ``name`` in ``meta[field]`` as text (unless ``shown`` is False: the item shows it
    elsewhere), and in ``meta[field + "_bytes"]`` its exact bytes when they are not text."""
    if shown:
        meta[field] = display(name)
    if not is_text(name):
        meta[f"{field}_bytes"] = base64.b64encode(os.fsencode(name)).decode("ascii")


def exact(meta: dict[str, Any], field: str, shown: str | None = None) -> str | None:
    """The exact name recorded by ``put_exact`` (as the OS takes it), else ``shown`` or the text
    in ``meta[field]``; None when neither is there."""
    raw = meta.get(f"{field}_bytes")
    if isinstance(raw, str):
        return os.fsdecode(base64.b64decode(raw))
    if shown is not None:
        return shown
    value = meta.get(field)
    return value if isinstance(value, str) else None
