"""XML of the Enterprise Manager dialect: safe parsing, schema validation and rendering.

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

from lxml import etree

# ``to_json`` lives in its own module and is re-exported: callers keep importing it here.
from keepstone.api.em.json_document import to_json as to_json
from keepstone.api.em.xml_encoding import body_text
from keepstone.api.em.xsd import NS as NS
from keepstone.api.em.xsd import SCHEMA_PATH as SCHEMA_PATH
from keepstone.api.em.xsd import XSD as XSD
from keepstone.api.em.xsd import schema_document
from keepstone.domain.errors import InvalidInput
from keepstone.domain.text import xml_safe

XSI = "http://www.w3.org/2001/XMLSchema-instance"
_DOCTYPE = re.compile("<!DOCTYPE|<!ENTITY", re.IGNORECASE)
# A body declared as JSON is a confused client; any other type (curl -d sends a form type,
# some scripts text/plain) is read as XML, as a lenient server would, and must still parse.
_JSON_MEDIA_TYPE = re.compile(r"^\s*application/([a-z0-9.+-]+\+)?json\s*(;|$)", re.IGNORECASE)


_per_thread = threading.local()


def schema() -> etree.XMLSchema:
    """This thread's validator: one validator keeps the errors of its last run in its
    ``error_log``, so threads validating at once must not share it."""
    validator: etree.XMLSchema | None = getattr(_per_thread, "schema", None)
    if validator is None:
        validator = _per_thread.schema = etree.XMLSchema(schema_document())
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


NAMESPACES: dict[str | None, str] = {None: NS, "xsd": XSD, "xsi": XSI}


def element(
    name: str,
    attributes: dict[str, str] | None = None,
    *children: etree._Element | None,
    text: str | None = None,
) -> etree._Element:
    made = etree.Element(
        f"{{{NS}}}{name}",
        {k: xml_safe(v) for k, v in (attributes or {}).items()},
        nsmap=NAMESPACES,
    )
    for child in children:
        if child is not None:
            made.append(child)
    if text is not None:
        made.text = xml_safe(text)
    return made


def sub_element(parent: etree._Element, name: str, attributes: dict[str, str]) -> etree._Element:
    """``element`` made inside ``parent``: a child made apart is a document of its own, and
    appending it moves it into the parent's (lxml walks it again to reconcile its namespaces),
    about half of building a long list of small elements."""
    return etree.SubElement(
        parent, f"{{{NS}}}{name}", {k: xml_safe(v) for k, v in attributes.items()}
    )


def element_in(
    parent: etree._Element | None,
    name: str,
    attributes: dict[str, str] | None = None,
    text: str | None = None,
) -> etree._Element:
    """``element`` (without children) made inside ``parent`` when there is one (see
    ``sub_element``), else a document of its own: a builder that takes a parent serves a
    single answer and a long list alike."""
    made = (
        element(name, attributes) if parent is None else sub_element(parent, name, attributes or {})
    )
    if text is not None:
        made.text = xml_safe(text)
    return made


def child_in(parent: etree._Element, name: str, text: str | None) -> None:
    """``child`` made inside ``parent``."""
    if text is not None:
        element_in(parent, name, text=text)


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
