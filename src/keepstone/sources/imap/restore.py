"""Putting messages back into an Imap organization's mailboxes.

Messages go to one user over one connection, folder by folder: in place (each to the folder it
was backed up from, found again by its exact wire name, else created from its display path), or
all into one requested folder (created with the server's separator). Collisions are decided by
Message-ID against what the folder held before the restore (one ``message_ids()`` per folder);
a message without one never collides. Messages are appended in batches bounded in count and
bytes (one ``MULTIAPPEND`` each where the server has it), with their flags and INTERNALDATE;
overwrite appends the new copy before it expunges the old (never zero copies).

A lost connection or throttling retries the batch with backoff; before retrying, what the batch
already put in is found again (Message-IDs and UIDNEXT), so nothing is lost or duplicated.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from keepstone.domain.errors import InvalidInput, KeepstoneError
from keepstone.engine import Item
from keepstone.sources.imap.errors import ImapError, ProtocolError, Throttled
from keepstone.sources.imap.model import Appended, Folder, ImapAccess
from keepstone.sources.imap.session import ImapSession, connect
from keepstone.sources.targets import Collision, Outcome, Placement, Reader, from_imap

BATCH_COUNT = 100  # messages per APPEND command (MULTIAPPEND)
BATCH_BYTES = 8 << 20  # and bytes: under the adapter's own bound, so one batch is one command
ATTEMPTS = 5  # tries of one batch before its messages fail
BACKOFF = 0.5  # seconds before the second try, doubled for each later one
BACKOFF_MOST = 60.0  # a server's Retry-After hint is honoured up to this
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
T = TypeVar("T")


def requested_folder(folder: str | None) -> tuple[str, ...] | None:
    """The display parts of a ``folder`` request (``a/b``); names are data: an empty part or a
    control character is refused before anything is written."""
    if not folder:
        return None
    parts = tuple(folder.strip("/").split("/"))
    for part in parts:
        if not part.strip() or part in (".", "..") or _CONTROL.search(part):
            raise InvalidInput(f"{folder!r} is not a folder path (names joined by '/')", "folder")
    return parts


def message_id(item: Item) -> str:
    """The item's Message-ID as ``message_ids()`` gives them (whitespace removed); "" if none."""
    return re.sub(r"\s+", "", str(item.meta.get("message_id") or ""))


def appended(item: Item, body: bytes, unread: bool = False) -> Appended:
    """What APPEND sends of ``item``: its flags as backed up (not ``\\Recent``, which only the
    server sets, nor ``\\Seen`` when it goes back ``unread``) and its INTERNALDATE."""
    dropped = ("\\recent", "\\seen") if unread else ("\\recent",)
    flags = tuple(
        str(f) for f in item.meta.get("imap_flags") or () if str(f).lower() not in dropped
    )
    stamp = item.meta.get("internal_date")
    return Appended(body, flags, datetime.fromisoformat(stamp) if stamp else None)


class ImapTarget:
    """An Imap organization: its configured users, and messages put back over IMAP."""

    def __init__(
        self,
        access: ImapAccess,
        sleep: Callable[[float], None] = time.sleep,
        *,
        unread: bool = False,
    ) -> None:
        self.access = access
        self.sleep = sleep
        self.unread = unread  # messages go back without \\Seen

    def marking_unread(self) -> ImapTarget:
        """The same organization, putting messages back unread."""
        return ImapTarget(self.access, self.sleep, unread=True)

    def users(self) -> list[str]:
        return list(self.access.logins)

    def put_back(self, items: Sequence[Item], read: Reader, where: Placement) -> Iterator[Outcome]:
        if any(item.kind != "mail" for item in items):
            raise InvalidInput("an Imap organization holds mailboxes only, no files", "ids")
        if not all(from_imap(item) for item in items):
            raise InvalidInput(
                "messages backed up from a Local organization cannot be put back into an Imap "
                "one; save them instead",
                "ids",
            )
        folder = requested_folder(where.folder)
        if where.user not in self.access.logins:
            raise InvalidInput(
                f"user '{where.user}' does not exist in the organization", "userName"
            )
        return _Restore(self, items, read, where, folder).run()

    def connect(self, user: str) -> ImapSession:
        return connect(self.access.endpoint, self.access.logins[user])


@dataclass
class _FolderState:
    """What one target folder held before the restore, and what this restore did to it."""

    folder: Folder
    before: dict[str, list[int]]  # Message-ID -> UIDs, as it was before the restore
    uidnext: int  # the next UID as this restore last knew it
    added: dict[str, int] = field(default_factory=dict)  # Message-ID -> copies appended here
    removed: dict[str, int] = field(default_factory=dict)  # Message-ID -> old copies expunged

    def expected(self, mid: str) -> int:
        """How many copies of ``mid`` the folder holds, by what this restore knows."""
        return len(self.before.get(mid, ())) + self.added.get(mid, 0) - self.removed.get(mid, 0)


class _Restore:
    def __init__(
        self,
        target: ImapTarget,
        items: Sequence[Item],
        read: Reader,
        where: Placement,
        folder: tuple[str, ...] | None,
    ) -> None:
        self.target, self.items, self.read, self.where = target, items, read, where
        self.folder = folder
        self.session: ImapSession | None = None
        self.gave_up: ImapError | None = None
        self.landed = 0

    def run(self) -> Iterator[Outcome]:
        try:
            yield from self._run()
        finally:
            if self.session is not None:
                self.session.close()

    def _run(self) -> Iterator[Outcome]:
        try:
            session = self._retrying(self._session)
        except ImapError as error:
            yield from (Outcome(item, error=error) for item in self.items)
            return
        if self.where.collision is Collision.OVERWRITE and "UIDPLUS" not in session.capabilities:
            raise InvalidInput(
                "the server cannot remove single messages (no UIDPLUS): overwrite is not "
                "possible, use skip or keepBoth",
                "collisionPolicy",
            )
        if self.folder is not None:
            try:  # a hostile part raises InvalidInput here: a 400, nothing written
                chosen = self._ensure(self.folder)
            except ImapError as error:
                yield from (Outcome(item, error=error) for item in self.items)
                return
            yield from self._into(chosen, self.items)
            return
        try:
            existing = self._retrying(lambda: self._session().folders())
        except ImapError as error:
            yield from (Outcome(item, error=error) for item in self.items)
            return
        known = {f.wire_name: f for f in existing}
        # a special-use folder named otherwise on this server (Sent, "Gesendete Objekte")
        roles = {f.role: f for f in existing if f.role and f.selectable}
        for (wire, path, role), group in _by_folder(self.items).items():
            if self.gave_up is not None:
                yield from (Outcome(item, error=self.gave_up) for item in group)
                continue
            try:
                chosen = known.get(wire) or roles.get(role) or self._ensure(tuple(path.split("/")))
            except (ImapError, InvalidInput) as error:
                yield from (Outcome(item, error=error) for item in group)
                continue
            yield from self._into(chosen, group)

    # ----- one folder -----

    def _into(self, folder: Folder, items: Sequence[Item]) -> Iterator[Outcome]:
        """Put ``items`` into ``folder``: the collision check once, then batch by batch."""
        try:
            state = self._retrying(lambda: self._open(folder))
        except ImapError as error:
            yield from (Outcome(item, error=error) for item in items)
            return
        todo: list[Item] = []
        for item in items:
            mid = message_id(item)
            if mid in state.before and self.where.collision is Collision.SKIP:
                yield Outcome(item)
            else:
                todo.append(item)
        # without MULTIAPPEND, one message per APPEND: a refusal or a cut then concerns one
        most = BATCH_COUNT if "MULTIAPPEND" in self._session().capabilities else 1
        for batch in _batches(todo, most):
            if self.gave_up is not None:
                yield from (Outcome(item, error=self.gave_up) for item in batch)
            else:
                yield from self._batch(state, batch)

    def _open(self, folder: Folder) -> _FolderState:
        session = self._session()
        status = session.select(folder, readonly=False)
        return _FolderState(folder, session.message_ids(), status.uidnext)

    def _batch(self, state: _FolderState, batch: Sequence[Item]) -> Iterator[Outcome]:
        """Append one batch; the items that cannot be read or that the server refuses fail
        alone, the rest is retried until in (or the retries are spent)."""
        messages: list[tuple[Item, Appended]] = []
        for item in batch:
            try:
                messages.append((item, appended(item, self.read(item).read(), self.target.unread)))
            except (OSError, ValueError, KeepstoneError) as error:
                yield Outcome(item, error=_unreadable(error))
        try:
            self._append(state, messages)
        except ImapError as error:
            # what went in before the failure (found again after a cut) is restored
            landed, rest = messages[: self.landed], messages[self.landed :]
            yield from self._done(state, [item for item, _ in landed])
            if isinstance(error, ProtocolError) and len(rest) > 1:
                # refused (too large, bad date...): a MULTIAPPEND is refused whole (it is
                # atomic), so each message goes on its own to find the one at fault
                for one in rest:
                    yield from self._single(state, one)
            else:
                yield from (Outcome(item, error=error) for item, _ in rest)
            return
        yield from self._done(state, [item for item, _ in messages])

    def _single(self, state: _FolderState, message: tuple[Item, Appended]) -> Iterator[Outcome]:
        try:
            self._append(state, [message])
        except ImapError as error:
            yield Outcome(message[0], error=error)
            return
        yield from self._done(state, [message[0]])

    def _done(self, state: _FolderState, written: list[Item]) -> Iterator[Outcome]:
        """``written`` are in the folder; to overwrite, their old copies go now (the new ones
        are in: never zero copies). An old copy that cannot be removed fails its item."""
        old: dict[str, list[int]] = {}
        if self.where.collision is Collision.OVERWRITE:
            for item in written:
                mid = message_id(item)
                if mid in state.before and mid not in state.removed:
                    old[mid] = state.before[mid]
        try:
            if old:
                self._retrying(lambda: self._expunge(state, old))
        except ImapError as error:
            for item in written:
                fails = message_id(item) in old
                yield Outcome(item, restored=not fails, error=_kept_old(error) if fails else None)
            return
        yield from (Outcome(item, restored=True) for item in written)

    def _append(self, state: _FolderState, messages: list[tuple[Item, Appended]]) -> None:
        """Append ``messages`` once, whatever the connection does: after a retryable failure,
        the part already in is found and only the rest is sent again."""
        rest, unsure = messages, False  # unsure: an attempt may have put part of rest in
        self.landed = 0  # how many of messages are known to be in, when this raises

        def attempt() -> None:
            nonlocal rest, unsure
            if unsure:
                count = self._landed(state, rest)
                rest, unsure = rest[count:], False
                self.landed += count
                if not rest:
                    return
            unsure = True
            uids = self._session().append(state.folder, [m for _, m in rest])
            self._count(state, rest, uids)

        self._retrying(attempt)

    def _landed(self, state: _FolderState, sent: list[tuple[Item, Appended]]) -> int:
        """How many of ``sent`` (a prefix: APPENDs go in order, a MULTIAPPEND all or none)
        the server holds after a failed attempt: a message with a Message-ID is in when the
        folder has more copies than expected; between what the Message-IDs prove, the UIDs
        the folder handed out since the last known UIDNEXT decide."""
        session = self._session()
        status = session.select(state.folder, readonly=False)
        now = session.message_ids()
        low, high = 0, len(sent)
        earlier: dict[str, int] = {}  # copies of the same Message-ID sent before this one
        for index, (item, _) in enumerate(sent):
            mid = message_id(item)
            if not mid:
                continue
            earlier[mid] = earlier.get(mid, 0) + 1
            if len(now.get(mid, ())) >= state.expected(mid) + earlier[mid]:
                low = index + 1
            else:
                high = min(high, index)
        count = max(low, min(high, status.uidnext - state.uidnext))
        self._count(state, sent[:count], [])
        state.uidnext = status.uidnext  # every UID handed out so far is accounted for
        return count

    def _count(
        self, state: _FolderState, sent: list[tuple[Item, Appended]], uids: Sequence[int | None]
    ) -> None:
        for item, _ in sent:
            mid = message_id(item)
            if mid:
                state.added[mid] = state.added.get(mid, 0) + 1
        known = [uid for uid in uids if uid is not None]
        state.uidnext = max(known) + 1 if known else state.uidnext + len(sent)

    def _expunge(self, state: _FolderState, old: dict[str, list[int]]) -> None:
        session = self._session()
        session.select(state.folder, readonly=False)  # again: the connection may be new
        session.expunge_uids(sorted({uid for uids in old.values() for uid in uids}))
        for mid, uids in old.items():
            state.removed[mid] = len(uids)

    # ----- the connection -----

    def _ensure(self, path: tuple[str, ...]) -> Folder:
        return self._retrying(lambda: self._session().ensure_folder(path))

    def _session(self) -> ImapSession:
        if self.session is not None and not self.session.alive:
            with contextlib.suppress(ImapError):
                self.session.close()
            self.session = None
        if self.session is None:
            self.session = self.target.connect(self.where.user)
        return self.session

    def _retrying(self, action: Callable[[], T]) -> T:
        for attempt in range(ATTEMPTS):
            try:
                return action()
            except ImapError as error:
                if not error.retryable or attempt == ATTEMPTS - 1:
                    if error.retryable:
                        self.gave_up = error
                    raise
                self._pause(error, attempt)
        raise AssertionError("unreachable")

    def _pause(self, error: ImapError, attempt: int) -> None:
        """Wait before the next try: the server's hint when it gave one, else doubling."""
        hint = error.retry_after if isinstance(error, Throttled) else None
        self.target.sleep(min(BACKOFF_MOST, hint if hint is not None else BACKOFF * 2**attempt))
        if self.session is not None and not isinstance(error, Throttled):
            with contextlib.suppress(ImapError):
                self.session.close()
            self.session = None


def _by_folder(items: Sequence[Item]) -> dict[tuple[str, str, str], list[Item]]:
    """Items grouped by the folder they were backed up from (wire name, display path,
    special-use role), in first-seen order."""
    groups: dict[tuple[str, str, str], list[Item]] = {}
    for item in items:
        role = str(item.meta.get("role") or "")
        key = (str(item.meta.get("folder_wire") or ""), item.path, role)
        groups.setdefault(key, []).append(item)
    return groups


def _batches(items: Sequence[Item], most: int) -> Iterator[Sequence[Item]]:
    """Consecutive runs of at most ``most`` items and BATCH_BYTES bytes (at least one)."""
    start, total = 0, 0
    for index, item in enumerate(items):
        if index > start and (index - start >= most or total + item.size > BATCH_BYTES):
            yield items[start:index]
            start, total = index, 0
        total += item.size
    if start < len(items):
        yield items[start:]


def _unreadable(error: OSError | ValueError | KeepstoneError) -> ImapError:
    return ProtocolError(f"the backed-up message cannot be read: {error}")


def _kept_old(error: ImapError) -> ImapError:
    return ProtocolError(f"the restored copy is in, but the old one could not be removed: {error}")
