"""Which characters free text (names, descriptions) may hold.

Everything a client stores is shown again, in JSON and in the Enterprise Manager's XML. XML 1.0
can carry only TAB, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD and U+10000-U+10FFFF
(https://www.w3.org/TR/xml/#charsets); a lone surrogate cannot even be stored as UTF-8. Text
outside that set is refused on input, so it never reaches a listing. A name is one line: it also
refuses every control character (C0, DEL, C1), TAB and line breaks included.

A source's text is not refused but made fit: what is only shown is made ``xml_safe``; a key (an
id, a sign-in name) is kept as the source gave it, and one the catalogs cannot store alike
(``storable``) is skipped with its object (``services.m365_directory``).
"""

from __future__ import annotations

import re

from keepstone.domain.errors import InvalidInput

# What the catalogs cannot store alike: lone surrogates (neither driver encodes them as UTF-8) and
# NUL (SQLite keeps it; PostgreSQL cannot, and ``store.postgres`` writes U+FFFD instead).
NOT_STORABLE = re.compile("[\x00\ud800-\udfff]")
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
NOT_IN_A_NAME = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def check_characters(text: str, prop: str, *, one_line: bool) -> str:
    """``text`` unchanged, or InvalidInput naming ``prop`` and the first forbidden character."""
    found = (NOT_IN_A_NAME if one_line else NOT_XML).search(text)
    if found is None:
        return text
    kind = "control characters" if one_line else "characters XML cannot carry"
    raise InvalidInput(
        f"must not contain {kind}; found U+{ord(found.group()):04X} at position {found.start()}",
        prop,
    )


def xml_safe(text: str) -> str:
    """``text`` with every character XML cannot carry replaced by U+FFFD, for rendering text
    stored before the input rule existed (or by another path) without failing the whole page."""
    return NOT_XML.sub("\ufffd", text)


def storable(text: str) -> bool:
    """Whether every catalog stores ``text`` as it is, and the same."""
    return NOT_STORABLE.search(text) is None
