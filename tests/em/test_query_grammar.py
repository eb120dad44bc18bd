"""The query service's filter grammar."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keepstone.api.em.query import parse_filter, sort_key
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


@given(st.text(max_size=40))
def test_any_text_either_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        predicate = parse_filter(text)
    except InvalidInput:
        return
    for row in ROWS:
        assert predicate(row) in (True, False)


def test_sorting_by_number_date_and_text() -> None:
    assert [r["name"] for r in sorted(ROWS, key=sort_key("Progress"))] == [
        'Say "hi"',
        "Weekly files",
        "Nightly mail",
    ]
    assert [r["progress"] for r in sorted(ROWS, key=sort_key("creationTime"))] == [7, 100, 40]
