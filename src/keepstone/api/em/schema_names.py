"""Element names read from RestAPI.xsd, so lists are named as the schema names them.

``Entities`` of a query result holds exactly one list element (``EntitiesType`` is a choice),
whose name is not always the plural of its items (``EnterpiseRoles`` — sic — holds
``EnterpriseRole``; ``Passwords`` holds ``PasswordKeyInfo``); ``Resources`` likewise holds
``Tasks``. A list resource's entity form (``JobList``) is the global element of the list type of
its items (``Jobs``), per the vendor's mapping of link types to schema elements
(mapping_link_types_to_xml_schema.html).
"""

from __future__ import annotations

from functools import cache

from lxml import etree

from keepstone.api.em.xsd import XSD, schema_document

_XS = {"xs": XSD}


def _items_of(list_type: str) -> set[str]:
    """The element names a complex (list) type holds."""
    found = schema_document().xpath(
        f"//xs:complexType[@name='{list_type}']//xs:element/@name", namespaces=_XS
    )
    return {str(name) for name in found}


@cache
def query_container(item: str) -> tuple[str, str] | None:
    """(``Entities`` or ``Resources``, the list element) holding ``item`` entities in a query
    result, or None when the schema declares no such list (types newer than the shipped XSD)."""
    for holder, type_name in (("Entities", "EntitiesType"), ("Resources", "ResourcesType")):
        choices = schema_document().xpath(
            f"//xs:complexType[@name='{type_name}']/xs:choice/xs:element", namespaces=_XS
        )
        for choice in sorted(choices, key=lambda c: not _named_for(item, c)):
            if _named_for(item, choice) or item in _items_of(_local(choice.get("type", ""))):
                return holder, choice.get("name", "")
    return None


@cache
def entities_choices() -> frozenset[str]:
    """The lists ``Entities`` of a query result may hold, per the schema."""
    found = schema_document().xpath(
        "//xs:complexType[@name='EntitiesType']/xs:choice/xs:element/@name", namespaces=_XS
    )
    return frozenset(str(name) for name in found)


@cache
def list_root(item: str) -> str | None:
    """The global element of a list of ``item`` entities (``Job`` -> ``Jobs``), or None when the
    schema declares none."""
    declarations = schema_document().getroot().iterfind(f"{{{XSD}}}element")
    for declared in sorted(declarations, key=lambda d: not _named_for(item, d)):
        type_name = _local(declared.get("type", ""))
        if _named_for(item, declared) or (
            type_name.endswith("ListType") and item in _items_of(type_name)
        ):
            return declared.get("name")
    return None


def _named_for(item: str, declared: etree._Element) -> bool:
    """Whether an element's type is named for ``item`` (``JobEntityListType`` for ``Job``):
    the list of ``item`` itself, before any list that merely contains one."""
    return _local(declared.get("type", "")) in (f"{item}EntityListType", f"{item}ListType")


def _local(qualified: str) -> str:
    return etree.QName(qualified).localname if "{" in qualified else qualified.split(":")[-1]
