"""The JSON form of Enterprise Manager documents, read from the real RestAPI.xsd.

The shapes (which element repeats, which value is a number or a boolean) are checked on the
schema itself; the converter is checked on documents that validate against it, generated with
any number of items, and on what the schema does not describe.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from keepstone.api.em import json_document
from keepstone.api.em.json_form import ChildForm, Scalar, forms, plural
from keepstone.api.em.xml import element, links, schema, to_json
from tests.em.json_leaves import json_leaves, xml_leaves


def child_of(type_name: str, name: str) -> ChildForm:
    return forms().types[type_name].children[name]


def test_lists_and_repeated_elements_are_read_from_the_schema() -> None:
    types = forms().types
    assert types["LinkListType"].array_of == "Link"  # a bare wrapper: "Links" is the array
    assert child_of("LinkListType", "Link").complex == "LinkType"
    references = types["EntityReferenceListType"]  # extends ListType: an object with "Refs"
    assert references.array_of is None and child_of("EntityReferenceListType", "Ref").repeats
    period = child_of("RepositoryReportFrameType", "Period")  # repeated by its enclosing choice
    assert period.repeats and period.complex == "RepositoryReportFrameType/Period"
    assert child_of("RepositoryEntityListType", "Repository").repeats
    assert not child_of("QueryResultType", "Refs").repeats
    assert not child_of("EntitiesType", "BackupJobSessions").repeats
    assert forms().roots["EntityReferences"].complex == "EntityReferenceListType"


def test_simple_types_resolve_to_json_kinds() -> None:
    kinds: dict[tuple[str, str], Scalar] = {
        ("OverviewReportFrameType", "BackupServers"): "integer",
        ("BackupJobSessionEntityType", "IsRetry"): "boolean",
        ("BackupJobSessionEntityType", "CreationTimeUTC"): "string",  # DateTime
        ("BackupJobSessionEntityType", "JobUid"): "string",  # UidType
        ("RepositoryEntityType", "Capacity"): "integer",  # long
        ("RepositoryReportFrameType/Period", "FreeSpace"): "integer",
        ("JobStatisticsReportFrameType", "MaxJobDuration"): "integer",  # TimeSpan, an xs:int
    }
    for (type_name, name), kind in kinds.items():
        found = child_of(type_name, name)
        assert (found.complex, found.scalar, found.repeats) == (None, kind, False), name
    assert forms().types["PagingInfoType"].attributes["PageNum"] == "integer"
    assert forms().types["LinkType"].attributes == {
        "Href": "string",
        "Name": "string",
        "Type": "string",
        "Rel": "string",
    }
    day = forms().types["TimePeriodsType/Day"]  # text and an attribute
    assert (day.text, day.attributes) == ("string", {"Name": "string"})


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ref", "Refs"),
        ("Repository", "Repositories"),
        ("Day", "Days"),
        ("Days", "Days"),
        ("BackupJobSession", "BackupJobSessions"),
        ("DirectoryEntry", "DirectoryEntries"),
        ("Box", "Boxes"),
    ],
)
def test_plurals(name: str, expected: str) -> None:
    assert plural(name) == expected


def test_documents_convert_in_the_vendors_shape() -> None:
    week = element(
        "TimePeriods",
        None,
        *(element("Day", {"Name": day}, text="1,0," * 7 + "1,0,1") for day in ("Sunday", "Monday")),
    )
    job = element(
        "Job",
        {"Href": "https://h/api/jobs/1?format=Entity", "Name": "j", "UID": "urn:veeam:Job:1"},
        links(("Alternate", "https://h/api/jobs/1", "JobReference")),
        element("ScheduleEnabled", text="true"),
        element(
            "JobScheduleOptions",
            None,
            element("OptionsBackupWindow", {"Enabled": "false"}, week),
        ),
    )
    assert schema().validate(job), schema().error_log
    as_json = to_json(job)
    assert as_json["Links"] == [
        {"Rel": "Alternate", "Href": "https://h/api/jobs/1", "Type": "JobReference"}
    ]
    assert as_json["ScheduleEnabled"] is True
    window = as_json["JobScheduleOptions"]["OptionsBackupWindow"]
    assert window["Enabled"] is False
    assert [d["Name"] for d in window["TimePeriods"]["Days"]] == ["Sunday", "Monday"]
    assert window["TimePeriods"]["Days"][0]["Value"].startswith("1,0,1,0")

    empty = element("EntityReferences")
    assert to_json(empty) == {"Refs": []}  # an empty array, not a missing property
    overview = report("OverviewReportFrame", BackupServers="1", ProxyServers="many")
    assert to_json(overview)["BackupServers"] == 1
    assert to_json(overview)["ProxyServers"] == "many"  # unparsable: kept, never dropped


def report(root: str, **values: str) -> etree._Element:
    fields = (element(name, text=text) for name, text in values.items())
    return element(root, {"Href": "https://h/api/reports/summary/x"}, *fields)


def test_what_the_schema_does_not_describe_is_kept() -> None:
    later = etree.fromstring(
        '<VendorLater xmlns="http://www.veeam.com/ent/v1.0" Id="7">'
        '<Item Kind="a">x</Item><Item>y</Item><Single>z</Single><Empty/></VendorLater>'
    )
    assert to_json(later) == {
        "Id": "7",
        "Items": [{"Kind": "a", "Value": "x"}, "y"],
        "Single": "z",
        "Empty": "",
    }
    refs = element("EntityReferences", None, element("Extra", {"A": "1"}, element("Deep")))
    assert to_json(refs) == {"Refs": [], "Extra": {"A": "1", "Deep": ""}}
    grown = report("OverviewReportFrame", RunningJobs="2")
    grown.find("{*}RunningJobs").append(element("Detail", text="d"))  # type: ignore[union-attr]
    assert to_json(grown)["RunningJobs"] == {"Detail": "d"}
    assert to_json(element("Lonely", text="t")) == {"Value": "t"}


def test_numbers_json_cannot_carry_stay_text() -> None:
    for text in ("NaN", "INF", "-INF", "1e400"):
        assert json_document.scalar(text, "decimal") == text
    assert json_document.scalar("2.5", "decimal") == 2.5
    assert json_document.scalar("-9223372036854775808", "integer") == -(2**63)
    assert json_document.scalar("1_000", "integer") == "1_000"
    assert json_document.scalar("maybe", "boolean") == "maybe"


# Property: any number of items, any text, any longs: every value of a schema-valid document
# is in its JSON, and every list keeps all its items.
texts = st.text(max_size=12)
longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
guids = st.uuids().map(str)


def reference(name: str, guid: str, link_count: int) -> etree._Element:
    href = f"https://h/api/repositories/{guid}"
    return element(
        "Ref",
        {"UID": f"urn:veeam:Repository:{guid}", "Name": name, "Href": href, "Type": "Ref"},
        links(*(("Alternate", f"{href}?n={n}", "Repository") for n in range(link_count))),
    )


def repository(name: str, guid: str, sizes: tuple[int, int]) -> etree._Element:
    return element(
        "Repository",
        {"Href": f"https://h/{guid}", "Name": name, "UID": f"urn:veeam:Repository:{guid}"},
        element("Capacity", text=str(sizes[0])),
        element("FreeSpace", text=str(sizes[1])),
    )


@st.composite
def documents(draw: st.DrawFn) -> tuple[etree._Element, int, list[str]]:
    """A schema-valid list document, how many items it holds, and where they are in JSON."""
    count = draw(st.integers(min_value=0, max_value=6))
    names = draw(st.lists(texts, min_size=count, max_size=count))
    guid = draw(guids)
    kind = draw(st.sampled_from(["refs", "report", "query"]))
    if kind == "refs":
        links_each = draw(st.integers(min_value=0, max_value=3))
        items = (reference(name, guid, links_each) for name in names)
        return element("EntityReferences", None, *items), count, ["Refs"]
    sizes = draw(st.lists(st.tuples(longs, longs), min_size=count, max_size=count))
    if kind == "report":
        periods = (
            element(
                "Period",
                None,
                element("Name", text=name),
                *(
                    element(k, text=str(v))
                    for k, v in zip(("Capacity", "FreeSpace"), size, strict=True)
                ),
                element("BackupSize", text=str(size[0])),
            )
            for name, size in zip(names, sizes, strict=True)
        )
        return (
            element("RepositoryReportFrame", {"Href": "https://h/r"}, *periods),
            count,
            ["Periods"],
        )
    entities = (repository(n, guid, size) for n, size in zip(names, sizes, strict=True))
    paging = element("PagingInfo", {"PageNum": "1", "PageSize": "100", "PagesCount": "1"})
    document = element(
        "QueryResult",
        None,
        element("Entities", None, element("Repositories", None, *entities)),
        paging,
    )
    return document, count, ["Entities", "Repositories", "Repositories"]


def lookup(value: Any, path: list[str]) -> Any:
    for key in path:
        value = value[key]
    return value


@settings(max_examples=150, deadline=None)
@given(documents())
def test_no_value_of_a_valid_document_is_lost(case: tuple[etree._Element, int, list[str]]) -> None:
    document, count, path = case
    assert schema().validate(document), schema().error_log
    as_json = to_json(document)
    assert len(lookup(as_json, path)) == count
    assert json_leaves(as_json) == xml_leaves(document)


def sample_documents() -> Iterator[etree._Element]:
    """For every root element of the schema, a document holding every element its type
    declares, two of each repeated one, with distinct values typed as the schema says."""
    values = itertools.count(1)

    def value(kind: Scalar) -> str:
        n = next(values)
        return {"integer": str(n), "decimal": f"{n}.5", "boolean": ("true", "false")[n % 2]}.get(
            kind, f"v{n}"
        )

    def build(name: str, child: ChildForm, depth: int) -> etree._Element:
        if child.complex is None:
            return element(name, text=value(child.scalar))
        form = forms().types[child.complex]
        made = element(name, {k: value(kind) for k, kind in form.attributes.items()})
        if form.text is not None:
            made.text = value(form.text)
        if depth < 4:
            for part, grand in form.children.items():
                for _ in range(2 if grand.repeats else 1):
                    made.append(build(part, grand, depth + 1))
        return made

    for root, child in forms().roots.items():
        yield build(root, child, 0)


def test_every_root_of_the_schema_converts_without_loss() -> None:
    converted = 0
    for document in sample_documents():
        assert json_leaves(to_json(document)) == xml_leaves(document), document.tag
        converted += 1
    assert converted == len(forms().roots) > 100


def conversion_calls(item_count: int) -> int:
    """How many functions of the converter run for a list of ``item_count`` references."""
    document = element(
        "EntityReferences", None, *(reference(f"r{n}", "x", 2) for n in range(item_count))
    )
    calls = 0
    source = json_document.__file__

    def count(frame: FrameType, event: str, _: Any) -> None:
        nonlocal calls
        if event == "call" and frame.f_code.co_filename == source:
            calls += 1

    forms()  # built beforehand: only the conversion is counted
    sys.setprofile(count)
    try:
        to_json(document)
    finally:
        sys.setprofile(None)
    return calls


def test_conversion_work_grows_linearly() -> None:
    one, two, four = (conversion_calls(n) for n in (50, 100, 200))
    assert four - two == 2 * (two - one) > 0  # the same work per item, whatever the size
