"""``wire.dumps`` keeps one C encoder for the format's options: the same bytes as the
``json.dumps`` spelling it replaces, for every value, and the same errors."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepstone.engine import wire


def _reference(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()  # any code point but lone surrogates (below)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=400)
@given(_values)
def test_the_same_bytes_as_json_dumps_for_any_value(value: object) -> None:
    assert wire.dumps(value) == _reference(value)


def test_an_item_like_value_and_the_special_floats() -> None:
    value = {
        "path": "Inbox/é 日本",
        "mtime": 1733312345.123456,
        "meta": {"z": [1, 2.5, None, True], "a": '\u2028"\\\n'},
        "odd": [math.nan, math.inf, -math.inf, -0.0, 1e300],
        "tuple": (1, "two"),
    }
    assert wire.dumps(value) == _reference(value)
    assert wire.dumps("plain") == b'"plain"'


def test_a_lone_surrogate_fails_to_encode_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        _reference({"name": "bad\udcff"})
    with pytest.raises(UnicodeEncodeError):
        wire.dumps({"name": "bad\udcff"})


def test_a_value_json_cannot_spell_is_the_same_type_error() -> None:
    with pytest.raises(TypeError) as reference:
        _reference({"x": object})
    with pytest.raises(TypeError) as ours:
        wire.dumps({"x": object})
    assert str(ours.value) == str(reference.value)


def test_no_encoder_is_made_per_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """``json.dumps`` with options made a ``JSONEncoder`` and a C encoder for every value (an
    item's JSON, for every item of a backup): none now, for N values or 4N."""
    made: list[int] = []
    real = json.encoder.c_make_encoder
    assert real is not None

    def counting(*args: object) -> object:
        made.append(1)
        return real(*args)

    monkeypatch.setattr(json.encoder, "c_make_encoder", counting)
    for count in (50, 200):
        for n in range(count):
            wire.dumps({"key": f"k{n}", "meta": {"n": n}, "chunks": []})
        assert made == []
