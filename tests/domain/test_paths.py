"""The overlap rule, property-tested: symmetric, reflexive, and true exactly when one path is an
ancestor of (or equal to) the other, component by component (``/srv/a`` and ``/srv/ab`` do not
overlap)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keepstone.domain.paths import first_overlap, overlaps

components = st.lists(st.sampled_from(["a", "ab", "b", "data", "a.b"]), max_size=5)


def path_of(parts: list[str]) -> str:
    return "/" + "/".join(parts)


@given(components, components)
def test_overlap_is_symmetric(first: list[str], second: list[str]) -> None:
    assert overlaps(path_of(first), path_of(second)) == overlaps(path_of(second), path_of(first))


@given(components)
def test_a_path_overlaps_itself(parts: list[str]) -> None:
    assert overlaps(path_of(parts), path_of(parts))


@given(components, components)
def test_overlap_means_one_is_a_prefix_of_the_other_by_components(
    first: list[str], second: list[str]
) -> None:
    shorter, longer = sorted((first, second), key=len)
    expected = longer[: len(shorter)] == shorter
    assert overlaps(path_of(first), path_of(second)) == expected


def test_a_sibling_sharing_a_name_prefix_does_not_overlap() -> None:
    assert not overlaps("/srv/a", "/srv/ab")
    assert overlaps("/", "/srv")


@given(components, st.dictionaries(st.text(min_size=1, max_size=3), components, max_size=4))
def test_first_overlap_names_a_place_that_overlaps_or_none(
    parts: list[str], places: dict[str, list[str]]
) -> None:
    resolved = {what: path_of(p) for what, p in places.items()}
    found = first_overlap(path_of(parts), resolved)
    if found is None:
        assert not any(overlaps(path_of(parts), place) for place in resolved.values())
    else:
        assert overlaps(path_of(parts), resolved[found])
