"""A logged-in IMAP session: the one object connectors use (``connect`` makes it)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

from keepstone.sources.imap import append as appending
from keepstone.sources.imap import fetch, folders
from keepstone.sources.imap.errors import ConnectionLost, ImapError, ProtocolError, Unsupported
from keepstone.sources.imap.login import ask_capabilities, capabilities_in, log_in
from keepstone.sources.imap.model import (
    Appended,
    Credentials,
    Endpoint,
    Envelope,
    FlagChanges,
    Folder,
    FolderStatus,
    Message,
)
from keepstone.sources.imap.parse import uid_set
from keepstone.sources.imap.transport import open_wire
from keepstone.sources.imap.wire import Wire


def connect(endpoint: Endpoint, credentials: Credentials) -> ImapSession:
    """A logged-in session (a context manager: logs out on exit)."""
    wire, greeting = open_wire(endpoint)
    try:
        before = capabilities_in([greeting]) or ask_capabilities(wire)
        wire.literal_plus = "LITERAL+" in before
        capabilities = log_in(wire, credentials, before)
        wire.literal_plus = "LITERAL+" in capabilities
        if "QRESYNC" in capabilities:
            # VANISHED answers need it; it also turns CONDSTORE on (RFC 7162 section 3.2.3)
            wire.run(b"ENABLE", b"QRESYNC")
        return ImapSession(wire, capabilities)
    except BaseException:
        wire.close()
        raise


class ImapSession:
    def __init__(self, wire: Wire, capabilities: frozenset[str]) -> None:
        self._wire = wire
        self.capabilities = capabilities
        self._selected: tuple[Folder, FolderStatus, bool] | None = None
        self._separator: tuple[str | None] | None = None

    # ----- lifetime -----

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """LOGOUT when the connection still works; the socket is closed either way."""
        if not self._wire.dead:
            with contextlib.suppress(ImapError):
                self._wire.run(b"LOGOUT")
        self._wire.close()

    @property
    def alive(self) -> bool:
        return self._wire.dead is None

    @property
    def can_track_changes(self) -> bool:
        """Whether ``changes_since`` works (CONDSTORE); if not, use ``uids_and_flags``."""
        return "CONDSTORE" in self.capabilities

    # ----- folders -----

    def folders(self) -> list[Folder]:
        return folders.list_folders(self._wire, self.capabilities)

    def status(self, folder: Folder) -> FolderStatus:
        return folders.status(self._wire, folder, self.capabilities)

    def select(self, folder: Folder, readonly: bool = True) -> FolderStatus:
        self._selected = None
        found = folders.select(self._wire, folder, readonly, self.capabilities)
        self._selected = (folder, found, readonly)
        return found

    def separator(self) -> str | None:
        if self._separator is None:
            self._separator = (folders.separator_of(self._wire),)
        return self._separator[0]

    def ensure_folder(self, path: Sequence[str]) -> Folder:
        return folders.ensure_folder(self._wire, path, self.folders(), self.separator())

    # ----- the selected folder -----

    def uids_and_flags(self) -> dict[int, tuple[str, ...]]:
        self._current()
        return fetch.uids_and_flags(self._wire)

    def changes_since(self, modseq: int) -> FlagChanges:
        """Flags changed since ``modseq`` (and, with QRESYNC, the UIDs expunged since then);
        ``Unsupported`` without CONDSTORE."""
        _, found, _ = self._current()
        if not self.can_track_changes:
            raise Unsupported("the server has no CONDSTORE: use uids_and_flags")
        qresync = "QRESYNC" in self.capabilities
        return fetch.changes_since(self._wire, modseq, qresync, max(found.uidnext, 1) + (1 << 20))

    def fetch_envelopes(self, uids: Sequence[int]) -> list[Envelope]:
        self._current()
        return fetch.fetch_envelopes(self._wire, uids) if uids else []

    def fetch_messages(
        self,
        uids: Sequence[int],
        max_batch_bytes: int = 16 << 20,
        on_skip: Callable[[int, str], None] | None = None,
    ) -> Iterator[Message]:
        """Whole messages (``BODY.PEEK[]``: ``\\Seen`` untouched) in UID order; a message
        the server cannot give is left out and reported to ``on_skip(uid, reason)``."""
        self._current()
        return fetch.fetch_messages(self._wire, uids, max_batch_bytes, on_skip)

    def message_ids(self) -> dict[str, list[int]]:
        self._current()
        return fetch.message_ids(self._wire)

    def expunge_uids(self, uids: Sequence[int]) -> None:
        """Remove exactly these messages (UID EXPUNGE needs UIDPLUS: a plain EXPUNGE would
        also remove other messages someone marked deleted)."""
        _, _, readonly = self._current()
        if not uids:
            return
        if readonly:
            raise ProtocolError("expunge_uids needs the folder selected with readonly=False")
        if "UIDPLUS" not in self.capabilities:
            raise Unsupported("the server has no UIDPLUS: messages cannot be removed one by one")
        for start in range(0, len(uids), fetch.ID_BATCH):
            chosen = uid_set(list(uids[start : start + fetch.ID_BATCH]))
            self._wire.run(b"UID", b"STORE", chosen, b"+FLAGS.SILENT", b"(\\Deleted)")
            self._wire.run(b"UID", b"EXPUNGE", chosen)

    # ----- any folder -----

    def append(self, folder: Folder, messages: Sequence[Appended]) -> list[int | None]:
        return appending.append(self._wire, folder, messages, self.capabilities)

    def _current(self) -> tuple[Folder, FolderStatus, bool]:
        if self._wire.dead:
            raise ConnectionLost(self._wire.dead)
        if self._selected is None:
            raise ProtocolError("no folder is selected")
        return self._selected
