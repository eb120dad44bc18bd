"""The JSON an Enterprise Manager answer must carry, worked out from its XML answer and RestAPI.xsd
by ``xmlschema``: independent of the app's own converter (``keepstone.api.em``), so a test can
hold the two against each other.

The vendor's JSON is its .NET data contracts serialized (pages representation_collections.html
and resource_representation_for_ke.html of helpcenter.veeam.com/docs/vbr/em_rest/, and the
query results ``Entities.BackupJobSessions.BackupJobSessions[]`` the issue quotes):

- the root element disappears: its attributes and children are the top object's properties;
- an attribute or a child element that cannot repeat is a property of its own name;
- a child element the schema lets repeat (``xmlschema``: not ``is_single()``) is an array named by
  its plural (``Ref`` -> ``Refs``, ``Repository`` -> ``Repositories``), an array even for one;
- a type that is nothing but one repeating child (no attributes, no base type: ``LinkListType``)
  is that array itself (``"Links": [...]``);
- text beside attributes is ``Value``;
- xsd integer and decimal types are JSON numbers, ``xsd:boolean`` is ``true``/``false``, anything
  else a string.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import xmlschema
from lxml import etree
from xmlschema.validators import XsdComplexType, XsdElement, XsdSimpleType, XsdType

from keepstone.api.em.xml import NS

XSD_PATH = "src/keepstone/api/em/RestAPI.xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"
INTEGERS = frozenset(
    [
        "integer",
        "long",
        "int",
        "short",
        "byte",
        "unsignedLong",
        "unsignedInt",
        "unsignedShort",
        "unsignedByte",
        "nonNegativeInteger",
        "positiveInteger",
        "negativeInteger",
        "nonPositiveInteger",
    ]
)
DECIMALS = frozenset({"decimal", "double", "float"})
# Measured anew at every request (a file system's free bytes change between the XML and the JSON
# request on a busy machine): compared by JSON type, not value.
VOLATILE = frozenset({"FreeSpace"})


@functools.cache
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(Path(__file__).resolve().parents[2] / XSD_PATH))


def declared(document: etree._Element) -> bool:
    """Whether the schema declares the document's root element."""
    return etree.QName(document).namespace == NS and _local(document.tag) in schema().elements


def validate(document: etree._Element) -> None:
    """Raise ``xmlschema.XMLSchemaValidationError`` when the document breaks the schema."""
    schema().validate(etree.tostring(document).decode())


def plural(name: str) -> str:
    if name.endswith("s"):
        return name
    if name.endswith("y") and name[-2:-1] not in ("a", "e", "i", "o", "u"):
        return name[:-1] + "ies"
    if name.endswith(("x", "ch", "sh")):
        return name + "es"
    return name + "s"


def expected_json(document: etree._Element) -> Any:
    """The JSON form of a document whose root the schema declares."""
    return _value(document, schema().elements[_local(document.tag)])


def repeating_paths(document: etree._Element) -> Iterator[str]:
    """The JSON paths (``Refs``, ``Refs[].Links``) the schema makes arrays, for messages."""
    yield from _arrays(expected_json(document), "")


def _arrays(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, list):
        yield path
        for item in value:
            yield from _arrays(item, path + "[]")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _arrays(item, f"{path}.{key}" if path else key)


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _value(node: etree._Element, declaration: XsdElement) -> Any:
    kind = declaration.type
    if kind.is_simple():
        return _scalar(node.text or "", kind)
    assert isinstance(kind, XsdComplexType)
    if _is_bare_list(kind):
        [only] = _elements(kind)
        return [_value(child, only) for child in node if _local(child.tag) == only.local_name]
    result: dict[str, Any] = {}
    for name, text in node.attrib.items():
        if str(name).startswith("{"):
            continue  # xsi:type, xsi:nil: XML instance machinery, not data
        attribute = kind.attributes.get(name)
        known = attribute.type if attribute is not None else None
        result[str(name)] = text if known is None else _scalar(text, known)
    if isinstance(kind.content, XsdSimpleType):
        result["Value"] = _scalar(node.text or "", kind.content)
        return result
    children = {element.local_name: element for element in _elements(kind)}
    for child in node:
        if not isinstance(child.tag, str):
            continue  # comments
        name = _local(child.tag)
        child_declaration = children.get(name)
        if child_declaration is None:  # not in the schema: validation reports it
            result[name] = child.text
            continue
        value = _value(child, child_declaration)
        if child_declaration.is_single():
            result[name] = value
        else:
            result.setdefault(plural(name), []).append(value)
    return result


def _is_bare_list(kind: XsdComplexType) -> bool:
    if kind.attributes or kind.has_simple_content() or _derived(kind):
        return False
    elements = _elements(kind)
    return len(elements) == 1 and not elements[0].is_single()


def _elements(kind: XsdComplexType) -> list[XsdElement]:
    """The element declarations of a complex type's content model (its base type's too)."""
    if isinstance(kind.content, XsdSimpleType):
        return []
    return [e for e in kind.content.iter_elements() if isinstance(e, XsdElement)]


def _derived(kind: XsdComplexType) -> bool:
    base = kind.base_type
    return base is not None and _local(base.name or "") != "anyType"


def _scalar(text: str, kind: XsdType) -> Any:
    builtin = _builtin(kind)
    if builtin in INTEGERS:
        return int(text)
    if builtin in DECIMALS:
        return float(text)
    if builtin == "boolean":
        return text.strip() in ("true", "1")
    return text


def _builtin(kind: XsdType | None) -> str:
    """The local name of the first built-in xsd type among ``kind`` and its bases."""
    while kind is not None:
        name = kind.name or ""
        if name.startswith(XS):
            return _local(name)
        kind = getattr(kind, "base_type", None)
    return "string"


def differences(expected: Any, got: Any, path: str = "") -> Iterator[str]:
    """Where ``got`` (the server's JSON) differs from ``expected``: a missing or extra property,
    a scalar of another JSON type or value, an object where an array belongs. A repeating child
    that is absent from the XML may be absent or ``[]`` in the JSON."""
    where = path or "(root)"
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            yield f"{where}: expected an object, got {_json_type(got)} {got!r:.80}"
            return
        for key, value in expected.items():
            if key not in got:
                yield f"{where}: property {key!r} missing"
            elif key in VOLATILE:
                yield from _same_type(value, got[key], f"{path}.{key}" if path else key)
            else:
                yield from differences(value, got[key], f"{path}.{key}" if path else key)
        for key in got.keys() - expected.keys():
            if got[key] != []:
                yield f"{where}: unexpected property {key!r}"
    elif isinstance(expected, list):
        if not isinstance(got, list):
            yield f"{where}: expected an array, got {_json_type(got)} {got!r:.80}"
            return
        if len(got) != len(expected):
            yield f"{where}: {len(got)} items, the XML has {len(expected)}"
        for index, (want, have) in enumerate(zip(expected, got, strict=False)):
            yield from differences(want, have, f"{path}[{index}]")
    elif _json_type(expected) != _json_type(got) or expected != got:
        want, have = f"{_json_type(expected)} {expected!r:.80}", f"{_json_type(got)} {got!r:.80}"
        yield f"{where}: expected {want}, got {have}"


def _same_type(expected: Any, got: Any, path: str) -> Iterator[str]:
    if _json_type(expected) != _json_type(got):
        yield f"{path}: expected a {_json_type(expected)}, got {_json_type(got)} {got!r:.80}"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"
