"""The JSON shape of an Enterprise Manager document, read from RestAPI.xsd.

EM answers ``Accept: application/json`` with the same objects its XML carries, serialized by
its .NET data contracts. The shape follows from the schema by these rules (vendor pages:
helpcenter.veeam.com/docs/vbr/em_rest/representation_collections.html and
resource_representation_for_ke.html; query results nest as ``Entities.BackupJobSessions.
BackupJobSessions[]`` and ``Refs.Refs[]``):

- attributes and child elements become properties named as in the XML;
- an element the schema lets repeat (``maxOccurs`` > 1 on it or on an enclosing choice or
  sequence) becomes an array property named by the element's plural (``Ref`` -> ``Refs``,
  ``Repository`` -> ``Repositories``, ``Period`` -> ``Periods``, ``Day`` -> ``Days``), an array
  even for one item and an empty one for none;
- a bare wrapper type, nothing but one repeated element without base type or attribute
  (``LinkListType``), is that array itself: ``"Links": [{"Rel", "Href", "Name", "Type"}]``;
  list types that extend ``ListType`` stay objects: ``{"Repositories": [...]}``;
- an element with text and attributes (``<Day Name="Sunday">1,1,…</Day>``) carries its text
  as ``Value``;
- xsd integer and decimal types are JSON numbers, ``xsd:boolean`` is ``true``/``false``,
  everything else (dateTime, enumerations, ``UidType``…) is a string. Simple types the schema
  declares itself (``long``, ``bool``, ``DateTime``…) are restrictions of the built-in ones.

The forms are computed once per process (``forms`` is cached); a document is converted by
``json_document`` in one walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from lxml import etree

from keepstone.api.em.xsd import XSD, schema_document

Scalar = Literal["integer", "decimal", "boolean", "string"]

_INTEGERS = frozenset(
    {
        *("integer", "long", "int", "short", "byte"),
        *("unsignedLong", "unsignedInt", "unsignedShort", "unsignedByte"),
        *("nonNegativeInteger", "positiveInteger", "negativeInteger", "nonPositiveInteger"),
    }
)
_DECIMALS = frozenset({"decimal", "double", "float"})
_GROUPS = frozenset({"sequence", "choice", "all"})


@dataclass(frozen=True, slots=True)
class ChildForm:
    """One child element of a type: whether it repeats, and its simple or complex type."""

    repeats: bool
    scalar: Scalar = "string"  # the value's kind when ``complex`` is None
    complex: str | None = None  # key of its TypeForm in ``Forms.types``


@dataclass(slots=True)
class TypeForm:
    """A complexType: its attributes, child elements (base type's first) and text kind."""

    attributes: dict[str, Scalar] = field(default_factory=dict)
    children: dict[str, ChildForm] = field(default_factory=dict)
    text: Scalar | None = None  # simpleContent: the element's own text
    extends: bool = False

    @property
    def repeated(self) -> tuple[str, ...]:
        return tuple(name for name, child in self.children.items() if child.repeats)

    @property
    def array_of(self) -> str | None:
        """The repeated element a bare wrapper type (``LinkListType``) is an array of."""
        if self.extends or self.attributes or self.text is not None or len(self.children) != 1:
            return None
        [(name, child)] = self.children.items()
        return name if child.repeats else None


@dataclass(frozen=True, slots=True)
class Forms:
    types: dict[str, TypeForm]  # named complexTypes, and anonymous ones as "Owner/Element"
    roots: dict[str, ChildForm]  # the global elements, which are the documents' roots


def plural(name: str) -> str:
    """The property name of a repeated element, as the vendor's serializer spells it.

    English rules are enough for every repeated element of RestAPI.xsd; names already ending
    in "s" (``<Days>``, ``<Months>`` in daily and monthly schedules) are kept as they are.
    """
    if name.endswith("s"):
        return name
    if name.endswith(("x", "z", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and name[-2:-1] not in ("a", "e", "i", "o", "u"):
        return name[:-1] + "ies"
    return name + "s"


@cache
def forms() -> Forms:
    """Every type's JSON form, read from the schema once per process."""
    return _Reader(schema_document().getroot()).read()


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname if isinstance(node.tag, str) else ""


def _many(node: etree._Element) -> bool:
    bound = node.get("maxOccurs", "1")
    return bound == "unbounded" or int(bound) > 1


class _Reader:
    def __init__(self, root: etree._Element) -> None:
        self._complex = self._named(root, "complexType")
        self._simple = self._named(root, "simpleType")
        self._elements = self._named(root, "element")
        self._types: dict[str, TypeForm] = {}

    @staticmethod
    def _named(root: etree._Element, kind: str) -> dict[str, etree._Element]:
        return {node.get("name", ""): node for node in root.iterfind(f"{{{XSD}}}{kind}")}

    def read(self) -> Forms:
        for name in self._complex:
            self._type_form(name, self._complex[name])
        roots = {name: self._child(node, False, name) for name, node in self._elements.items()}
        return Forms(self._types, roots)

    def _type_form(self, key: str, definition: etree._Element) -> TypeForm:
        known = self._types.get(key)
        if known is None:
            known = self._types[key] = TypeForm()
            self._content(known, key, definition)
        return known

    def _content(self, form: TypeForm, key: str, definition: etree._Element) -> None:
        for part in definition:
            kind = _local(part)
            if kind in ("complexContent", "simpleContent"):
                for derivation in part:
                    if _local(derivation) in ("extension", "restriction"):
                        self._derived(form, key, derivation)
            elif kind in _GROUPS:
                self._particles(form, key, part, _many(part))
            elif kind == "attribute":
                form.attributes[part.get("name", "")] = self._scalar(part, part.get("type"))

    def _derived(self, form: TypeForm, key: str, derivation: etree._Element) -> None:
        base = derivation.get("base", "")
        local = base.split(":")[-1]
        if self._is_xsd(derivation, base) or local in self._simple:
            form.text = self._scalar(derivation, base)
        elif local in self._complex:
            inherited = self._type_form(local, self._complex[local])
            form.extends = _local(derivation) == "extension"
            form.attributes.update(inherited.attributes)
            form.children.update(inherited.children)
            form.text = inherited.text
        self._content(form, key, derivation)

    def _particles(self, form: TypeForm, key: str, group: etree._Element, many: bool) -> None:
        for part in group:
            kind = _local(part)
            if kind == "element":
                element = self._elements.get(part.get("ref", "").split(":")[-1], part)
                name = element.get("name", "")
                again = name in form.children  # the same name twice in a sequence repeats
                form.children[name] = self._child(element, many or _many(part) or again, key)
            elif kind in _GROUPS:
                self._particles(form, key, part, many or _many(part))
            # xs:any and xs:group do not occur in RestAPI.xsd; the converter keeps whatever
            # it meets that the schema does not describe.

    def _child(self, element: etree._Element, repeats: bool, owner: str) -> ChildForm:
        named = element.get("type")
        if named is not None:
            local = named.split(":")[-1]
            if not self._is_xsd(element, named) and local in self._complex:
                return ChildForm(repeats, complex=local)
            return ChildForm(repeats, self._scalar(element, named))
        for inline in element:
            if _local(inline) == "complexType":
                key = f"{owner}/{element.get('name')}"
                self._type_form(key, inline)
                return ChildForm(repeats, complex=key)
            if _local(inline) == "simpleType":
                return ChildForm(repeats, self._simple_scalar(inline))
        return ChildForm(repeats)

    @staticmethod
    def _is_xsd(node: etree._Element, qualified: str) -> bool:
        prefix = qualified.split(":")[0] if ":" in qualified else None
        return node.nsmap.get(prefix) == XSD

    def _scalar(self, node: etree._Element, qualified: str | None) -> Scalar:
        if qualified is None:
            return "string"
        local = qualified.split(":")[-1]
        if self._is_xsd(node, qualified):
            if local in _INTEGERS:
                return "integer"
            if local in _DECIMALS:
                return "decimal"
            return "boolean" if local == "boolean" else "string"
        declared = self._simple.get(local)
        return "string" if declared is None else self._simple_scalar(declared)

    def _simple_scalar(self, simple_type: etree._Element) -> Scalar:
        restriction = simple_type.find(f"{{{XSD}}}restriction")
        if restriction is None:  # a list or union is written as text
            return "string"
        return self._scalar(restriction, restriction.get("base"))
