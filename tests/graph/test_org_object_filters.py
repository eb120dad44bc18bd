"""The organization object filters of ``services.m365_objects`` on their own (the API tests in
test_org_objects.py go through the routers): the vendor's wildcards, location sets, and a bad
filter named before anything is read."""

from __future__ import annotations

import pytest

from keepstone.domain.errors import InvalidInput
from keepstone.services.m365_objects import locations, wildcard


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("ad*", "Adele@contoso.com", True),
        ("*@contoso.com", "adele@CONTOSO.com", True),
        ("a?ele", "adele", True),
        ("a?ele", "aele", False),
        ("dele", "adele@contoso.com", True),  # no wildcard: a substring
        ("[x]", "a[x]b", True),  # brackets are data, not a character class
        ("[x]", "x", False),
        ("ad*", None, False),
        (None, None, True),
    ],
)
def test_wildcards(pattern: str | None, value: str | None, matches: bool) -> None:
    assert wildcard(pattern, "userName")(value) is matches


def test_a_bad_filter_names_its_parameter() -> None:
    with pytest.raises(InvalidInput) as long:
        wildcard("x" * 256, "displayName")
    assert long.value.prop == "displayName"
    with pytest.raises(InvalidInput) as where:
        locations("Mars")
    assert where.value.prop == "locationFilter"
    assert locations("cloudOrHybrid") == {"Cloud", "Hybrid"} and len(locations(None)) == 3
