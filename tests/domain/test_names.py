"""``names.safe_component``: whatever the text, one safe path component; ``UniqueNames``."""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath, PureWindowsPath

from hypothesis import given
from hypothesis import strategies as st

from keepstone.domain.names import MAX_NAME_BYTES, WINDOWS_DEVICES, UniqueNames, safe_component

HOSTILE = [
    "..",
    ".",
    "",
    "/",
    "/etc/passwd",
    "..\\..\\boot.ini",
    "C:",
    "C:\\Windows",
    "a\0b",
    "\udc80",
    "caf\udce9.txt",
    "\x1b[31mred\x7f\x85",
    "..." + "x" * 300,
    "é" * 200,
    "NUL",
    "con.txt",
    " .. ",
]
any_text = st.one_of(st.sampled_from(HOSTILE), st.text(st.characters(exclude_categories=())))


def is_one_safe_component(name: str) -> bool:
    return (
        name not in ("", ".", "..")
        and name.strip(".") != ""
        and not any(c in name for c in "/\\:\0")
        and all(ord(c) >= 32 and not 0x7F <= ord(c) <= 0x9F for c in name)
        and len(name.encode("utf-8")) <= MAX_NAME_BYTES
        and PurePosixPath(name).parts == (name,)
        and PureWindowsPath(name).parts == (name,)
        and not PureWindowsPath(name).drive
    )


@given(any_text)
def test_the_result_is_always_one_safe_component(name: str) -> None:
    assert is_one_safe_component(safe_component(name))


@given(any_text)
def test_it_is_deterministic_and_stable(name: str) -> None:
    once = safe_component(name)
    assert safe_component(name) == once
    assert safe_component(once) == once


@given(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=50))
def test_ordinary_names_are_kept(name: str) -> None:
    assert (
        safe_component(name + ".txt") == unicodedata.normalize("NFC", name + ".txt")
        or name.upper() in WINDOWS_DEVICES
    )


def test_long_names_that_share_a_beginning_stay_different() -> None:
    first, second = safe_component("x" * 300 + "1.txt"), safe_component("x" * 300 + "2.txt")
    assert first != second and first.endswith(".txt") and second.endswith(".txt")


@given(st.lists(st.sampled_from(["a.txt", "a (2).txt", "b", "a"]), max_size=60))
def test_unique_names_never_repeat(names: list[str]) -> None:
    allocator = UniqueNames()
    given_out = [allocator.claim(name) for name in names]
    assert len(set(given_out)) == len(given_out)
