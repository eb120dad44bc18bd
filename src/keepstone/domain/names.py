"""Names are data, never paths: a backed-up item's name (a subject, a file or folder name from a
user's mailbox or drive) becomes one safe path component before anything is written under it.

``safe_component`` is the one rule every save uses (the zip of a multi-item save, ``keepstone
restore save --to DIR``): whatever the text, the result is a single, non-empty component that is
not ``.`` or ``..``, holds no separator (``/`` or ``\\``), drive (``C:``), NUL or other control
character, is valid Unicode (lone surrogates replaced), fits a file name's 255 bytes, and is the
same every time for the same text. ``UniqueNames`` then keeps two items that end up with the same
name apart with a suffix, in time linear in the number of names.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

MAX_NAME_BYTES = 255  # NAME_MAX of every common filesystem, and what zip tools extract
REPLACEMENT = "_"
# Separators, the drive colon and what Windows cannot hold in a name; every control character
# (C0, DEL, C1); and the lone surrogates a non-UTF-8 name decodes to.
_UNSAFE = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f-\x9f\ud800-\udfff]')
WINDOWS_DEVICES = frozenset(
    {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(10)), *(f"LPT{n}" for n in range(10))}
)
_HASH_CHARS = 8


def safe_component(name: str) -> str:
    """``name`` as one safe path component (see the module's docstring)."""
    text = _UNSAFE.sub(REPLACEMENT, unicodedata.normalize("NFC", _valid_unicode(name)))
    text = text.strip(" ")
    if not text.strip("."):  # "", ".", "..", "...": nothing but dots is never a name
        text = REPLACEMENT + text
    if text.split(".", 1)[0].rstrip(" ").upper() in WINDOWS_DEVICES:
        text = REPLACEMENT + text
    return _fit(text, name)


def safe_parts(parts: Iterable[str]) -> list[str]:
    """Each part of a path (folder names, then the item's name) made safe on its own."""
    return [safe_component(part) for part in parts]


def _valid_unicode(name: str) -> str:
    # Lone surrogates (from a name that was not valid UTF-8) cannot be written anywhere.
    return name.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _fit(text: str, original: str) -> str:
    """At most ``MAX_NAME_BYTES`` in UTF-8; a cut name keeps its extension and gains a hash of
    the whole original, so two long names that share a beginning stay different."""
    if len(text.encode("utf-8")) <= MAX_NAME_BYTES:
        return text
    stem, dot, extension = text.rpartition(".")
    if not dot or not stem or len(extension.encode("utf-8")) > 16:
        stem, extension = text, ""
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_CHARS]
    tail = f"~{digest}" + (f".{extension}" if extension else "")
    budget = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    cut = stem.encode("utf-8")[:budget].decode("utf-8", "ignore")
    return cut + tail


class UniqueNames:
    """Hands out names so that no two are the same: ``a.txt``, ``a (2).txt``, ``a (3).txt``...
    A counter per name keeps a run of identical names linear, not quadratic."""

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._next: dict[str, int] = {}

    def claim(self, name: str, exists: bool = False) -> str:
        """``name``, or the first free numbered variant; ``exists`` says ``name`` is taken
        outside this allocator (a file already on disk)."""
        if exists:
            self._taken.add(name)
        if name not in self._taken:
            self._taken.add(name)
            return name
        number = self._next.get(name, 2)
        while (candidate := numbered(name, number)) in self._taken:
            number += 1
        self._next[name] = number + 1
        self._taken.add(candidate)
        return candidate


def numbered(name: str, number: int) -> str:
    """``report.txt`` -> ``report (2).txt``, kept within a name's length limit."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    suffix = f" ({number})" + (f".{extension}" if extension else "")
    budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[:budget].decode("utf-8", "ignore") + suffix
