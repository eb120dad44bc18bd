"""XML of the Enterprise Manager dialect: safe parsing, schema validation, rendering, and JSON.

Safety first: a body is decoded (whatever its encoding, see ``xml_encoding``) and one with a
DOCTYPE is refused before any parser sees it; the parser reads exactly that decoded text, never
expands or fetches entities, and every request body must be a schema-valid document of the
expected root element in the ``http://www.veeam.com/ent/v1.0`` namespace. On the way out, every
element is built by ``element``, which replaces what XML cannot carry, so no stored text can make
a listing fail.
"""

from __future__ import annotations

import re
import threading
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from keepstone.api.em.xml_encoding import body_text
from keepstone.domain.errors import InvalidInput
from keepstone.domain.text import xml_safe

NS = "http://www.veeam.com/ent/v1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
SCHEMA_PATH = Path(__file__).with_name("RestAPI.xsd")
_DOCTYPE = re.compile("<!DOCTYPE|<!ENTITY", re.IGNORECASE)
# A body declared as JSON is a confused client; any other type (curl -d sends a form type,
# some scripts text/plain) is read as XML, as a lenient server would, and must still parse.
_JSON_MEDIA_TYPE = re.compile(r"^\s*application/([a-z0-9.+-]+\+)?json\s*(;|$)", re.IGNORECASE)
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
def _schema_document() -> etree._ElementTree:
    return etree.parse(str(SCHEMA_PATH))


_per_thread = threading.local()


def schema() -> etree.XMLSchema:
    """This thread's validator: one validator keeps the errors of its last run in its
    ``error_log``, so threads validating at once must not share it."""
    validator: etree.XMLSchema | None = getattr(_per_thread, "schema", None)
    if validator is None:
        validator = _per_thread.schema = etree.XMLSchema(_schema_document())
    return validator


def request_parser() -> etree.XMLParser:
    # The parser gets the text re-encoded as UTF-8 whatever the declaration says (encoding=).
    return etree.XMLParser(
        encoding="utf-8",
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )


def parse_body(body: bytes, root: str, content_type: str | None = None) -> etree._Element:
    """The request body as a schema-valid ``root`` element, or a 400 saying what is wrong."""
    if content_type and _JSON_MEDIA_TYPE.match(content_type):
        raise InvalidInput(
            f"the body must be XML (application/xml or text/xml), not {content_type}",
            "Content-Type",
        )
    text = body_text(body, content_type)
    if not text.strip():
        raise InvalidInput(f"a <{root}> XML body is required", "body")
    if _DOCTYPE.search(text):
        raise InvalidInput("XML bodies must not contain a DOCTYPE or entity declarations", "body")
    try:
        document = etree.fromstring(text.encode("utf-8"), request_parser())
    except etree.XMLSyntaxError as error:
        raise InvalidInput(f"the body is not well-formed XML: {error}", "body") from None
    _check_root(document, root)
    _check_schema(document)
    return document


def _check_root(document: etree._Element, root: str) -> None:
    expected = f"{{{NS}}}{root}"
    if document.tag != expected:
        raise InvalidInput(
            f"the body's root element must be <{root}> in the namespace {NS}; "
            f"got {etree.QName(document).text}",
            "body",
        )


def _check_schema(document: etree._Element) -> None:
    validator = schema()
    if not validator.validate(document):
        first = validator.error_log.filter_from_errors()[0]
        raise InvalidInput(
            f"the body does not conform to RestAPI.xsd: line {first.line}: {first.message}", "body"
        )


def element(
    name: str,
    attributes: dict[str, str] | None = None,
    *children: etree._Element | None,
    text: str | None = None,
) -> etree._Element:
    made = etree.Element(
        f"{{{NS}}}{name}",
        {k: xml_safe(v) for k, v in (attributes or {}).items()},
        nsmap={None: NS, "xsd": XSD, "xsi": XSI},
    )
    for child in children:
        if child is not None:
            made.append(child)
    if text is not None:
        made.text = xml_safe(text)
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
