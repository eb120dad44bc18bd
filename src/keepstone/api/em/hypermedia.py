"""Links of the Enterprise Manager dialect: ``<Link Rel Type Href Name>`` lists as the vendor
writes them, and the one backup server (this one) every entity hangs from.

The vendor's pages show each representation's links in a fixed order (Up, Alternate, actions,
Down, Related, ...); clients read them by position (``Links[0].Name`` is the backup server of a
session). Each resource module lists its links in that order, citing its page; a link to
something Keepstone does not serve (an action it has no use for, a list it cannot fill) is left
out rather than pointing nowhere, and the others keep their relative order.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import etree

from keepstone.api.em.deps import Caller
from keepstone.api.em.xml import NS, element_in
from keepstone.domain.text import xml_safe

SERVER_ID = "00000000-0000-0000-0000-000000000001"  # this server: the only one there is


@dataclass(frozen=True, slots=True)
class Link:
    rel: str
    href: str
    type: str | None = None
    name: str | None = None


def links_of(*entries: Link) -> etree._Element:
    """``<Links>``, attributes in the vendor's order (Rel, Type, Href, Name); no Type on action
    links and no Name where the vendor writes none."""
    return links_in(None, *entries)


def links_in(parent: etree._Element | None, *entries: Link) -> etree._Element:
    """``links_of`` made inside ``parent`` (``xml.element_in``)."""
    made = element_in(parent, "Links")
    for entry in entries:
        etree.SubElement(made, LINK, link_attributes(entry))
    return made


LINKS, LINK = f"{{{NS}}}Links", f"{{{NS}}}Link"


def link_attributes(entry: Link) -> dict[str, str]:
    """A ``<Link>``'s attributes, XML-safe, in the vendor's order."""
    attributes = {"Rel": xml_safe(entry.rel)}
    if entry.type:
        attributes["Type"] = xml_safe(entry.type)
    attributes["Href"] = xml_safe(entry.href)
    if entry.name is not None:
        attributes["Name"] = xml_safe(entry.name)
    return attributes


def server_name(who: Caller) -> str:
    """This backup server's name: the host clients reach it by, as in its own ``Name``."""
    return urlsplit(who.base).hostname or ""


def server_href(who: Caller) -> str:
    return who.href("backupServers", SERVER_ID)


def server_up(who: Caller) -> Link:
    """The first link of most entities: up to the backup server that holds them, by name."""
    return Link("Up", server_href(who), "BackupServerReference", server_name(who))


def entity_href(href: str) -> str:
    return f"{href}?format=Entity"
