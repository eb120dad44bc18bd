"""``names.display``: whatever text a source gives (a file system's surrogate escapes, a remote
source's NUL or lone surrogate, which JSON can carry), its shown form is text every catalog, JSON
document and page takes, and text that already is such is shown as it is."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from keepstone.domain.text import storable
from keepstone.sources.names import display, is_text

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))


@given(ANY_TEXT)
def test_a_shown_name_is_storable_text(name: str) -> None:
    shown = display(name)
    assert storable(shown)
    shown.encode("utf-8")  # no surrogate left
    if storable(name):
        assert shown == name


def test_bytes_that_are_not_utf8_nul_and_lone_surrogates_show_as_u_fffd() -> None:
    assert display(os.fsdecode(b"caf\xe9")) == "caf\ufffd"
    assert display("a\x00b") == "a\ufffdb"
    assert display("lone\ud800") == "lone\ufffd"
    assert display(os.fsdecode(b"caf\xe9") + "\ud800\x00") == "caf\ufffd\ufffd\ufffd"
    assert not is_text("lone\ud800")
