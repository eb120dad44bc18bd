"""What every organization connector gives the backup executor (``proxy.backup``).

A connector lists an organization's users and, per user and part (mailbox, OneDrive), streams
``SourceItem``s. The executor does the rest the same way for every source: carrying unchanged
items over, reading and storing the others, warnings, task sessions, progress, the snapshot.

- An item's ``opener`` gives its content as a stream: a file opened on demand (Local) or bytes
  already in memory (an IMAP body fetched in a batch). A stream that can tell whether its source
  changed while it was read implements ``Watched``; others are taken as read.
- Metadata that lives in the content (a Local message's headers) may be left to the executor:
  an item with ``content_meta`` is read (never carried over), and the executor adds what
  ``content_meta.parse`` finds in the first ``head_bytes`` of the very read that stores it, so
  a message is opened and read once, not once by the scan for its headers and again to store it.
- An item is carried over without being read when the previous restore point has an item under
  the same key with the same change token, or when the connector names that item explicitly in
  ``previous`` (the content is known to be the same under a new key: an IMAP folder whose
  UIDVALIDITY changed, a message found again by Message-ID and size).
- The previous restore point (``PreviousPoint``) is given to the connector before the run reads
  anything, so an incremental connector can keep its own state there (IMAP: per folder).
- Something the connector leaves out is reported through the ``SkipHandler`` it was made with
  (a per-item warning); a part of a user that cannot be read at all raises ``PartFailed`` (or an
  ``OSError``/``InvalidInput``) from its iterator: a per-user warning, the run goes on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

from keepstone.domain.errors import KeepstoneError
from keepstone.engine import Item
from keepstone.engine.model import (
    CarriedRecord,
    ItemRecord,
    item_of_record,
    record_chunks,
    record_has,
    record_size_mtime,
)

Part = Literal["mailbox", "archive", "onedrive"]  # archive: the In-Place Archive mailbox


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something a scan left out: ``path`` (text) names it for people."""

    user: str
    path: str
    reason: str


SkipHandler = Callable[[Skipped], None]


@dataclass(frozen=True, slots=True)
class ContentMeta:
    """How an item's remaining metadata comes from its content: ``parse`` of its first
    ``head_bytes`` (all of it when shorter), merged after the item's own ``meta``."""

    head_bytes: int
    parse: Callable[[bytes], dict[str, Any]]


class Content(Protocol):
    """An item's content as its ``opener`` gives it: read in order, then closed. Every
    connector's stream has ``readinto`` as well (a file, ``io.BytesIO``, a spooled download),
    which the executor reads through."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...

    def __enter__(self) -> Content: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> None: ...


@runtime_checkable
class Watched(Protocol):
    """A stream that knows whether its source changed while ``bytes_read`` bytes were read."""

    def changed(self, bytes_read: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class SourceItem:
    key: str
    user: str
    kind: str
    path: str
    size: int
    mtime: float
    mode: int
    meta: dict[str, Any]
    change_token: str
    # Where it was found, for people (``source_path``), never opened by this path: the path of
    # its directory and its name, joined only when asked (a pathlib join for every item of a
    # scan was a tenth of the run thread's work in an initial backup, and nothing reads it).
    found_in: tuple[Path, str] | None
    opener: Callable[[], Content] = field(compare=False, repr=False)
    # The previous restore point's item with the same content, under another key (see above).
    previous: Item | None = field(default=None, compare=False, repr=False)
    # Metadata the executor takes from the content as it stores it (see above); None: ``meta``
    # is all of it.
    content_meta: ContentMeta | None = field(default=None, compare=False, repr=False)

    def open(self) -> Content:
        return self.opener()

    @property
    def source_path(self) -> Path | None:
        """Where the item was found, for people; never opened by this path."""
        return None if self.found_in is None else self.found_in[0] / self.found_in[1]


@dataclass(frozen=True, slots=True)
class CarriedBlock:
    """Items of one folder that the connector found unchanged without decoding them (``records``,
    their JSON as ``PreviousPoint.carry`` gave it): the executor writes them into the new restore
    point as they are. ``folder`` is what ``engine.model.folder_of`` gives for each of them."""

    user: str
    kind: str
    folder: str
    records: list[CarriedRecord]


class SourceUser(Protocol):
    """A user of the organization and which parts it has."""

    @property
    def name(self) -> str: ...
    @property
    def has_mailbox(self) -> bool: ...
    @property
    def has_onedrive(self) -> bool: ...


class PartFailed(KeepstoneError):
    """A part of a user could not be read (after the connector's own retries)."""


class PreviousPoint:
    """The job's previous restore point, by key and by user (empty for a first run).

    Loaded from a repository (``of_records``) it holds every item as the JSON its tree stores
    (about half the memory of the decoded item, and nothing for the garbage collector to walk),
    decoded when asked for; ``record`` gives that JSON, which the writer takes back as it is for
    an item that did not change."""

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._decoded = {item.key: item for item in items}
        self._records: dict[str, bytes] = {}
        self._by_user: dict[str, list[str]] = defaultdict(list)
        for item in self._decoded.values():
            self._by_user[item.user].append(item.key)
        # The item decoded last: a connector and the executor ask for the same one in turn.
        self._last: tuple[str, Item] | None = None
        # Whether chunk ids are all in the repository: set by the executor once its writer
        # holds the repository's lock; until then nothing is carried undecoded.
        self._known: Callable[[list[bytes]], bool] | None = None
        # Set by ``of_users``: a user's records, read when the run reaches that user.
        self._load: Callable[[str], list[ItemRecord]] | None = None

    @classmethod
    def of_records(cls, records: Iterable[ItemRecord]) -> PreviousPoint:
        point = cls()
        point._hold(records)
        return point

    @classmethod
    def of_users(cls, load: Callable[[str], list[ItemRecord]]) -> PreviousPoint:
        """A point read a user at a time: it holds only the records of the user the run last
        ``enter``ed (``get``, ``record`` and ``carry`` see only those), so a run's memory does
        not grow with the organization; ``of_user`` of any other user reads that user's records
        for the call alone."""
        point = cls()
        point._load = load
        return point

    def enter(self, user: str) -> None:
        """The run goes on with ``user``'s items: its records replace those held (a point
        loaded whole keeps everything)."""
        if self._load is None:
            return
        self._last = None
        # Keyed only: ``of_user`` of a point read a user at a time reads apart from this.
        self._records = {key: record for key, _, record in self._load(user)}

    def _hold(self, records: Iterable[ItemRecord]) -> None:
        for key, user, record in records:
            if key not in self._records:
                self._by_user[user].append(key)
            self._records[key] = record

    def get(self, key: str) -> Item | None:
        found = self._decoded.get(key)
        if found is not None:
            return found
        last = self._last  # one read: other threads may replace it meanwhile
        if last is not None and last[0] == key:
            return last[1]
        record = self._records.get(key)
        if record is None:
            return None
        item = item_of_record(record, key, "the previous restore point")
        self._last = (key, item)
        return item

    def record(self, key: str) -> bytes | None:
        """The item's JSON as its tree stores it (None when it was not loaded as JSON)."""
        return self._records.get(key)

    def check_chunks_with(self, known: Callable[[list[bytes]], bool]) -> None:
        """Let ``carry`` give records, checking their chunks with ``known``."""
        self._known = known

    def carry(self, key: str, change_token: str) -> CarriedRecord | None:
        """The item's JSON, to be written again as it is, when the previous point stored it
        with ``change_token`` (never empty) and its chunks are still in the repository; None
        otherwise (then the item goes the usual way). The connector vouches that everything
        else the item would hold is what it held then."""
        record = self._records.get(key)
        if record is None or not change_token or self._known is None:
            return None
        if not record_has(record, "change_token", change_token):
            return None  # another token, or "" (it changed while it was read): read again
        chunks = record_chunks(record)
        facts = record_size_mtime(record)
        if chunks is None or facts is None or not self._known(chunks):
            return None  # not in the canonical shape the writer takes undecoded, or data lost
        return record, facts[0], facts[1]

    def of_user(self, user: str) -> list[Item]:
        if self._load is not None:  # read apart from what is held: readers run ahead of it
            return PreviousPoint.of_records(self._load(user)).of_user(user)
        return [item for key in self._by_user.get(user, []) if (item := self.get(key))]

    def __len__(self) -> int:
        return len(self._decoded) + len(self._records)


class Connector(Protocol):
    """One organization, read for one run."""

    def users(self) -> Sequence[SourceUser]: ...

    def start(self, plan: Sequence[tuple[str, Sequence[Part]]], previous: PreviousPoint) -> None:
        """Called once before ``items``: the users and parts the run will ask for, in that
        order (a connector may start reading ahead), and the previous restore point."""

    def items(self, user: str, part: Part) -> Iterator[SourceItem | CarriedBlock]: ...

    def close(self) -> None:
        """The run is over (or stopping): release connections, end read-ahead."""


ConnectorFactory = Callable[[SkipHandler], Connector]
