"""XML of the Enterprise Manager dialect: safe parsing, schema validation, rendering, and JSON.

Safety first: a body with a DOCTYPE is refused before any parser sees it, entities are never
expanded or fetched, and every request body must be a schema-valid document of the expected
root element in the ``http://www.veeam.com/ent/v1.0`` namespace.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from keepstone.domain.errors import InvalidInput

NS = "http://www.veeam.com/ent/v1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
SCHEMA_PATH = Path(__file__).with_name("RestAPI.xsd")
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
# Elements holding a list of one kind of child become JSON arrays; the repeated children of a
# list document are gathered under a plural name (``<EntityReferences><Ref/>`` -> ``Refs``).
_CONTAINERS = {
    "Links",
    "SupportedVersions",
    "TimePeriods",
    "Schedule",
    "Refs",
    "Jobs",
    "BackupJobSessions",
    "Repositories",
    "BackupServers",
}
_PLURALS = {
    "Ref": "Refs",
    "Job": "Jobs",
    "Task": "Tasks",
    "LogonSession": "LogonSessions",
    "Days": "Days",
    "Months": "Months",
}


@cache
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )


def parse_body(body: bytes, root: str) -> etree._Element:
    """The request body as a schema-valid ``root`` element, or a 400 saying what is wrong."""
    if _DOCTYPE.search(body):
        raise InvalidInput("XML bodies must not contain a DOCTYPE or entity declarations", "body")
    if not body.strip():
        raise InvalidInput(f"a <{root}> XML body is required", "body")
    try:
        document = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as error:
        raise InvalidInput(f"the body is not well-formed XML: {error}", "body") from None
    expected = f"{{{NS}}}{root}"
    if document.tag != expected:
        raise InvalidInput(
            f"the body's root element must be <{root}> in the namespace {NS}; "
            f"got {etree.QName(document).text}",
            "body",
        )
    if not schema().validate(document):
        first = schema().error_log.filter_from_errors()[0]
        raise InvalidInput(
            f"the body does not conform to RestAPI.xsd: line {first.line}: {first.message}", "body"
        )
    return document


def element(
    name: str,
    attributes: dict[str, str] | None = None,
    *children: etree._Element | None,
    text: str | None = None,
) -> etree._Element:
    made = etree.Element(
        f"{{{NS}}}{name}",
        {k: v for k, v in (attributes or {}).items()},
        nsmap={None: NS, "xsd": XSD, "xsi": XSI},
    )
    for child in children:
        if child is not None:
            made.append(child)
    if text is not None:
        made.text = text
    return made


def child(name: str, text: str | None) -> etree._Element | None:
    """A simple text element, or nothing when there is no value."""
    return None if text is None else element(name, text=text)


def links(*entries: tuple[str, str, str | None]) -> etree._Element:
    """``<Links>`` of (rel, href, type) triples."""
    return element(
        "Links",
        None,
        *(
            element("Link", {"Rel": rel, "Href": href} | ({"Type": kind} if kind else {}))
            for rel, href, kind in entries
        ),
    )


def render(document: etree._Element) -> bytes:
    return etree.tostring(document, xml_declaration=True, encoding="utf-8")


def text_of(document: etree._Element, name: str) -> str | None:
    found = document.find(f"{{{NS}}}{name}")
    return None if found is None else (found.text or "")


def to_json(node: etree._Element) -> dict[str, Any]:
    """The JSON form clients get with ``Accept: application/json``: attributes and child
    elements as PascalCase properties, repeated elements (``Links`` entries, refs) as arrays."""
    result: dict[str, Any] = {k: v for k, v in node.attrib.items() if not k.startswith("{")}
    for item in node:
        if not isinstance(item.tag, str):
            continue
        name = etree.QName(item).localname
        if name in _CONTAINERS:
            result[name] = [to_json(entry) for entry in item if isinstance(entry.tag, str)]
            continue
        value: Any = to_json(item) if len(item) or item.attrib else (item.text or "")
        if name in _PLURALS:
            result.setdefault(_PLURALS[name], []).append(value)
        else:
            result[name] = value
    if node.text and node.text.strip() and len(node) == 0 and node.attrib:
        result["Value"] = node.text
    return result
