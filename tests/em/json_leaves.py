"""Every value a document carries, in XML and in JSON, to check that a conversion lost nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lxml import etree


def xml_leaves(node: etree._Element) -> Counter[str]:
    """Attribute values and the texts of elements without child elements (blank values aside)."""
    found: Counter[str] = Counter()
    for item in node.iter():
        if not isinstance(item.tag, str):
            continue
        found.update(v for k, v in item.attrib.items() if not str(k).startswith("{") and v.strip())
        has_children = any(isinstance(part.tag, str) for part in item)
        if not has_children and (item.text or "").strip():
            found[item.text or ""] += 1
    return found


def json_leaves(value: Any) -> Counter[str]:
    """The scalars of a JSON value, written as XML writes them (blank strings aside)."""
    found: Counter[str] = Counter()
    if isinstance(value, dict):
        for part in value.values():
            found.update(json_leaves(part))
    elif isinstance(value, list):
        for part in value:
            found.update(json_leaves(part))
    elif isinstance(value, bool):
        found["true" if value else "false"] += 1
    elif value is not None and str(value).strip():
        found[str(value)] += 1
    return found
