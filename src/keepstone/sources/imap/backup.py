"""IMAP backup connector: every user's mailbox, incremental by the server's own change tracking.

Per folder the previous restore point holds a folder item (``kind="folder"``) with the state the
next run starts from: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the message count, and whether every
message of it was stored. Messages are keyed by (folder, UIDVALIDITY, UID); IMAP never changes
a message's content under its UID, so a message seen before is never downloaded again.

- Unchanged folder (same UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ; with LIST-STATUS all of them come
  with the one LIST): no further command; its items are carried over.
- Changed folder with CONDSTORE: ``CHANGEDSINCE`` gives new and re-flagged messages, QRESYNC
  ``VANISHED`` the expunged ones (without QRESYNC a UID+FLAGS scan says which are gone).
- Without CONDSTORE (or when the previous state is incomplete): a UID+FLAGS scan does the same.
- New messages are fetched whole (``BODY.PEEK[]``: never sets ``\\Seen``) in batches; flag changes
  and expunges only change the carried items' metadata.
- UIDVALIDITY changed, or a folder never seen (a rename): envelopes (Message-ID, size) are
  matched against every message of the user's previous restore point, and a match is carried
  over under its new key without being downloaded.

Mailboxes are read ahead in parallel, one connection each, at most ``ImapAccess.max_connections``
at once; the executor consumes them in order from bounded buffers (memory stays bounded, items
are recorded by one thread). Throttling, dropped connections and timeouts are retried with
backoff and jitter; a folder is then read again from where it was, skipping what this run
already gave (no message lost or given twice). A mailbox that keeps failing is ``PartFailed``
(a per-user warning); what was not read of it is carried over from the previous restore point,
so the new restore point still shows the last known state. An unreachable server, or one whose
certificate fails, fails the run: no mailbox of the organization can be read.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import random
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from keepstone.domain.errors import KeepstoneError
from keepstone.engine import Item
from keepstone.sources.connector import (
    Part,
    PartFailed,
    PreviousPoint,
    SkipHandler,
    Skipped,
    SourceItem,
)
from keepstone.sources.imap import (
    AuthenticationFailed,
    ConnectionLost,
    Credentials,
    Endpoint,
    Envelope,
    Folder,
    FolderMissing,
    FolderStatus,
    ImapAccess,
    ImapError,
    ImapSession,
    Message,
    Throttled,
    TlsFailure,
    Unreachable,
    connect,
)
from keepstone.sources.local import headers_of
from keepstone.sources.names import display, key_part
from keepstone.sources.readahead import ReadAheadBuffer, ReaderClosed

MESSAGE_MODE = 0o600
BUFFER_BYTES = 32 << 20  # per mailbox read ahead: bounds memory with max_connections
ENTRY_BYTES = 4096  # what an item costs besides its body (its description, its metadata)
_MAILDIR_LETTERS = {
    "\\draft": "D",
    "\\flagged": "F",
    "\\answered": "R",
    "\\seen": "S",
    "\\deleted": "T",
}
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


class OrganizationUnreachable(KeepstoneError):
    """The server cannot be reached (or its certificate fails): the run fails."""


@dataclass(frozen=True)
class Retry:
    """How retryable errors are retried: ``attempts`` per folder, exponential backoff with
    jitter; a server's ``retry_after`` is honoured up to ``max_wait``."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_wait: float = 600.0

    def delay(self, attempt: int, error: ImapError) -> float:
        if isinstance(error, Throttled) and error.retry_after:
            return min(float(error.retry_after), self.max_wait)
        return min(self.cap, self.base * 2.0**attempt) * random.uniform(0.5, 1.0)


RETRY = Retry()  # the default policy (tests shorten it)


@dataclass(frozen=True, slots=True)
class ImapUser:
    name: str
    has_mailbox: bool = True
    has_onedrive: bool = False


Connect = Callable[[Endpoint, Credentials], ImapSession]
T = TypeVar("T")


class ImapBackup:
    """The connector of one Imap organization for one run (``sources.connector.Connector``)."""

    def __init__(
        self,
        access: ImapAccess,
        on_skip: SkipHandler,
        check: Callable[[], None] = lambda: None,
        retry: Retry | None = None,
        connector: Connect = connect,
    ) -> None:
        self.access = access
        self._on_skip = on_skip
        self._check = check
        self._retry = retry or RETRY
        self._connect = connector
        self._stop = threading.Event()
        self._previous = PreviousPoint()
        self._pool: ThreadPoolExecutor | None = None
        self._mailboxes: dict[str, ReadAheadBuffer] = {}
        self._buffers: list[ReadAheadBuffer] = []

    def users(self) -> list[ImapUser]:
        return [ImapUser(name) for name in self.access.logins]

    def start(self, plan: Sequence[tuple[str, Sequence[Part]]], previous: PreviousPoint) -> None:
        self._previous = previous
        workers = max(1, self.access.max_connections)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="keepstone-imap")
        # Submitted in the order they are consumed: a reader waits for a free connection only
        # behind mailboxes that come before it, so the consumer never waits on a stuck queue.
        for user, parts in plan:
            if "mailbox" in parts and user in self.access.logins:
                self._mailboxes[user] = self._launch(user)

    def items(self, user: str, part: Part) -> Iterator[SourceItem]:
        if part != "mailbox":
            return iter(())
        buffer = self._mailboxes.pop(user, None)
        if buffer is None:
            buffer = self._launch(user)
        return self._drain(buffer)

    def close(self) -> None:
        self._stop.set()
        for buffer in self._buffers:
            buffer.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    # ----- reading ahead -----

    def _launch(self, user: str) -> ReadAheadBuffer:
        buffer = ReadAheadBuffer(BUFFER_BYTES, self._stop)
        self._buffers.append(buffer)
        reader = _MailboxReader(
            user, self.access, self._previous.of_user(user), buffer, self._retry, self._connect
        )
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="keepstone-imap")
        self._pool.submit(reader.run)
        return buffer

    def _drain(self, buffer: ReadAheadBuffer) -> Iterator[SourceItem]:
        """The mailbox's items as its reader gives them; skips are reported from this thread
        (the run's), and the reader's failure is raised here, after what it gave."""
        try:
            for entry in buffer.drain(self._check):
                if isinstance(entry, Skipped):
                    self._on_skip(entry)
                else:
                    yield entry
        finally:
            buffer.close()  # a consumer that stops early releases the reader


# ----- one mailbox -----


@dataclass
class _FolderState:
    """What the previous restore point knew of one folder."""

    item: Item | None = None
    messages: dict[int, Item] = field(default_factory=dict)  # uid -> item (its UIDVALIDITY)

    def meta(self, name: str) -> Any:
        return None if self.item is None else self.item.meta.get(name)

    @property
    def complete(self) -> bool:
        """Every message the folder held was stored: the server's change tracking suffices."""
        return (
            self.item is not None
            and self.meta("complete") is True
            and self.meta("messages") == len(self.messages)
        )


class _MailboxReader:
    """Reads one user's mailbox over its own connection, into its buffer (a pool thread)."""

    def __init__(
        self,
        user: str,
        access: ImapAccess,
        previous: list[Item],
        buffer: ReadAheadBuffer,
        retry: Retry,
        connector: Connect,
    ) -> None:
        self.user = user
        self.access = access
        self.buffer = buffer
        self.retry = retry
        self.connector = connector
        self.previous = previous
        self.folders = _previous_folders(previous)
        self._identities: dict[tuple[str, int], list[Item]] | None = None
        self.given: set[str] = set()  # keys given this run: a retried folder skips them
        self.done: set[str] = set()  # folders (wire names) given whole
        self.session: ImapSession | None = None

    def run(self) -> None:
        try:
            self._read()
        except ReaderClosed:
            pass
        except OrganizationUnreachable as error:
            self.buffer.fail(error)
        except ImapError as error:
            self._carry_rest()
            self.buffer.fail(PartFailed(f"mailbox cannot be read: {_why(error)}"))
        except BaseException as error:  # never leave the consumer waiting
            self.buffer.fail(error)
        else:
            self.buffer.finish()
        finally:
            self._disconnect()

    def _read(self) -> None:
        folders = self._retried(lambda session: session.folders())
        for folder in folders:
            if not folder.selectable:
                continue
            try:
                self._retried(functools.partial(self._folder, folder=folder))
            except FolderMissing:
                continue  # deleted since the LIST: not in this restore point
            except ImapError as error:
                if error.retryable or isinstance(error, AuthenticationFailed):
                    raise  # the mailbox keeps failing: PartFailed
                self._skip(folder, f"folder cannot be read: {_why(error)}")
                self._carry_folder(folder.wire_name)
            self.done.add(folder.wire_name)

    # ----- connections and retries -----

    def _retried(self, work: Callable[[ImapSession], T]) -> T:
        attempt = 0
        while True:
            session = self._session()
            try:
                return work(session)
            except (ConnectionLost, Throttled, Unreachable) as error:
                if not (isinstance(error, Throttled) and session.alive):
                    self._disconnect()  # a throttled session that still works is kept
                attempt += 1
                if attempt >= self.retry.attempts:
                    raise
                self._sleep(self.retry.delay(attempt, error))

    def _session(self) -> ImapSession:
        attempt = 0
        while self.session is None:
            credentials = self.access.logins[self.user]
            try:
                self.session = self.connector(self.access.endpoint, credentials)
            except TlsFailure as error:
                raise OrganizationUnreachable(_unreachable(self.access, error)) from error
            except (ConnectionLost, Throttled, Unreachable) as error:
                attempt += 1
                if attempt >= self.retry.attempts:
                    if isinstance(error, Unreachable):
                        raise OrganizationUnreachable(_unreachable(self.access, error)) from error
                    raise
                self._sleep(self.retry.delay(attempt, error))
        return self.session

    def _disconnect(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            with contextlib.suppress(Exception):  # a dead connection has nothing to log out
                session.close()

    def _sleep(self, seconds: float) -> None:
        if self.buffer.stopped.wait(seconds):
            raise ReaderClosed

    # ----- one folder -----

    def _folder(self, session: ImapSession, *, folder: Folder) -> None:
        before = self.folders.get(folder.wire_name, _FolderState())
        status = folder.status
        if status is None and "CONDSTORE" in session.capabilities and before.complete:
            status = session.status(folder)  # one round trip says whether anything moved
        if status is not None and _unchanged(before, status):
            self._carry(before.messages.values(), folder)
            self._give_folder(folder, status, complete=True, count=len(before.messages))
            return
        status = session.select(folder, readonly=True)
        same_generation = before.meta("uidvalidity") == status.uidvalidity
        if same_generation and before.complete:
            self._incremental(session, folder, status, before)
        else:
            self._full(session, folder, status, before if same_generation else _FolderState())

    def _incremental(
        self, session: ImapSession, folder: Folder, status: FolderStatus, before: _FolderState
    ) -> None:
        """What changed since the previous state, as the server tracks it."""
        modseq = before.meta("highestmodseq")
        if not isinstance(modseq, int) or status.highestmodseq is None:
            self._full(session, folder, status, before)
            return
        changes = session.changes_since(modseq)
        if changes.vanished is None:
            current = session.uids_and_flags()  # the server cannot say what went: diff UIDs
            gone = set(before.messages) - set(current)
        else:
            gone = set(changes.vanished)
        flags = {uid: before_flags(item) for uid, item in before.messages.items()}
        flags.update(changes.flags)
        kept = {uid: item for uid, item in before.messages.items() if uid not in gone}
        new = sorted(uid for uid in changes.flags if uid not in before.messages and uid not in gone)
        self._carry_flagged(kept, flags, folder)
        complete = self._fetch_new(session, folder, status, new)
        self._give_folder(folder, status, complete=complete, count=len(kept) + len(new))

    def _full(
        self, session: ImapSession, folder: Folder, status: FolderStatus, before: _FolderState
    ) -> None:
        """A UID+FLAGS scan: messages already stored keep their content and get the flags
        seen now; the others are new."""
        current = session.uids_and_flags()
        kept = {uid: item for uid, item in before.messages.items() if uid in current}
        self._carry_flagged(kept, current, folder)
        new = sorted(uid for uid in current if uid not in kept)
        complete = self._fetch_new(session, folder, status, new)
        self._give_folder(folder, status, complete=complete, count=len(current))

    def _fetch_new(
        self, session: ImapSession, folder: Folder, status: FolderStatus, new: list[int]
    ) -> bool:
        """New UIDs: those the previous restore point already holds (a move, a rename, a new
        UIDVALIDITY) re-mapped, the rest downloaded."""
        remapped = self._remap(session, folder, status, new) if new and self.previous else set()
        return self._fetch(session, folder, status, [uid for uid in new if uid not in remapped])

    def _remap(
        self, session: ImapSession, folder: Folder, status: FolderStatus, uids: list[int]
    ) -> set[int]:
        """New UIDs whose message the previous restore point already holds (same Message-ID
        and size, in any folder): given under their new keys without a download."""
        identities = self._identity_index()
        if not identities:
            return set()
        remapped: set[int] = set()
        for envelope in session.fetch_envelopes(uids):
            match = identities.get((_normal_id(envelope.message_id), envelope.size))
            if not match or not envelope.message_id:
                continue
            remapped.add(envelope.uid)
            self._give(_remapped_item(self.user, folder, status, envelope, match[0]))
        return remapped

    def _identity_index(self) -> dict[tuple[str, int], list[Item]]:
        if self._identities is None:
            index: dict[tuple[str, int], list[Item]] = defaultdict(list)
            for item in self.previous:
                mid = item.meta.get("message_id")
                if item.kind == "mail" and isinstance(mid, str) and _normal_id(mid):
                    index[(_normal_id(mid), item.size)].append(item)
            self._identities = dict(index)
        return self._identities

    def _fetch(
        self, session: ImapSession, folder: Folder, status: FolderStatus, uids: list[int]
    ) -> bool:
        """Download ``uids`` in batches; True when every one was given (or is gone)."""
        wanted = [
            uid for uid in uids if _message_key(self.user, folder, status, uid) not in self.given
        ]
        got = len(uids) - len(wanted)
        if wanted:

            def refused(uid: int, reason: str) -> None:
                if "no longer in the folder" not in reason:  # expunged meanwhile: not a loss
                    self._skip(folder, f"message UID {uid} cannot be read: {reason}")

            for message in session.fetch_messages(wanted, on_skip=refused):
                self._give(_message_item(self.user, folder, status, message), len(message.body))
                got += 1
        # Fewer than asked: expunged meanwhile, or refused: the next run scans the folder.
        return got == len(uids)

    # ----- giving items -----

    def _carry_flagged(self, kept: dict[int, Item], flags: dict[int, Any], folder: Folder) -> None:
        for uid, item in kept.items():
            self._give(_carried(item, folder, tuple(flags.get(uid, before_flags(item)))))

    def _carry(self, items: Iterable[Item], folder: Folder | None = None) -> None:
        for item in items:
            self._give(_carried(item, folder, None))

    def _carry_folder(self, wire: str) -> None:
        before = self.folders.get(wire)
        if before is not None:
            self._carry([*before.messages.values(), *([before.item] if before.item else [])])

    def _carry_rest(self) -> None:
        """The mailbox failed: folders not read keep their previous state in this point."""
        with contextlib.suppress(ReaderClosed):
            for wire in self.folders:
                if wire not in self.done:
                    self._carry_folder(wire)

    def _give_folder(
        self, folder: Folder, status: FolderStatus, *, complete: bool, count: int | None = None
    ) -> None:
        messages = status.messages if count is None else count
        self._give(_folder_item(self.user, folder, status, messages, complete))

    def _give(self, item: SourceItem, body_bytes: int = 0) -> None:
        """Hand ``item`` to the run; ``body_bytes``: its content held in memory (a fetched
        body), which the buffer's bound counts."""
        if item.key in self.given:
            return
        self.buffer.put(item, ENTRY_BYTES + body_bytes)
        self.given.add(item.key)

    def _skip(self, folder: Folder, reason: str) -> None:
        self.buffer.put(Skipped(self.user, _display_path(folder), reason), 0)


# ----- items -----


def _message_key(user: str, folder: Folder, status: FolderStatus, uid: int) -> str:
    return f"{user}/imap/{key_part(folder.wire_name)}/{status.uidvalidity}/{uid}"


def _message_item(user: str, folder: Folder, status: FolderStatus, message: Message) -> SourceItem:
    body = message.body
    meta = _message_meta(
        folder, status.uidvalidity, message.uid, message.flags, message.internal_date
    )
    meta["message_id"] = _message_id(body)
    meta.update(headers_of(body))
    return SourceItem(
        key=_message_key(user, folder, status, message.uid),
        user=user,
        kind="mail",
        path=_display_path(folder),
        size=len(body),
        mtime=message.internal_date.timestamp(),
        mode=MESSAGE_MODE,
        meta=meta,
        change_token=f"{status.uidvalidity}:{message.uid}",
        found_in=None,
        opener=lambda: io.BytesIO(body),
    )


def _remapped_item(
    user: str, folder: Folder, status: FolderStatus, envelope: Envelope, same: Item
) -> SourceItem:
    meta = _message_meta(
        folder, status.uidvalidity, envelope.uid, envelope.flags, envelope.internal_date
    )
    for name in ("message_id", "subject", "from", "to", "date"):
        meta[name] = same.meta.get(name, "")
    return SourceItem(
        key=_message_key(user, folder, status, envelope.uid),
        user=user,
        kind="mail",
        path=_display_path(folder),
        size=same.size,
        mtime=envelope.internal_date.timestamp(),
        mode=MESSAGE_MODE,
        meta=meta,
        change_token=f"{status.uidvalidity}:{envelope.uid}",
        found_in=None,
        opener=_gone,
        previous=same,
    )


def _carried(item: Item, folder: Folder | None, flags: tuple[str, ...] | None) -> SourceItem:
    """A previous item given again (new flags, or as it was): the executor keeps its content."""
    meta = {k: v for k, v in item.meta.items() if k != "change_token"}
    if folder is not None:
        meta["role"] = folder.role
        path = _display_path(folder) if item.kind == "mail" else item.path
    else:
        path = item.path
    if flags is not None:
        meta["imap_flags"] = _stored_flags(flags)
        meta["flags"] = _maildir_flags(flags)
    return SourceItem(
        key=item.key,
        user=item.user,
        kind=item.kind,
        path=path,
        size=item.size,
        mtime=item.mtime,
        mode=item.mode,
        meta=meta,
        change_token=str(item.meta.get("change_token", "")),
        found_in=None,
        opener=_gone,
    )


def _folder_item(
    user: str, folder: Folder, status: FolderStatus, messages: int, complete: bool
) -> SourceItem:
    meta: dict[str, Any] = {
        "source": "imap",
        "folder_wire": folder.wire_name,
        "uidvalidity": status.uidvalidity,
        "uidnext": status.uidnext,
        # An incomplete folder is read whole next time: no change tracking from it.
        "highestmodseq": status.highestmodseq if complete else None,
        "role": folder.role,
        "separator": folder.separator,
        "messages": messages,
        "complete": complete,
    }
    return SourceItem(
        key=f"{user}/imap-folder/{key_part(folder.wire_name)}",
        user=user,
        kind="folder",
        path=_display_path(folder),
        size=0,
        mtime=0.0,
        mode=0o700,
        meta=meta,
        change_token=(
            f"{status.uidvalidity}:{status.uidnext}:{meta['highestmodseq']}:{messages}:{complete}"
        ),
        found_in=None,
        opener=lambda: io.BytesIO(b""),
    )


def _message_meta(
    folder: Folder, uidvalidity: int, uid: int, flags: Sequence[str], internal_date: datetime
) -> dict[str, Any]:
    return {
        "source": "imap",
        "folder_wire": folder.wire_name,
        "uidvalidity": uidvalidity,
        "uid": uid,
        "imap_flags": _stored_flags(flags),
        "flags": _maildir_flags(flags),
        "internal_date": internal_date.isoformat(),
        "role": folder.role,
    }


def _gone() -> BinaryIO:
    """A carried item whose content the repository lost: read again by the next run (its folder
    no longer adds up, so the next run scans it whole)."""
    raise OSError(errno.ENOENT, "its content is no longer in the repository")


# ----- helpers -----


def _previous_folders(previous: list[Item]) -> dict[str, _FolderState]:
    """The previous restore point's folders by wire name, with the messages of their current
    UIDVALIDITY; messages of another UIDVALIDITY are only candidates for re-mapping."""
    folders: dict[str, _FolderState] = defaultdict(_FolderState)
    for item in previous:
        if item.kind == "folder" and item.meta.get("source") == "imap":
            folders[str(item.meta.get("folder_wire"))].item = item
    for item in previous:
        wire = item.meta.get("folder_wire")
        if item.kind != "mail" or item.meta.get("source") != "imap" or wire not in folders:
            continue
        state = folders[str(wire)]
        uid = item.meta.get("uid")
        if state.meta("uidvalidity") == item.meta.get("uidvalidity") and isinstance(uid, int):
            state.messages[uid] = item
    return dict(folders)


def _unchanged(before: _FolderState, status: FolderStatus) -> bool:
    return (
        before.complete
        and status.highestmodseq is not None
        and before.meta("uidvalidity") == status.uidvalidity
        and before.meta("uidnext") == status.uidnext
        and before.meta("highestmodseq") == status.highestmodseq
    )


def before_flags(item: Item) -> tuple[str, ...]:
    flags = item.meta.get("imap_flags")
    return tuple(str(f) for f in flags) if isinstance(flags, list) else ()


def _stored_flags(flags: Iterable[str]) -> list[str]:
    return [flag for flag in flags if flag.lower() != "\\recent"]


def _maildir_flags(flags: Iterable[str]) -> str:
    return "".join(
        sorted({_MAILDIR_LETTERS[f.lower()] for f in flags if f.lower() in _MAILDIR_LETTERS})
    )


def _display_path(folder: Folder) -> str:
    return "/".join(display(part) for part in folder.path) or display(folder.wire_name)


def _message_id(body: bytes) -> str:
    """The Message-ID header (unfolded), "" if none; best effort on any bytes."""
    end = body.find(b"\n\n")
    crlf = body.find(b"\r\n\r\n")
    limit = min(x for x in (end, crlf, 64 * 1024) if x >= 0)
    match = _MESSAGE_ID.search(body[:limit])
    if match is None:
        return ""
    value = re.sub(rb"\r?\n[ \t]", b" ", match.group(1)).strip()
    return value.decode("utf-8", "replace")


def _normal_id(message_id: str) -> str:
    """Message-IDs compared without spaces, angle brackets or case differences."""
    return message_id.strip().strip("<>").strip().lower()


def _why(error: BaseException) -> str:
    return display(getattr(error, "message", None) or str(error) or type(error).__name__)


def _unreachable(access: ImapAccess, error: ImapError) -> str:
    endpoint = access.endpoint
    return f"IMAP server {endpoint.host}:{endpoint.port} cannot be used: {_why(error)}"
