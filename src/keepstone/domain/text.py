"""Which characters free text (names, descriptions) may hold.

Everything a client stores is shown again, in JSON and in the Enterprise Manager's XML. XML 1.0
can carry only TAB, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD and U+10000-U+10FFFF
(https://www.w3.org/TR/xml/#charsets); a lone surrogate cannot even be stored as UTF-8. Text
outside that set is refused on input, so it never reaches a listing. A name is one line: it also
refuses every control character (C0, DEL, C1), TAB and line breaks included.
"""

from __future__ import annotations

import re

from keepstone.domain.errors import InvalidInput

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
