"""The state items of the Local connector (``sources.local``): what one run found in a Maildir
folder or a OneDrive directory, for the next run to compare with, in pages of bounded size.

A directory's state is its entries, ``[file name, change token, mode]`` per item given for it,
in name order (the order of the scan). They are written as items of ``kind="folder"`` (no
content, invisible to browsing): full pages of ``PAGE_ENTRIES`` entries as the scan goes
(``<user>/<area>-page/<n>/<rest>`` for the directory's key ``<user>/<area>/<rest>``, ``n`` from
1), then the head under the directory's own key, written last, with the entries left over, the
number of pages before it and the directory's stamp. A folder of a million messages is then a
few hundred items of a few hundred KB, each decoded only when the scan reaches its names,
instead of one item of about 100 MB decoded at once.

The next run reads the head first (its stamp decides whether a Maildir folder is skipped whole),
then looks names up in ascending order (``StateReader.get``): a page is decoded when the names
asked for pass the previous one's last. A name asked for out of order, or a state that is not
in name order, is only a miss: the item goes the long way, never a wrong match (a lookup is by
exact name, and the caller still compares token and mode). Heads of version 1 (one item, every
entry, written before pages existed) are read as a head without pages.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from keepstone.engine.model import CarriedRecord
from keepstone.sources.connector import PreviousPoint, SourceItem

# The shape of state items; a change to what the scan puts into an item (its meta, its path) must
# change it too, so that the first run after it goes the long way and records the new shape.
# 2: paged (version 1 items, one per directory, are still read; a reader of version 1 ignores
# version 2 items, so it never takes a head's entries for the whole directory).
STATE_VERSION = 2
READ_VERSIONS = (1, 2)
# Entries per page: about 100 bytes of JSON each.
PAGE_ENTRIES = 4096
STATE_TOKEN = "local-state"
# (sub, inode, mtime_ns, ctime_ns) of each of a folder's cur/ and new/ that exists.
Stamp = list[list[object]]
Entry = list[Any]  # [file name, change token, mode]


def page_key(key: str, number: int) -> str:
    """The key of page ``number`` (from 1) of the state whose head is ``key``: another area, so
    no page key is ever another directory's key (a OneDrive directory may be named anything)."""
    user, area, rest = key.split("/", 2)
    return f"{user}/{area}-page/{number}/{rest}"


def _entries(meta: dict[str, Any]) -> dict[str, Entry] | None:
    entries = meta.get("entries")
    if meta.get("source") != "local" or meta.get("version") not in READ_VERSIONS:
        return None
    if not isinstance(entries, list):
        return None
    return {
        entry[0]: entry
        for entry in entries
        if isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
    }


class StateReader:
    """The previous run's state of one directory, decoded a page at a time."""

    def __init__(self, previous: PreviousPoint, key: str, head: dict[str, Any]) -> None:
        self._previous = previous
        self.key = key
        stamp, pages = head.get("stamp"), head.get("pages", 0)
        self.stamp: Stamp | None = stamp if isinstance(stamp, list) else None
        self.version = head.get("version")
        self.pages = pages if isinstance(pages, int) and pages >= 0 else 0
        self._head = head
        self._at = 0  # the page decoded now (0: none yet; pages + 1: the head)
        self._page: dict[str, Entry] = {}
        self._last = ""  # the greatest name in the page decoded now

    @classmethod
    def of(cls, previous: PreviousPoint, key: str) -> StateReader | None:
        """The previous run's state item ``key``, or None (first run, older restore point)."""
        before = previous.get(key)
        if before is None or before.kind != "folder" or _entries(before.meta) is None:
            return None
        return cls(previous, key, before.meta)

    def get(self, name: str) -> Entry | None:
        """``name``'s entry; names are asked for in ascending order."""
        if self._at == 0:
            self._next()
        while name > self._last and self._at <= self.pages:
            self._next()
        return self._page.get(name)

    def page_numbers(self) -> range:
        """Every page, the head last (``pages + 1``)."""
        return range(1, self.pages + 2)

    def entries_of(self, number: int) -> dict[str, Entry] | None:
        """Page ``number``'s entries (the head's for ``pages + 1``); None when it is missing
        or malformed."""
        if number > self.pages:
            return _entries(self._head)
        page = self._previous.get(page_key(self.key, number))
        if page is None or page.kind != "folder":
            return None
        return _entries(page.meta)

    def record_of(self, number: int) -> CarriedRecord | None:
        """Page ``number``'s item as its previous JSON (the head's for ``pages + 1``), to be
        written again as it is."""
        key = self.key if number > self.pages else page_key(self.key, number)
        return self._previous.carry(key, STATE_TOKEN)

    def same_head(self, writer: StateWriter, stamp: Stamp | None) -> CarriedRecord | None:
        """The head as its previous JSON when ``writer`` found exactly what it holds (and wrote
        no page): the same item, carried instead of encoded again."""
        if self.pages or writer.pages or self.version != STATE_VERSION:
            return None
        if self._head != {**writer.head(stamp).meta, "change_token": STATE_TOKEN}:
            return None
        return self.record_of(1)

    def _next(self) -> None:
        self._at += 1
        self._page = self.entries_of(self._at) or {}
        self._last = max(self._page, default="")


@dataclass
class StateWriter:
    """A directory's state as the scan finds it: a page item each time ``PAGE_ENTRIES`` entries
    are found, the head at the end."""

    key: str
    user: str
    path: str  # the directory's path, as its items' folder
    pages: int = 0  # pages written (or carried as they were) so far
    found: list[Entry] = field(default_factory=list)
    ready: list[SourceItem] = field(default_factory=list)  # full pages not yet given

    def add(self, entry: Entry) -> None:
        """Record ``entry``; a page is ready (``take``) each time ``PAGE_ENTRIES`` are."""
        self.found.append(entry)
        if len(self.found) >= PAGE_ENTRIES:
            self.pages += 1
            key = page_key(self.key, self.pages)
            self.ready.append(_state_item(key, self.user, self.path, None, self.found))
            self.found = []

    def take(self) -> Iterator[SourceItem]:
        """The pages filled since the last call."""
        ready, self.ready = self.ready, []
        yield from ready

    def head(self, stamp: Stamp | None) -> SourceItem:
        item = _state_item(self.key, self.user, self.path, stamp, self.found)
        item.meta["pages"] = self.pages
        return item


def _state_item(
    key: str, user: str, path: str, stamp: Stamp | None, entries: list[Entry]
) -> SourceItem:
    """One state item (``kind="folder"``, no content, invisible to browsing): entries, and for
    a Maildir folder's head the stamp of its ``cur``/``new`` when it may be trusted for a skip."""
    meta = {"source": "local", "version": STATE_VERSION, "stamp": stamp, "entries": entries}
    return SourceItem(key, user, "folder", path, 0, 0.0, 0o700, meta, STATE_TOKEN, None, _empty)


def _empty() -> BinaryIO:
    return io.BytesIO(b"")
