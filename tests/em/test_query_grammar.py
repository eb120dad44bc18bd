"""The query service's filter grammar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keepstone.api.em.query import MAX_NESTING, parse_filter, sort_key
from keepstone.api.vb365.versions import iso
from keepstone.domain.errors import InvalidInput

ROWS = [
    {
        "name": "Nightly mail",
        "jobtype": "Backup",
        "result": "Success",
        "progress": 100,
        "creationtime": "2026-06-10T10:00:00Z",
        "scheduleenabled": "true",
    },
    {
        "name": "Weekly files",
        "jobtype": "Backup",
        "result": "Failed",
        "progress": 40,
        "creationtime": "2026-06-11T10:00:00Z",
        "scheduleenabled": "false",
    },
    {
        "name": 'Say "hi"',
        "jobtype": "BackupCopy",
        "result": "Warning",
        "progress": 7,
        "creationtime": "2026-06-09T10:00:00Z",
        "scheduleenabled": "true",
    },
]


def matching(text: str) -> list[str]:
    predicate = parse_filter(text)
    return [row["name"] for row in ROWS if predicate(row)]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("jobtype==backup", ["Nightly mail", "Weekly files"]),
        ("JobType==Backup;Result==Failed", ["Weekly files"]),
        ("result==failed,result==warning", ["Weekly files", 'Say "hi"']),
        ("(result==failed,result==warning);jobtype==backupcopy", ['Say "hi"']),
        ('name=="Nightly mail"', ["Nightly mail"]),
        ('name=="Say ""hi"""', ['Say "hi"']),
        ('name!="Nightly mail"', ["Weekly files", 'Say "hi"']),
        ("progress>=40", ["Nightly mail", "Weekly files"]),
        ("progress<40", ['Say "hi"']),
        ("result>success", ["Weekly files", 'Say "hi"']),  # by order: Success < Warning < Failed
        ("result<=warning", ["Nightly mail", 'Say "hi"']),
        ("creationtime>2026-06-09T12:00:00Z", ["Nightly mail", "Weekly files"]),
        ("scheduleenabled==TRUE", ["Nightly mail", 'Say "hi"']),
        ("nosuchfield==x", []),
        (" jobtype == backup ; progress > 50 ", ["Nightly mail"]),
    ],
)
def test_filters(text: str, names: list[str]) -> None:
    assert matching(text) == names


@pytest.mark.parametrize(
    "text",
    [
        "",
        "name",
        "name==",
        "==x",
        "(name==x",
        "name==x)",
        "name==x;",
        "name=x",
        'name=="open',
        "a==b,,c==d",
        "name~x",
    ],
)
def test_malformed_filters_are_400(text: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_filter(text)
    assert raised.value.prop == "filter"


def parsed_or_refused(text: str) -> None:
    """The grammar's only failure is its own InvalidInput naming ``filter``: any other exception
    (RecursionError, TypeError, ...) escapes this and fails the test."""
    try:
        predicate = parse_filter(text)
    except InvalidInput as refused:
        assert refused.prop == "filter"
        return
    for row in ROWS:
        assert predicate(row) in (True, False)


GRAMMAR_PIECES = st.sampled_from(
    ["(", ")", ",", ";", "==", "!=", ">=", "<=", ">", "<", '"', '""', " ", "name", "progress",
     "creationtime", "result", "40", "2026-06-10T10:00:00Z", "2026-06-10", "-1e999", "nan",
     "success", "\x00", "\ud800", "\U0010ffff", "x" * 300]
)  # fmt: skip


@given(st.text(max_size=40))
def test_any_text_either_parses_or_is_refused_cleanly(text: str) -> None:
    parsed_or_refused(text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(GRAMMAR_PIECES, max_size=400).map("".join))
def test_any_sequence_of_grammar_pieces_either_parses_or_is_refused_cleanly(text: str) -> None:
    parsed_or_refused(text)


@settings(max_examples=60)
@given(
    depth=st.integers(min_value=0, max_value=5000),
    inner=st.sampled_from(["name==x", "", "name==x,progress>1", "(", ")"]),
    closing=st.booleans(),
)
def test_any_nesting_either_parses_or_is_refused_cleanly(
    depth: int, inner: str, closing: bool
) -> None:
    parsed_or_refused("(" * depth + inner + (")" * depth if closing else ""))


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 400, 100_000])
def test_nesting_beyond_the_limit_is_a_400_naming_filter(depth: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_filter("(" * depth + "name==x" + ")" * depth)
    assert raised.value.prop == "filter"
    assert f"more than {MAX_NESTING} levels" in raised.value.message


def test_nesting_up_to_the_limit_parses() -> None:
    nested = "(" * MAX_NESTING + "result==failed" + ")" * MAX_NESTING
    assert [row["name"] for row in ROWS if parse_filter(nested)(row)] == ["Weekly files"]
    siblings = ";".join(["(" * MAX_NESTING + "jobtype==backup" + ")" * MAX_NESTING] * 50)
    assert [row["name"] for row in ROWS if parse_filter(siblings)(row)] == [
        "Nightly mail",
        "Weekly files",
    ]


def test_a_long_flat_filter_parses() -> None:
    text = ",".join(f"progress=={n}" for n in range(20_000))
    assert [row["name"] for row in ROWS if parse_filter(text)(row)] == [
        "Nightly mail",
        "Weekly files",
        'Say "hi"',
    ]


def test_sorting_by_number_date_and_text() -> None:
    assert [r["name"] for r in sorted(ROWS, key=sort_key("Progress"))] == [
        'Say "hi"',
        "Weekly files",
        "Nightly mail",
    ]
    assert [r["progress"] for r in sorted(ROWS, key=sort_key("creationTime"))] == [7, 100, 40]


MIXED = [
    "2026-06-10",  # a date without an offset
    "2026-06-10T09:00:00Z",
    "2026-06-10T10:00:00+02:00",  # 08:00 UTC
    "0001-01-01T00:00:00+14:00",  # before the smallest datetime once in UTC
    "9999-12-31T23:59:59-14:00",  # after the largest one
    None,
    "",
    "someday",
    7,
    2.5,
    "nan",
    "inf",
    True,
]


@pytest.mark.parametrize("field", ["creationTime", "Result", "nosuchfield"])
def test_sorting_mixed_values_is_a_total_order_that_never_raises(field: str) -> None:
    key = sort_key(field)
    keys = [key({field.lower(): value}) for value in MIXED]
    for a in keys:  # trichotomy: any two keys compare, in exactly one way
        for b in keys:
            assert [a < b, a == b, a > b].count(True) == 1, (a, b)


def test_mixed_dates_sort_by_the_instant_numbers_first_then_dates_then_text() -> None:
    rows = [{"t": value} for value in MIXED]
    order = [row["t"] for row in sorted(rows, key=sort_key("t"))]
    assert order[:2] == [2.5, 7]
    assert order[2:7] == [
        "0001-01-01T00:00:00+14:00",
        "2026-06-10",
        "2026-06-10T10:00:00+02:00",
        "2026-06-10T09:00:00Z",
        "9999-12-31T23:59:59-14:00",
    ]


ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.datetimes(timezones=st.sampled_from([None, UTC])).map(str),
    st.dates().map(str),
)


@given(st.lists(ANY_VALUE, max_size=30))
def test_sorting_any_values_never_raises(values: list[object]) -> None:
    rows = [{"v": value} for value in values]
    assert len(sorted(rows, key=sort_key("v"))) == len(values)


ZONELESS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
INSTANTS = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9000, 1, 1))


@given(INSTANTS, INSTANTS, st.sampled_from(ZONELESS), st.sampled_from([">=", "<", "=="]))
def test_a_date_without_a_zone_is_utc(
    row_time: datetime, wanted: datetime, layout: str, operator: str
) -> None:
    """Issue 11: a filter date without a zone (``CreationTime>=2026-12-01T16:37:22``) means UTC,
    against rows written as the API writes them (UTC with ``Z``, seven fraction digits)."""
    text = wanted.strftime(layout)
    row = iso(row_time.replace(tzinfo=UTC))
    meant = datetime.strptime(text, layout)
    expected = {">=": row_time >= meant, "<": row_time < meant, "==": row_time == meant}
    assert (
        parse_filter(f"CreationTime{operator}{text}")({"creationtime": row}) is expected[operator]
    )
