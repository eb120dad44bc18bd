"""An Enterprise Manager document in the JSON form clients get with ``Accept: application/json``.

The document is walked once together with its schema type (``json_form``), from the global
element of its root: every element is visited once, so the work is linear in its size. What the
schema does not describe (an element Keepstone renders that the shipped XSD lacks) is still
converted, generically: attributes and text as strings, repeated siblings as an array. Nothing
the XML carries is dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any

from lxml import etree

from keepstone.api.em.json_form import ChildForm, Forms, Scalar, TypeForm, forms, plural

_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def to_json(node: etree._Element) -> dict[str, Any]:
    """The JSON object of a rendered document (its root element's properties)."""
    shapes = forms()
    root = shapes.roots.get(etree.QName(node).localname)
    if root is None or root.complex is None:
        return _as_object(_generic(node))
    return _object(node, shapes.types[root.complex], shapes)


def _object(node: etree._Element, form: TypeForm, shapes: Forms) -> dict[str, Any]:
    result: dict[str, Any] = {
        name: scalar(value, form.attributes.get(name, "string"))
        for name, value in _attributes(node).items()
    }
    for name in form.repeated:
        result[plural(name)] = []
    undescribed: list[etree._Element] = []
    for item in _elements(node):
        name = etree.QName(item).localname
        child = form.children.get(name)
        if child is None:
            undescribed.append(item)
        elif child.repeats:
            result[plural(name)].append(_value(item, child, shapes))
        else:
            result[name] = _value(item, child, shapes)
    result.update(_grouped(undescribed))
    text = (node.text or "").strip()
    if form.text is not None or (text and not len(node)):
        result["Value"] = scalar(node.text or "", form.text or "string")
    return result


def _value(node: etree._Element, child: ChildForm, shapes: Forms) -> Any:
    if child.complex is None:
        if len(node) or _attributes(node):  # the schema says text; keep all that is there
            return _generic(node)
        return scalar(node.text or "", child.scalar)
    form = shapes.types[child.complex]
    item = form.array_of
    if item is None:
        return _object(node, form, shapes)
    entry = form.children[item]
    return [
        _value(part, entry, shapes) if etree.QName(part).localname == item else _generic(part)
        for part in _elements(node)
    ]


def scalar(text: str, kind: Scalar) -> Any:
    """A simple value as JSON: numbers and booleans typed, anything unparsable kept as text."""
    if kind == "integer" and _INTEGER.fullmatch(text):
        return int(text)
    if kind == "decimal":
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text  # JSON has no NaN or Infinity
    if kind == "boolean":
        return _BOOLEANS.get(text.strip(), text)
    return text


def _generic(node: etree._Element) -> Any:
    """An element the schema does not describe: text, or an object of what it holds."""
    attributes = _attributes(node)
    children = list(_elements(node))
    if not children and not attributes:
        return node.text or ""
    result: dict[str, Any] = dict(attributes) | _grouped(children)
    if (node.text or "").strip() and not children:
        result["Value"] = node.text
    return result


def _grouped(nodes: list[etree._Element]) -> dict[str, Any]:
    """Siblings by name: one as a property, several as an array under the plural."""
    by_name: dict[str, list[Any]] = {}
    for node in nodes:
        by_name.setdefault(etree.QName(node).localname, []).append(_generic(node))
    return {
        name if len(values) == 1 else plural(name): values[0] if len(values) == 1 else values
        for name, values in by_name.items()
    }


def _as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {"Value": value}


def _attributes(node: etree._Element) -> dict[str, str]:
    # Namespaced attributes (xsi:…) are XML machinery, not properties.
    return {str(k): v for k, v in node.attrib.items() if not str(k).startswith("{")}


def _elements(node: etree._Element) -> list[etree._Element]:
    return [item for item in node if isinstance(item.tag, str)]
