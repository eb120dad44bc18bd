"""``store.prepared._decoded_once``: a JSON column's processor that decodes a short flat document
once: each read is equal to a fresh decode and the caller's own to change."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from keepstone.store.prepared import _FLAT_TEXT, _decoded_once

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


def counting() -> tuple[list[str], Any]:
    seen: list[str] = []

    def process(value: Any) -> Any:
        seen.append(value)
        return None if value is None else json.loads(value)

    return seen, process


@given(DOCUMENTS)
def test_each_read_is_a_fresh_decode(document: Any) -> None:
    text = json.dumps(document)
    _seen, process = counting()
    convert = _decoded_once(process)
    assert convert is not None
    first, second = convert(text), convert(text)
    assert first == second == json.loads(text)
    assert [type(v) for v in _leaves(first)] == [type(v) for v in _leaves(json.loads(text))]
    if isinstance(first, dict | list):
        assert first is not second  # each read its own container


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_a_flat_document_is_decoded_once_and_a_change_stays_the_caller_s() -> None:
    seen, process = counting()
    convert = _decoded_once(process)
    assert convert is not None
    record = '{"type": "Daily", "retry_number": 3, "backup_window": "1010"}'
    first = convert(record)
    first["retry_number"] = 99
    assert convert(record) == {"type": "Daily", "retry_number": 3, "backup_window": "1010"}
    assert convert("[]") == [] and convert("[]") is not convert("[]")
    assert seen == [record, "[]"]


def test_nested_long_and_other_values_are_decoded_each_time() -> None:
    seen, process = counting()
    convert = _decoded_once(process)
    assert convert is not None
    nested = '[{"type": "User", "user": {"id": "u1"}}]'
    long = json.dumps(["x" * _FLAT_TEXT])
    for value in (nested, nested, long, long, None):
        convert(value)
    assert seen == [nested, nested, nested, long, long, None]  # the first nested: kept as such
    assert _decoded_once(None) is None
