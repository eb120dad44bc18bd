"""The parse of a JSON body (api.inputs.load_json) and the case fold of its property names
(api.vb365.bodies): what they make, and that the seed PUT's plain case makes nothing twice."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepstone.api import inputs
from keepstone.api.vb365.bodies import (
    JobBody,
    PropertyNames,
    SchedulePolicyBody,
    fold_property_case,
)
from keepstone.domain.errors import InvalidInput


def reference_fold(names: list[str], data: Any) -> Any:
    """The fold as it was first written: every key lower-cased and looked up, a new dict."""
    if not isinstance(data, dict):
        return data
    aliases = {name.lower(): name for name in names}
    return {aliases.get(k.lower(), k) if isinstance(k, str) else k: v for k, v in data.items()}


NAMES = st.lists(st.sampled_from(["name", "isEnabled", "backupType", "id", "ÄBC", "ǅx"]))


def spellings(names: list[str]) -> st.SearchStrategy[str]:
    """A property's name as sent: as declared, in another case, or another key altogether."""
    spelled = st.sampled_from(names) if names else st.just("name")
    return st.one_of(
        spelled,
        spelled.map(str.upper),
        spelled.map(str.lower),
        spelled.map(str.swapcase),
        st.text(max_size=6),
    )


@given(st.data())
def test_the_fold_is_the_reference_fold(data: st.DataObject) -> None:
    names = data.draw(NAMES)
    keys = data.draw(st.lists(st.one_of(spellings(names), st.integers()), max_size=8))
    body = {key: n for n, key in enumerate(keys)}
    folded = fold_property_case(PropertyNames.of(names), body)
    expected = reference_fold(names, body)
    assert folded == expected
    assert list(folded) == list(expected)  # the same order too


@pytest.mark.parametrize("value", [None, 3, "text", [{"Name": 1}]])
def test_the_fold_leaves_what_is_not_an_object(value: Any) -> None:
    assert fold_property_case(PropertyNames.of(["name"]), value) is value


def test_documented_spellings_are_not_copied() -> None:
    body = {"name": "a", "isEnabled": True, "lastRun": "2017-06-06T15:18:22Z"}
    assert JobBody._fold_property_case(body) is body
    policy = {"type": "Daily", "retryNumber": 3}
    assert SchedulePolicyBody._fold_property_case(policy) is policy


def test_another_case_is_folded_beside_documented_spellings() -> None:
    body = {"name": "a", "ISENABLED": False, "isRun": True, "IsRun": False}
    assert JobBody._fold_property_case(body) == {"name": "a", "isEnabled": False, "isRun": False}


def test_the_parse_makes_one_decoder_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """json.loads with hooks makes a decoder for every body; load_json keeps its thread's."""
    made = []

    class Counted(json.JSONDecoder):
        def __init__(self, **options: Any) -> None:
            made.append(options)
            super().__init__(**options)

    monkeypatch.setattr(json, "JSONDecoder", Counted)
    values = []

    def parse() -> None:
        values.extend(inputs.load_json(b'{"a": [1, 2.5, "x"]}') for _ in range(3))

    worker = threading.Thread(target=parse)  # a thread of its own: it has no decoder yet
    worker.start()
    worker.join()
    assert values == [{"a": [1, 2.5, "x"]}] * 3
    assert len(made) == 1


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ('{"a": [1, 99999999999999999999]}', "a[1]"),
        ('{"b": {"c": 1e400}}', "b.c"),
        ('{"d": NaN}', "d"),
        ('{"e": -Infinity}', "e"),
    ],
)
def test_numbers_are_refused_between_good_bodies(text: str, place: str) -> None:
    """What one parse refused neither leaks into the next nor is forgotten by a later one."""
    assert inputs.load_json(b'{"ok": 12}') == {"ok": 12}
    with pytest.raises(InvalidInput) as refused:
        inputs.load_json(text.encode())
    assert refused.value.prop == place
    assert inputs.load_json(b'{"ok": 9223372036854775807}') == {"ok": 2**63 - 1}


# ---- commas before closing brackets, as Json.NET reads them ----------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def with_trailing_commas(value: Any) -> str:
    """``value`` as JSON with a comma (and some space) before every non-empty closing bracket."""
    if isinstance(value, list) and value:
        return "[" + "".join(f"{with_trailing_commas(v)}, " for v in value) + " ]"
    if isinstance(value, dict) and value:
        pairs = (f"{json.dumps(k)}: {with_trailing_commas(v)},\n" for k, v in value.items())
        return "{" + "".join(pairs) + "}"
    return json.dumps(value)


@given(JSON_VALUES)
def test_trailing_commas_are_read_as_nothing(value: Any) -> None:
    assert inputs.load_json(with_trailing_commas(value).encode()) == value


@given(JSON_VALUES)
def test_strict_json_is_read_as_it_was_and_its_strings_untouched(value: Any) -> None:
    text = json.dumps(value)
    assert inputs.without_trailing_commas(text) == text or "," in text
    assert inputs.load_json(text.encode()) == value


@pytest.mark.parametrize(
    "text",
    ['{"a": 1,,}', "[,]", '{"a": 1, // note\n}', "{'a': 1}", '{"a": ",]"'],
)
def test_other_broken_json_stays_broken(text: str) -> None:
    with pytest.raises(ValueError):
        inputs.load_json(text.encode())


def test_a_comma_inside_a_string_is_kept() -> None:
    assert inputs.load_json(b'{"a": "x, ]", "b": ["y",],}') == {"a": "x, ]", "b": ["y"]}
