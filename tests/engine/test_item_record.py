"""``Item.record`` writes an item's canonical JSON by orjson where orjson spells it as the
format does, and by ``wire.dumps`` everywhere else: the same bytes, or the same error, for any
item."""

from __future__ import annotations

import math
import tracemalloc

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keepstone.engine import model, wire
from keepstone.engine.model import ITEM_KINDS, Item

_text = st.text() | st.sampled_from(["bad\udcff", '\u2028"\\\n\x00\x1f\x7f', "é 日本 😀"])
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([9.999e-05, 1e-07, 1e22, math.nan])  # floats orjson spells otherwise
    | _text
)
_meta_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_items = st.builds(
    Item,
    key=_text,
    user=_text,
    kind=st.sampled_from(ITEM_KINDS),
    path=_text,
    size=st.integers(min_value=-(2**70), max_value=2**70),
    mtime=st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.sampled_from([9.999e-05, 1e-07, 1e16, 1e22, -0.0, 1733312345.123456]),
    mode=st.integers(min_value=-(2**70), max_value=2**70),
    meta=st.dictionaries(_text, _meta_values, max_size=6),
    chunks=st.lists(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)).map(tuple),
)


def _outcome(make: object) -> bytes | type[BaseException]:
    try:
        return make()  # type: ignore[operator, no-any-return]
    except (UnicodeEncodeError, TypeError, ValueError, OverflowError) as error:
        return type(error)


@settings(max_examples=600)
@given(_items)
def test_the_same_bytes_as_wire_dumps_for_any_item(item: Item) -> None:
    assert _outcome(item.record) == _outcome(lambda: wire.dumps(item.to_json()))


@settings(max_examples=2000)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_orjson_spells_the_floats_it_is_given_as_python_does(value: float) -> None:
    """What ``_fast_record`` relies on for ``mtime``: from 1e-4 up (and zero), orjson's
    spelling of a float is Python's repr, which is ``json``'s."""
    if value == 0.0 or abs(value) >= model._SMALLEST_ALIKE:
        assert orjson.dumps(value) == repr(value).encode()


def _mail(**changes: object) -> Item:
    fields: dict[str, object] = {
        "key": "alice/Mail/INBOX/1",
        "user": "alice",
        "kind": "mail",
        "path": "Mail/INBOX",
        "size": 1234,
        "mtime": 1733312345.123456,
        "mode": 0o600,
        "meta": {"subject": 'Hello \u2028 "you"', "from": "Bob <bob@example.test>", "n": 3},
        "chunks": ("ab" * 32, "cd" * 32),
    }
    return Item(**(fields | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"mtime": 0.0},
        {"mtime": 1733312345},  # an integer mtime is written as a float, as to_json does
        {"mtime": 1e-4},  # the smallest that orjson spells as Python's repr does
        {"mtime": -1e16},
        {"meta": {}, "chunks": ()},
        {"meta": {"nested": {"b": [1, None, True], "a": "x"}}},
    ],
)
def test_an_ordinary_item_takes_orjson(changes: dict[str, object]) -> None:
    item = _mail(**changes)
    assert model._fast_record(item) == wire.dumps(item.to_json())


@pytest.mark.parametrize(
    "changes",
    [
        {"mtime": math.nan},
        {"mtime": math.inf},
        {"mtime": 9.999e-05},  # orjson: 0.00009999
        {"meta": {"score": 0.5}},
        {"meta": {"deep": [{"x": 1e-7}]}},
        {"meta": {1: "a non-string key"}},
        {"size": 2**70},
        {"path": "bad\udcff"},
        {"path": 1e-07},  # not the declared type: orjson would spell it 1e-7
        {"chunks": (1e-07,)},
    ],
)
def test_what_orjson_could_spell_otherwise_takes_wire_dumps(changes: dict[str, object]) -> None:
    item = _mail(**changes)
    assert model._fast_record(item) is None
    assert _outcome(item.record) == _outcome(lambda: wire.dumps(item.to_json()))


def test_a_record_holds_only_its_bytes() -> None:
    """orjson's bytes keep the buffer it wrote into (8 KiB for a record of a few hundred
    bytes); a run holds thousands of records at once, so each is a copy of its own size."""
    items = [_mail(key=f"alice/Mail/INBOX/{n}") for n in range(2000)]
    tracemalloc.start()
    try:
        records = [item.record() for item in items]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = len(records[0])
    assert held < len(records) * (size + 200)
