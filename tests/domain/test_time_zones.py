"""``domain.time_zones``: a zone a user names is found or refused, never an unexpected error."""

from __future__ import annotations

from datetime import tzinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepstone.domain.time_zones import QUOTED, UnknownTimeZone, time_zone


def test_a_known_zone_is_found() -> None:
    assert str(time_zone("Europe/Berlin")) == "Europe/Berlin"


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus",
        "Europe/" + "x" * 300,
        "x" * 5000,
        "../../etc/passwd",
        "/etc/localtime",
        "Europe/\x00Berlin",
        "Europe/\udc80",
        "",
    ],
)
def test_anything_else_is_refused_quoting_at_most_a_few_characters(name: str) -> None:
    with pytest.raises(UnknownTimeZone) as refused:
        time_zone(name)
    message = str(refused.value)
    assert message.startswith("unknown time zone '")
    assert len(message) < QUOTED * 4 + 80  # a lone surrogate is quoted escaped
    message.encode("utf-8")  # printable as it is


@given(st.text(max_size=400))
def test_no_name_raises_anything_but_unknown_time_zone(name: str) -> None:
    try:
        found = time_zone(name)
    except UnknownTimeZone:
        return
    assert isinstance(found, tzinfo)
