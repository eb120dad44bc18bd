"""Local organization connector: each user directory holds a Maildir++ ``Mail`` and a ``OneDrive``.

Layout under the organization root::

    <root>/<user>/Mail/{cur,new,tmp}              the Inbox
    <root>/<user>/Mail/.<Name>[.<Sub>]/{cur,...}  other folders, names in modified UTF-7
    <root>/<user>/OneDrive/...                    a plain file tree

The users of an organization are trusted with nothing: every directory is reached from the root
through ``confined`` (directory descriptors, no link ever followed, no mount crossed), on scans
and on restores alike. A user directory that is a link is not a user; a link, mount, FIFO or
device below it is skipped on backup and reported through ``on_skip`` (a per-item warning), and
refused on restore (``confined.Refused``, a 400).

Scans are streaming generators in a deterministic (name-sorted) order and cost one ``stat`` per
file (mail: one ``fstat`` on the descriptor the scan opens it with; a browse listing reads the
header block through it, a backup's item keeps it and the run reads the message and its headers
through it once). An item keeps its directory open, so reading it later (again) opens it by name
in that directory, never by path. A bad
item (unreadable, vanished, a link, a FIFO) is skipped and reported; only a user's own
directory, ``Mail`` or ``OneDrive`` failing ends that part of the user's scan with an error.

Names are data (``names``): an item's ``path`` is always valid Unicode, and a name that is not
UTF-8 keeps its exact bytes in the item's metadata (``path_bytes``, ``folder_dir_bytes``,
``file_name_bytes``), which restores use to write it back byte for byte.

Change tokens: a OneDrive file's is ``size:mtime_ns:inode:ctime_ns`` (ctime catches a rewrite
that restored the old mtime, as ``touch -r``, ``cp -p`` and ``rsync -t`` do); a message's is
``unique:size:mtime_ns:inode`` without ctime, because every flag change renames a message and so
changes its ctime: with ctime, marking a mailbox read would re-read all of it. The cost of that
choice: a message rewritten in place with the same size, its mtime put back, is not read again
until it changes otherwise (Maildir messages are immutable by convention, and only its owner can
rewrite it).

Incrementals (issue 15): after each Maildir folder and each OneDrive directory a backup gives a
state item (``kind="folder"``, no content) holding, per file name, the change token and mode of
the item given for it. The next run hands an item over as its previous JSON (a
``CarriedBlock``: not decoded, not encoded again) when the previous run recorded that very name in
that very directory with the same token and mode, and the previous point's record still holds
that token (an item recorded while it changed has an empty one) and names chunks still in the
repository; everything an item holds is then what it held (key, folder and flags come from the
name, size, mtime and inode from the token, headers from the same content). Anything else goes
the long way, as before. A directory's state is paged (``local_state``: a page of entries at a
time, in name order, so a Maildir folder's ``cur`` and ``new`` are scanned as one listing in name
order). What is safe to skip, and what is not:

- A Maildir folder is skipped whole (not listed, no file looked at) when its ``cur`` and ``new``
  are the same directories (inode) with the same mtime and ctime as when the previous run listed
  them. Every delivery, flag change, move or removal creates, renames or unlinks an entry there,
  which sets both; ``touch -r`` can put the mtime back, never the ctime. A change within the same
  tick of the file system's coarse clock as the listing would leave both as they were, so a stamp
  is kept only when its times were at least ``SETTLED_NS`` older than the clock at the listing,
  and never when they are ahead of it (a clock set back). Times are compared for equality, not
  order, so a clock that went back between two runs cannot make a changed directory look older.
  The cost: a message changed without touching its directory (rewritten in place, ``chmod``,
  ``touch``; the Maildir convention forbids the first, and no mail program does the others) is
  seen when its folder next changes, since then each message's token and mode are compared.
- A OneDrive directory is never skipped whole: its mtime changes when an entry is added, removed
  or renamed, not when a file's content is rewritten in place. Every file still costs one
  ``lstat``; its content is read only when its token (size, mtime, inode, ctime) changed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from keepstone.domain.errors import InvalidInput
from keepstone.engine.model import CarriedRecord
from keepstone.sources.confined import ConfinedRoot, Directory, OpenedFile, Refused
from keepstone.sources.connector import (
    CarriedBlock,
    ContentMeta,
    Part,
    PreviousPoint,
    SkipHandler,
)
from keepstone.sources.connector import Skipped as Skipped  # re-exported: older imports
from keepstone.sources.connector import SourceItem as SourceItem
from keepstone.sources.local_state import STATE_VERSION, Entry, Stamp, StateReader, StateWriter
from keepstone.sources.names import display, is_text, key_part, put_exact

MAIL_DIR = "Mail"
DRIVE_DIR = "OneDrive"
INBOX = "Inbox"
COLLISIONS = ("skip", "overwrite", "keepBoth")

# Only the header block is parsed, and never more than this much of a message.
HEADER_LIMIT = 64 * 1024
_READ_CHUNK = 8 * 1024
_HEADERS = ("subject", "from", "to", "date")
# Maildir flags (uppercase) plus Dovecot keyword letters (lowercase) are kept as they are.
_FLAG_CHARS = re.compile(r"[A-Za-z]*")
_MAIL_SUBS = ("cur", "new")
# A Maildir folder is skipped whole only when the times of its cur/ and new/ were at least this
# much older than the clock when they were last listed: a change in the same tick of the
# (coarse) file system clock as the listing would leave them as they were. Dovecot's Maildir
# sync waits out the same race.
SETTLED_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class LocalUser:
    name: str
    has_mailbox: bool
    has_onedrive: bool


def _ignore(_: Skipped) -> None:
    pass


def _item_of_file(
    st: os.stat_result,
    *,
    key: str,
    user: str,
    kind: str,
    path: str,
    meta: dict[str, Any],
    change_token: str,
    found_in: tuple[Path, str],
    opener: Callable[[], OpenedFile],
    content_meta: ContentMeta | None = None,
) -> SourceItem:
    """The item of a file whose status is ``st``; reading it calls ``opener``: the descriptor
    the scan opened (a backup's message, read once), else an open by name in the directory it
    was found in (a message re-flagged since the scan is found again by its unique name)."""
    mode = stat.S_IMODE(st.st_mode)
    return SourceItem(
        key,
        user,
        kind,
        path,
        st.st_size,
        st.st_mtime,
        mode,
        meta,
        change_token,
        found_in,
        opener,
        content_meta=content_meta,
    )


@dataclass(slots=True)
class _FolderIndex:
    """The unique names a Maildir folder holds, as (sub, file name); valid while the mtimes of
    ``cur``/``new`` are unchanged."""

    stamp: tuple[int, int]
    files: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class _DriveLevel:
    """One directory of a OneDrive scan in progress: its entries still to visit, and what the
    backup carries and records of it."""

    directory: Directory
    entries: Iterator[os.DirEntry[str]]
    rel: str  # below OneDrive, "" at its root
    state: StateReader | None  # what the previous run found here (None: nothing)
    writer: StateWriter | None  # None: no state kept (a name that is not text, or not a backup)
    block: list[CarriedRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Folder:
    path: str  # "Inbox", "Archive/2024" (text, for people)
    dir_name: str  # "", ".Archive.2024" (the directory's own name)


class LocalOrganization:
    """One Local organization. Restores into one folder should not run concurrently."""

    def __init__(
        self,
        root: Path,
        on_skip: SkipHandler | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.root = root
        self._clock_ns = clock_ns  # settles Maildir stamps (``SETTLED_NS``)
        self._skips = 0
        self.confined = ConfinedRoot(root)
        self._on_skip = on_skip or _ignore
        # Restoring a whole mailbox checks collisions per message: cache each folder's listing
        # instead of rescanning it every time (quadratic for large folders).
        self._indexes: dict[tuple[str, str], _FolderIndex] = {}
        # The run's previous restore point: a message whose change token it already holds keeps
        # the headers recorded there, and is not opened at all (an incremental reads only what
        # changed).
        self._previous = PreviousPoint()
        self._paths: dict[str, Path] = {}  # a directory's path below the root -> its Path

    # ----- reading -----

    def users(self) -> list[LocalUser]:
        """Users sorted by name: real directories (not links, not mounts) with a UTF-8 name;
        names starting with "." are ignored."""
        users = []
        with self.confined.open() as root:
            for entry in root.entries():
                if not entry.name.startswith(".") and self._may_be_user(entry):
                    user = self._describe_user(root, entry.name)
                    if user is not None:
                        users.append(user)
        return users

    def _may_be_user(self, entry: os.DirEntry[str]) -> bool:
        name = entry.name
        if entry.is_symlink():
            self._skip(name, name, "is a symbolic link, not a user directory")
            return False
        if not entry.is_dir(follow_symlinks=False):
            return False
        if not is_text(name):
            self._skip(display(name), name, "is not a valid UTF-8 name, so not a user")
            return False
        return True

    def _describe_user(self, root: Directory, name: str) -> LocalUser | None:
        """What the user has; None if the directory is a mount (or became a link). Unknown is
        not absent: an unreadable user directory is listed with both trees, so that reading
        them raises for that user rather than the trees vanishing."""
        try:
            user_dir = root.child(name)
        except Refused as refused:
            self._skip(name, name, f"{refused.why}, not a user directory")
            return None
        except OSError:
            return LocalUser(name, True, True)
        with user_dir:
            return LocalUser(name, _may_exist(user_dir, MAIL_DIR), _may_exist(user_dir, DRIVE_DIR))

    def mail_folders(self, user: str) -> list[str]:
        """Folder paths, "Inbox" first; empty if the user has no mailbox."""
        mail = self._area(user, MAIL_DIR)
        if mail is None:
            return []
        with mail:
            return [folder.path for folder in self._folders(user, mail)]

    def mailbox_items(self, user: str) -> Iterator[SourceItem]:
        """Every message in ``cur/`` and ``new/`` of every folder (never ``tmp/``), once each."""
        self._check_user(user)
        return (item for item in self._scan_mailbox(user) if isinstance(item, SourceItem))

    def onedrive_items(self, user: str) -> Iterator[SourceItem]:
        """Regular files of the user's OneDrive, depth first in name order; links, FIFOs,
        devices and mounts are skipped and reported."""
        self._check_user(user)
        return (item for item in self._scan_drive(user) if isinstance(item, SourceItem))

    # ----- the backup connector (``sources.connector``) -----

    def start(self, plan: Sequence[tuple[str, Sequence[Part]]], previous: PreviousPoint) -> None:
        """Nothing to read ahead: change tokens carry the state, and the scans are lazy; the
        previous point spares reading unchanged messages' headers."""
        self._previous = previous

    def items(self, user: str, part: Part) -> Iterator[SourceItem | CarriedBlock]:
        """As ``mailbox_items``/``onedrive_items``, plus what an incremental needs: items found
        unchanged without decoding them, in ``CarriedBlock``s, and after each Maildir folder and
        OneDrive directory a state item (``kind="folder"``) that the next run compares with."""
        self._check_user(user)
        if part == "mailbox":
            return self._scan_mailbox(user, backup=True)
        return self._scan_drive(user, backup=True)

    def close(self) -> None:
        """Nothing is held between items (each item's directory closes with it)."""

    # ----- restoring -----

    def restore_message(
        self,
        user: str,
        folder: str,
        data: bytes | BinaryIO,
        flags: str,
        unique: str | None,
        collision: str,
        *,
        dir_name: str | None = None,
    ) -> Path | None:
        """Deliver a message into ``folder``'s ``cur/`` (via ``tmp/``); None if skipped.
        ``dir_name``, the folder's exact Maildir++ directory as backed up, wins over ``folder``
        (a path of names, encoded here)."""
        _check_collision(collision)
        flags = _normalize_flags(flags)
        if unique is not None:
            _check_unique(unique)
        dir_name = _folder_dir_name(folder) if dir_name is None else _checked_dir_name(dir_name)
        self._check_user(user)
        parts = [user, MAIL_DIR, dir_name] if dir_name else [user, MAIL_DIR]
        with contextlib.ExitStack() as opened:
            folder_dir = opened.enter_context(self.confined.walk(parts, create=True))
            subs = {
                sub: opened.enter_context(folder_dir.child(sub, create=True, mode=0o700))
                for sub in _ALL_SUBS
            }
            if dir_name:
                # Courier and Dovecot mark Maildir++ subfolders with this empty file.
                folder_dir.touch("maildirfolder")
            name = self._deliver((user, dir_name), subs, data, flags, unique, collision)
        return None if name is None else self.root.joinpath(*parts, "cur", name)

    def _deliver(
        self,
        folder_key: tuple[str, str],
        subs: dict[str, Directory],
        data: bytes | BinaryIO,
        flags: str,
        unique: str | None,
        collision: str,
    ) -> str | None:
        index, existing = self._lookup(folder_key, subs, unique)
        if existing is not None and collision == "skip":
            return None
        if unique is None or (existing is not None and collision == "keepBoth"):
            unique = _fresh_unique(index)
            existing = None
        name = f"{unique}:2,{flags}"
        subs["cur"].write_file(name, data, temp_dir=subs["tmp"])
        # Overwrite: the old copy goes only after the new one is in place (never zero copies).
        if existing is not None and existing != ("cur", name):
            subs[existing[0]].unlink(existing[1])
        index.files[unique] = ("cur", name)
        index.stamp = _folder_stamp(subs)
        return name

    def restore_file(
        self,
        user: str,
        path: str,
        data: bytes | BinaryIO,
        mtime: float,
        mode: int,
        collision: str,
    ) -> Path | None:
        """Write a OneDrive file atomically with its mtime and mode (never setuid, setgid or
        sticky); None if skipped. ``path`` may hold names that are not UTF-8 (surrogate
        escapes, as ``os.fsdecode`` gives them)."""
        _check_collision(collision)
        parts = _drive_parts(path)
        self._check_user(user)
        with self.confined.walk([user, DRIVE_DIR, *parts[:-1]], create=True) as parent:
            name = parts[-1]
            if parent.lstat(name) is not None:
                if collision == "skip":
                    return None
                if collision == "keepBoth":
                    name = _restored_name(parent, name)
            parent.write_file(name, data, mode=mode, mtime=mtime)
        return self.root.joinpath(user, DRIVE_DIR, *parts[:-1], name)

    # ----- helpers needing the instance -----

    def _check_user(self, user: str) -> None:
        if not user or user.startswith(".") or "/" in user or "\0" in user or not is_text(user):
            raise InvalidInput(f"not a user of this organization: {display(user)!r}", "user")

    def _skip(self, user: str, path: str, reason: str) -> None:
        self._skips += 1
        self._on_skip(Skipped(user, display(path), reason))

    def _skip_error(self, user: str, path: str, error: OSError | Refused) -> None:
        self._skip(user, path, _reason(error))

    def _found_in(self, directory: Directory, name: str) -> tuple[Path, str]:
        """Where an item was found (``SourceItem.source_path``): its directory's path, made
        once per directory, and its name, joined only when asked."""
        base = self._paths.get(directory.path)
        if base is None:
            base = self._paths[directory.path] = self.root / directory.path
        return base, name

    def _area(self, user: str, area: str) -> Directory | None:
        """The user's ``Mail`` or ``OneDrive``, None when absent; a link is refused."""
        self._check_user(user)
        with self.confined.walk([user]) as user_dir:
            try:
                return user_dir.child(area)
            except FileNotFoundError:
                return None

    def _lookup(
        self, folder_key: tuple[str, str], subs: dict[str, Directory], unique: str | None
    ) -> tuple[_FolderIndex, tuple[str, str] | None]:
        """The folder's index and where ``unique`` is now, if anywhere."""
        index = self._index(folder_key, subs)
        existing = index.files.get(unique) if unique is not None else None
        # Directory mtimes are coarse (a few ms): a hit is cheap to confirm, so a message moved
        # in the same tick as our last write is looked up again rather than trusted.
        if existing is not None and subs[existing[0]].lstat(existing[1]) is None:
            index = self._index(folder_key, subs, rescan=True)
            existing = index.files.get(unique) if unique is not None else None
        return index, existing

    def _index(
        self, folder_key: tuple[str, str], subs: dict[str, Directory], rescan: bool = False
    ) -> _FolderIndex:
        stamp = _folder_stamp(subs)
        cached = self._indexes.get(folder_key)
        if cached is not None and cached.stamp == stamp and not rescan:
            return cached
        index = _FolderIndex(stamp)
        for sub in _MAIL_SUBS:
            for entry in subs[sub].entries():
                if not entry.name.startswith("."):
                    index.files.setdefault(_split_name(entry.name)[0], (sub, entry.name))
        self._indexes[folder_key] = index
        return index

    # ----- scanning -----

    def _folders(self, user: str, mail: Directory) -> list[_Folder]:
        folders = [_Folder(INBOX, "")]
        for entry in mail.entries():
            name = entry.name
            if len(name) < 2 or not name.startswith("."):
                continue
            if entry.is_symlink():
                self._skip(user, mail.below(name), "is a symbolic link, not followed")
            elif entry.is_dir(follow_symlinks=False) and self._is_maildir(user, mail, name):
                folders.append(_Folder(_folder_path(name), name))
        folders[1:] = sorted(folders[1:], key=lambda folder: folder.path.split("/"))
        return folders

    def _is_maildir(self, user: str, mail: Directory, name: str) -> bool:
        # Skips dot-directories that are not folders (e.g. a ".notmuch" database).
        try:
            with mail.child(name) as folder_dir:
                return any(_may_exist(folder_dir, sub) for sub in _MAIL_SUBS)
        except (OSError, Refused) as error:
            self._skip_error(user, mail.below(name), error)
            return False

    def _scan_mailbox(
        self, user: str, *, backup: bool = False
    ) -> Iterator[SourceItem | CarriedBlock]:
        mail = self._area(user, MAIL_DIR)
        if mail is None:
            return
        # A message caught mid-move may show up in two folders: the key names it, so list it once.
        seen: set[str] = set()
        for folder in self._folders(user, mail):
            yield from self._scan_folder(user, mail, folder, seen, backup)

    def _scan_folder(
        self, user: str, mail: Directory, folder: _Folder, seen: set[str], backup: bool
    ) -> Iterator[SourceItem | CarriedBlock]:
        """One Maildir folder's messages, ``cur`` and ``new`` merged in name order. In a backup:
        skipped whole (its items carried as their previous JSON) when its ``cur``/``new`` are the
        very directories the previous run listed, unchanged since (same inode, mtime and ctime);
        otherwise each message whose name, change token and mode are the ones the previous run
        recorded is carried the same way; the folder's state (``local_state``) comes as it is
        found, its head last."""
        key = f"{user}/mail-folder/{folder.dir_name or '.'}"
        # State is kept only for folders (and below, messages) whose names are text: others go
        # the long way every time.
        keep = backup and is_text(folder.dir_name)
        state = StateReader.of(self._previous, key) if keep else None
        writer = StateWriter(key, user, folder.path) if keep else None
        subs = list(self._folder_subs(user, mail, folder))
        now, skips = self._clock_ns(), self._skips
        stamp = _stamp(subs) if keep else None
        if state is not None and writer is not None and stamp is not None and state.stamp == stamp:
            if (yield from self._carry_folder(user, folder, state, writer, seen)):
                return
            state = StateReader.of(self._previous, key)  # the scan looks names up from the start
        block: list[CarriedRecord] = []
        for sub_dir, entry in self._merged_listing(user, subs):
            unique = entry.name.partition(":")[0]  # the flags only if it goes the long way
            if unique in seen:
                continue
            if not entry.is_file(follow_symlinks=False) and not self._is_file(user, sub_dir, entry):
                continue
            carried_one = self._carry_message(user, state, sub_dir, entry, unique)
            if carried_one is not None:
                block.append(carried_one[0])
                seen.add(unique)
                if writer is not None:
                    writer.add(carried_one[1])
                    if writer.ready:
                        yield from writer.take()
                continue
            if block:
                yield CarriedBlock(user, "mail", folder.path, block)
                block = []
            split = _split_name(entry.name)
            item = self._known_mail_item(user, folder, sub_dir, entry, split)
            if item is None:
                item = self._mail_item(user, folder, sub_dir, entry.name, split, backup)
            if item is not None:
                seen.add(unique)
                if writer is not None and is_text(entry.name):
                    writer.add([entry.name, item.change_token, item.mode])
                yield item
                if writer is not None:
                    yield from writer.take()
        if block:
            yield CarriedBlock(user, "mail", folder.path, block)
        if writer is not None:
            # Trusted for a skip next time only when settled, and when nothing in the folder
            # was skipped (a skipped entry is reported again by every run).
            trusted = stamp is not None and _settled(stamp, now) and self._skips == skips
            yield _state_head(state, writer, stamp if trusted else None)

    def _merged_listing(
        self, user: str, subs: list[Directory]
    ) -> Iterator[tuple[Directory, os.DirEntry[str]]]:
        """The entries of ``cur`` and ``new`` in one name order (the order of the state)."""
        listings = [[(sub, entry) for entry in self._listing(user, sub)] for sub in subs]
        listings = [listing for listing in listings if listing]
        if len(listings) == 1:
            return iter(listings[0])  # new/ is empty between deliveries
        # Two sorted runs: sorting merges them in one pass (heapq.merge with a key function
        # was a Python step per message).
        return iter(sorted(itertools.chain(*listings), key=_entry_name))

    def _carry_folder(
        self,
        user: str,
        folder: _Folder,
        state: StateReader,
        writer: StateWriter,
        seen: set[str],
    ) -> Generator[CarriedBlock | SourceItem, None, bool]:
        """Every message of an unchanged folder as the previous run recorded it, a page of its
        state at a time, without listing or opening anything (Maildir messages are immutable,
        and any delivery, flag change or removal renames or unlinks in ``cur``/``new``); the
        state's pages and head as they were. False when a page's messages cannot all be
        carried: the folder is then scanned, and the messages carried so far (in ``seen``)
        are not given again."""
        for number in state.page_numbers():
            head = number > state.pages
            entries = state.entries_of(number)
            page = None if head else state.record_of(number)
            records = None if entries is None else self._carry_entries(user, entries, seen)
            if records is None or (not head and page is None):
                return False
            if records:
                yield CarriedBlock(user, "mail", folder.path, records)
            if page is not None:
                yield CarriedBlock(user, "folder", folder.path, [page])
                writer.pages += 1
            elif state.version == STATE_VERSION and (same := state.record_of(number)):
                yield CarriedBlock(user, "folder", folder.path, [same])
            else:  # a head of an older version: written again, in pages
                for entry in entries.values():  # type: ignore[union-attr]
                    writer.add(entry)
                    yield from writer.take()
                yield writer.head(state.stamp)
        return True

    def _carry_entries(
        self, user: str, entries: dict[str, Entry], seen: set[str]
    ) -> list[CarriedRecord] | None:
        """The previous JSON of every message of one page of a folder's state; None when one
        of them cannot be carried."""
        records: list[CarriedRecord] = []
        uniques: list[str] = []
        for name, token, _mode in entries.values():
            unique = _split_name(name)[0]
            record = self._previous.carry(f"{user}/mail/{key_part(unique)}", str(token))
            if record is None or unique in seen:
                return None
            records.append(record)
            uniques.append(unique)
        seen.update(uniques)
        return records

    def _carry_message(
        self,
        user: str,
        state: StateReader | None,
        sub_dir: Directory,
        entry: os.DirEntry[str],
        unique: str,
    ) -> tuple[CarriedRecord, Entry] | None:
        """The message's previous JSON and state entry when the previous run recorded this very
        name (so the same folder, unique name and flags) with the same change token and mode:
        everything the item holds is then what it held (its headers were read from the same
        content). None when it must go the long way."""
        part = unique if unique.isascii() else key_part(unique)  # ASCII is text
        same = _as_recorded(state, entry, sub_dir, _token_of_message, part)
        if same is None:
            return None
        record = self._previous.carry(f"{user}/mail/{part}", same[0])
        return None if record is None else (record, [entry.name, *same])

    def _folder_subs(self, user: str, mail: Directory, folder: _Folder) -> Iterator[Directory]:
        """The folder's ``cur`` and ``new`` that exist; one that cannot be opened is skipped."""
        try:
            folder_dir = mail.child(folder.dir_name) if folder.dir_name else mail
        except (OSError, Refused) as error:
            self._skip_error(user, mail.below(folder.dir_name), error)
            return
        for sub in _MAIL_SUBS:
            try:
                yield folder_dir.child(sub)
            except FileNotFoundError:
                continue
            except (OSError, Refused) as error:
                self._skip_error(user, folder_dir.below(sub), error)

    def _listing(
        self, user: str, directory: Directory, *, dot_files: bool = False
    ) -> list[os.DirEntry[str]]:
        """The directory's entries (dot files only if asked); a listing that fails is skipped."""
        try:
            entries = directory.entries()
            return entries if dot_files else [e for e in entries if not e.name.startswith(".")]
        except OSError as error:
            self._skip_error(user, directory.path, error)
            return []

    def _is_file(self, user: str, directory: Directory, entry: os.DirEntry[str]) -> bool:
        """A regular file: a link or special file is reported, a subdirectory ignored."""
        if entry.is_file(follow_symlinks=False):
            return True
        if entry.is_symlink():
            self._skip(user, directory.below(entry.name), "is a symbolic link, not followed")
        elif not entry.is_dir(follow_symlinks=False):
            self._skip(user, directory.below(entry.name), "is not a regular file")
        return False

    def _known_mail_item(
        self,
        user: str,
        folder: _Folder,
        sub_dir: Directory,
        entry: os.DirEntry[str],
        split: tuple[str, str],
    ) -> SourceItem | None:
        """The message's item from its directory entry alone (one ``lstat``, the file is not
        opened) when the previous point holds it with the same change token: its headers are
        the ones recorded then (a message's content never changes under the same token). None
        when it must be read."""
        key = f"{user}/mail/{key_part(split[0])}"
        before = self._previous.get(key)
        if before is None:
            return None
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            return None  # _mail_item finds out why, and reports it
        token = _mail_token(split[0], st)
        if before.meta.get("change_token") != token or st.st_dev != sub_dir.device:
            return None
        headers = {name: before.meta.get(name, "") for name in _HEADERS}
        return self._mail_source(user, folder, sub_dir, entry.name, split, st, headers)

    def _mail_item(
        self,
        user: str,
        folder: _Folder,
        sub_dir: Directory,
        name: str,
        split: tuple[str, str],
        backup: bool = False,
    ) -> SourceItem | None:
        """The message's item; None if it vanished since the listing (expunged or moved). It
        is opened here either way (a link, a special file or a mount is refused, and reported,
        by the scan). In a backup the executor reads it through that descriptor, and takes its
        headers from that read (``content_meta``): the scan neither reads nor parses it."""
        try:
            fd, st = sub_dir.open_fd(name)
        except FileNotFoundError:
            return None
        except (OSError, Refused) as error:
            self._skip_error(user, sub_dir.below(name), error)
            return None
        if backup:
            opened = _OpenedMessage(fd, sub_dir.below(name), self._opener(sub_dir, name, split))
            return self._mail_source(user, folder, sub_dir, name, split, st, None, opened)
        try:
            headers = _parse_headers(_read_header_block(fd))
        finally:
            os.close(fd)
        return self._mail_source(user, folder, sub_dir, name, split, st, headers)

    def _opener(self, sub_dir: Directory, name: str, split: tuple[str, str]) -> _MessageOpener:
        return _MessageOpener(self.confined, sub_dir, name, split[0])

    def _mail_source(
        self,
        user: str,
        folder: _Folder,
        sub_dir: Directory,
        name: str,
        split: tuple[str, str],
        st: os.stat_result,
        headers: dict[str, Any] | None,
        opened: _OpenedMessage | None = None,
    ) -> SourceItem:
        """``headers`` None: the executor takes them from the content it reads through
        ``opened`` (the same keys, in the same place: after the flags)."""
        unique, flags = split
        meta: dict[str, Any] = {}
        put_exact(meta, "folder_dir", folder.dir_name)
        put_exact(meta, "file_name", name)
        meta["flags"] = flags
        if headers is not None:
            meta.update(headers)
        return _item_of_file(
            st,
            key=f"{user}/mail/{key_part(unique)}",
            user=user,
            kind="mail",
            path=folder.path,
            meta=meta,
            change_token=_mail_token(unique, st),
            found_in=self._found_in(sub_dir, name),
            opener=opened or self._opener(sub_dir, name, split),
            content_meta=None if headers is not None else _HEADERS_OF_CONTENT,
        )

    def _scan_drive(
        self, user: str, *, backup: bool = False
    ) -> Iterator[SourceItem | CarriedBlock]:
        """In a backup, a file whose name, change token and mode are the ones the previous run
        recorded in its directory's state item is carried as its previous JSON. A directory is
        never skipped whole: its mtime does not change when a file in it is rewritten, so
        every file is looked at (one ``stat``; its content only when its token changed)."""
        drive = self._area(user, DRIVE_DIR)
        if drive is None:
            return
        prefix_len = len(drive.path) + 1
        # An explicit stack of sorted listings: no recursion limit on deep trees, stable order.
        # Each level keeps its directory open; items found in it hold it until they are read.
        stack = [self._drive_level(user, drive, drive.entries(), "", backup)]
        while stack:
            level = stack[-1]
            entry = next(level.entries, None)
            if entry is None:
                stack.pop()
                yield from _drive_level_end(user, level)
                continue
            directory = level.directory
            if entry.is_dir(follow_symlinks=False):
                below = self._subdirectory(user, directory, entry.name)
                if below is not None:
                    yield from _drive_block(user, level)
                    listing = self._listing(user, below, dot_files=True)
                    rel = below.path[prefix_len:]
                    stack.append(self._drive_level(user, below, listing, rel, backup))
            elif self._is_file(user, directory, entry):
                if self._carry_file(user, level, entry):
                    if level.writer is not None and level.writer.ready:
                        yield from level.writer.take()
                    continue
                yield from _drive_block(user, level)
                item = self._file_item(user, directory, entry, prefix_len)
                if item is not None:
                    if level.writer is not None and is_text(entry.name):
                        level.writer.add([entry.name, item.change_token, item.mode])
                    yield item
                    if level.writer is not None:
                        yield from level.writer.take()

    def _drive_level(
        self,
        user: str,
        directory: Directory,
        listing: list[os.DirEntry[str]],
        rel: str,
        backup: bool,
    ) -> _DriveLevel:
        if not (backup and is_text(rel)):
            return _DriveLevel(directory, iter(listing), rel, None, None)
        key = _drive_state_key(user, rel)
        state = StateReader.of(self._previous, key)
        return _DriveLevel(directory, iter(listing), rel, state, StateWriter(key, user, rel or "."))

    def _carry_file(self, user: str, level: _DriveLevel, entry: os.DirEntry[str]) -> bool:
        """Carry the file as its previous JSON (see ``_scan_drive``); False when it must go the
        long way."""
        same = _as_recorded(level.state, entry, level.directory, _file_token)
        if same is None:
            return False
        rel = f"{level.rel}/{entry.name}" if level.rel else entry.name
        record = self._previous.carry(f"{user}/drive/{rel}", same[0])
        if record is None:
            return False
        level.block.append(record)
        if level.writer is not None:
            level.writer.add([entry.name, *same])
        return True

    def _subdirectory(self, user: str, directory: Directory, name: str) -> Directory | None:
        try:
            return directory.child(name)
        except FileNotFoundError:  # removed since the listing
            return None
        except (OSError, Refused) as error:
            self._skip_error(user, directory.below(name), error)
            return None

    def _file_item(
        self, user: str, directory: Directory, entry: os.DirEntry[str], prefix_len: int
    ) -> SourceItem | None:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # deleted since the listing
            return None
        except OSError as error:
            self._skip_error(user, directory.below(entry.name), error)
            return None
        if st.st_dev != directory.device:
            self._skip(user, directory.below(entry.name), "is a mount point, not followed")
            return None
        rel = directory.below(entry.name)[prefix_len:]
        meta: dict[str, Any] = {"inode": st.st_ino}
        put_exact(meta, "path", rel, shown=False)
        name = entry.name
        return _item_of_file(
            st,
            key=f"{user}/drive/{key_part(rel)}",
            user=user,
            kind="file",
            path=display(rel),
            meta=meta,
            change_token=_file_token(st),
            found_in=self._found_in(directory, name),
            opener=lambda: directory.open_file(name),
        )


@dataclass(frozen=True, slots=True)
class _MessageOpener:
    """Opens a message where the scan saw it, else (re-flagged or read since) by its unique
    name in the same folder's ``cur``/``new``, walking there again from the root."""

    root: ConfinedRoot
    sub_dir: Directory
    name: str
    unique: str

    def __call__(self) -> OpenedFile:
        try:
            return self.sub_dir.open_file(self.name)
        except FileNotFoundError:
            moved = self._find()
            if moved is None:
                raise
            with moved[0]:
                return moved[0].open_file(moved[1])

    def _find(self) -> tuple[Directory, str] | None:
        folder_parts = self.sub_dir.path.split("/")[:-1]  # "<user>/Mail[/.Folder]"
        for sub in _MAIL_SUBS:
            try:
                sub_dir = self.root.walk([*folder_parts, sub])
            except FileNotFoundError:
                continue
            for entry in sub_dir.entries():
                if _split_name(entry.name)[0] == self.unique:
                    return sub_dir, entry.name
            sub_dir.close()
        return None


class _OpenedMessage:
    """A message the scan opened: its first read uses that very descriptor (so a backup opens
    a message once); a later one opens it again as ``_MessageOpener`` does. The descriptor is
    closed with the item when it is never read (a stopped run). Whether it changed while read
    is judged from its status when the read begins, as when it was opened then: a flag change
    since the scan renames it, which changes its ctime, not its content."""

    __slots__ = ("_again", "_fd", "_path")

    def __init__(self, fd: int, path: str, again: _MessageOpener) -> None:
        self._fd, self._path, self._again = fd, path, again

    def __call__(self) -> OpenedFile:
        fd, self._fd = self._fd, -1
        if fd < 0:
            return self._again()
        try:
            return OpenedFile(fd, os.fstat(fd), self._path)
        except BaseException:
            os.close(fd)
            raise

    def __del__(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)


def _as_recorded(
    state: StateReader | None,
    entry: os.DirEntry[str],
    directory: Directory,
    token_of: Callable[..., str],
    *before_stat: Any,
) -> tuple[str, int] | None:
    """The entry's change token (``token_of(*before_stat, lstat)``: no closure made per entry,
    as this runs for every message of a changed folder) and mode when its directory's state
    recorded the same for its name; None otherwise."""
    before = None if state is None else state.get(entry.name)
    if before is None:
        return None
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    token, mode = token_of(*before_stat, st), stat.S_IMODE(st.st_mode)
    if token != before[1] or mode != before[2] or st.st_dev != directory.device:
        return None
    return token, mode


def _entry_name(found: tuple[Directory, os.DirEntry[str]]) -> str:
    return found[1].name


def _file_token(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_ctime_ns}"


def _drive_state_key(user: str, rel: str) -> str:
    return f"{user}/drive-folder/{rel or '.'}"


def _drive_block(user: str, level: _DriveLevel) -> Iterator[CarriedBlock]:
    """The files carried so far in this directory, before anything else is given."""
    if level.block:
        yield CarriedBlock(user, "file", level.rel or ".", level.block)
        level.block = []


def _drive_level_end(user: str, level: _DriveLevel) -> Iterator[SourceItem | CarriedBlock]:
    yield from _drive_block(user, level)
    if level.writer is not None:
        yield _state_head(level.state, level.writer, None)


def _state_head(
    state: StateReader | None, writer: StateWriter, stamp: Stamp | None
) -> SourceItem | CarriedBlock:
    """A directory's state head; carried as it was when nothing in it changed."""
    same = None if state is None else state.same_head(writer, stamp)
    if same is None:
        return writer.head(stamp)
    return CarriedBlock(writer.user, "folder", writer.path, [same])


def _stamp(subs: list[Directory]) -> Stamp:
    stamp: Stamp = []
    for sub in subs:
        st = os.fstat(sub.fd)
        stamp.append([sub.path.rsplit("/", 1)[-1], st.st_ino, st.st_mtime_ns, st.st_ctime_ns])
    return stamp


def _settled(stamp: Stamp, now_ns: int) -> bool:
    """Every time in ``stamp`` is well before ``now_ns`` (a time ahead of the clock, as after the
    clock was set back, is not)."""
    return all(
        isinstance(t, int) and t <= now_ns - SETTLED_NS for entry in stamp for t in entry[2:]
    )


def _may_exist(directory: Directory, name: str) -> bool:
    """False only if ``name`` is known absent (a link counts as present: reading it reports)."""
    try:
        return directory.lstat(name) is not None
    except OSError:
        return True


def _reason(error: OSError | Refused) -> str:
    if isinstance(error, Refused):
        return f"{error.why}, not followed"
    return error.strerror or str(error)


_ALL_SUBS = ("cur", "new", "tmp")


# ----- messages -----


def _mail_token(unique: str, st: os.stat_result) -> str:
    return _token_of_message(key_part(unique), st)


def _token_of_message(key_part: str, st: os.stat_result) -> str:
    return f"{key_part}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _split_name(name: str) -> tuple[str, str]:
    """``unique:2,FLAGS`` -> (unique, sorted flags); a name without info has no flags."""
    unique, _, info = name.partition(":")
    flags = "".join(sorted(set(info[2:]))) if info.startswith("2,") else ""
    return unique, flags


def message_unique(file_name: str) -> str:
    """The Maildir unique name in a message's file name."""
    return _split_name(file_name)[0]


def _read_header_block(fd: int) -> bytes:
    data = b""
    while len(data) < HEADER_LIMIT:
        chunk = os.read(fd, min(_READ_CHUNK, HEADER_LIMIT - len(data)))
        if not chunk:
            break
        data += chunk
        end = _header_end(data)
        if end is not None:
            return data[:end]
    return data


def _header_end(data: bytes) -> int | None:
    """Where the first blank line (``\\r?\\n\\r?\\n``) begins: found with ``bytes.find`` (the
    regular expression tried every byte of the header block: about 13 us a message). The
    first match of the pattern begins at the first ``\\n\\r?\\n``, or a byte earlier when a
    ``\\r`` stands there."""
    if data.startswith((b"\n", b"\r\n")):  # no headers at all
        return 0
    lf = data.find(b"\n\n")
    # Only a "\n\r\n" that begins before the first "\n\n" can come first.
    crlf = data.find(b"\n\r\n", 0, len(data) if lf < 0 else lf + 2)
    first = lf if crlf < 0 else crlf
    if first < 0:
        return None
    return first - 1 if first and data[first - 1] == 0x0D else first


def headers_of(message: bytes) -> dict[str, str]:
    """Subject, From, To, Date of a message in memory, parsed as for a Maildir message (only
    its header block, never more than ``HEADER_LIMIT``); used by the IMAP connector too."""
    block = message[:HEADER_LIMIT]
    end = _header_end(block)
    return _parse_headers(block if end is None else block[:end])


# A backup's messages: the executor parses the headers from the read that stores the message.
_HEADERS_OF_CONTENT = ContentMeta(HEADER_LIMIT, headers_of)


def _parse_headers(block: bytes) -> dict[str, str]:
    """Subject, From, To, Date (first occurrence), unfolded, RFC 2047-decoded; "" if absent."""
    found = dict.fromkeys(_HEADERS, "")
    name: str | None = None
    raw: dict[str, list[bytes]] = {}
    for line in block.split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                raw[name].append(line)
            continue
        head, colon, value = line.partition(b":")
        key = head.strip().decode("ascii", "replace").lower() if colon else ""
        name = key if key in _HEADERS and key not in raw else None
        if name is not None:
            raw[name] = [value]
        elif len(raw) == len(_HEADERS):
            break  # all found, and the last one's folded lines are over
    for key, lines in raw.items():
        found[key] = _decode_header_value(b"".join(lines).decode("utf-8", "replace"))
    return found


def _decode_header_value(value: str) -> str:
    value = value.strip()
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (HeaderParseError, LookupError, ValueError):  # bad encoded word: keep it verbatim
        return value


def _folder_stamp(subs: dict[str, Directory]) -> tuple[int, int]:
    return subs["cur"].stamp(), subs["new"].stamp()


def _fresh_unique(index: _FolderIndex) -> str:
    """A new Maildir unique name: ``<sec>.M<usec>P<pid>R<random>.<host>``."""
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072") or "localhost"
    while True:
        now = time.time_ns()
        sec, usec = divmod(now // 1000, 1_000_000)
        unique = f"{sec}.M{usec}P{os.getpid()}R{secrets.token_hex(8)}.{host}"
        if unique not in index.files:
            return unique


def _normalize_flags(flags: str) -> str:
    if not _FLAG_CHARS.fullmatch(flags):
        raise InvalidInput(f"Maildir flags must be letters: {flags!r}", "flags")
    return "".join(sorted(set(flags)))


def _check_unique(unique: str) -> None:
    if not unique or unique.startswith(".") or any(c in unique for c in "/:\0"):
        raise InvalidInput(f"not a Maildir unique name: {unique!r}", "unique")


def _check_collision(collision: str) -> None:
    if collision not in COLLISIONS:
        raise InvalidInput(f"collision must be one of {', '.join(COLLISIONS)}", "collision")


# ----- folder names: Maildir++ with modified UTF-7 (RFC 3501 section 5.1.3) -----

# Names that must never be shown as one component of a folder path.
_NOT_A_NAME = ("", ".", "..")


def _folder_path(dir_name: str) -> str:
    """``.Archive.2024`` -> ``Archive/2024``, for people (restores use the directory's own name).
    A part that is not valid modified UTF-7, or decodes to something that is not one name
    (``&AC4ALg-`` is ``..``, ``&AC8-`` holds ``/``), is shown as it is written."""
    return "/".join(_shown_part(part) for part in dir_name[1:].split("."))


def _shown_part(part: str) -> str:
    if not part:
        return "\ufffd"
    try:
        decoded = _mutf7_decode(part)
    except ValueError:
        return display(part)
    if decoded in _NOT_A_NAME or "/" in decoded or "\0" in decoded:
        return display(part)
    return display(decoded)


def _folder_dir_name(folder: str) -> str:
    """``Inbox`` -> ``""``; ``Archive/2024`` -> ``.Archive.2024`` (parts in modified UTF-7, and
    a "." inside a name encoded too, since "." separates Maildir++ levels)."""
    if folder.casefold() == INBOX.casefold():
        return ""
    parts = folder.split("/")
    for part in parts:
        if part in _NOT_A_NAME or "\0" in part:
            raise InvalidInput(f"not a restorable mail folder: {display(folder)!r}", "folder")
    return "." + ".".join(_mutf7_encode(part, also=".") for part in parts)


def _checked_dir_name(dir_name: str) -> str:
    """A folder's directory as backed up: "" (the Inbox) or one ``.``-name below ``Mail``."""
    dot_name = dir_name.startswith(".") and dir_name not in _NOT_A_NAME
    if dir_name and (not dot_name or "/" in dir_name or "\0" in dir_name):
        raise InvalidInput(f"not a Maildir++ folder directory: {display(dir_name)!r}", "folder")
    return dir_name


def _mutf7_decode(text: str) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        amp = text.find("&", pos)
        if amp < 0:
            out.append(text[pos:])
            break
        end = text.find("-", amp)
        if end < 0:
            raise ValueError(f"unterminated modified UTF-7 in {text!r}")
        out.append(text[pos:amp])
        encoded = text[amp + 1 : end]
        out.append(_mutf7_decode_run(encoded) if encoded else "&")
        pos = end + 1
    return "".join(out)


def _mutf7_decode_run(encoded: str) -> str:
    padded = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(padded, validate=True).decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid modified UTF-7 run {encoded!r}") from exc


def _mutf7_encode(text: str, also: str = "") -> str:
    """Modified UTF-7; characters in ``also`` are base64-encoded though printable."""
    out: list[str] = []
    run: list[str] = []
    for char in [*text, ""]:  # "" flushes the last run
        if char and (not (" " <= char <= "~") or char in also):
            run.append(char)
            continue
        if run:
            raw = "".join(run).encode("utf-16-be", "surrogatepass")
            out.append(
                "&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            run = []
        out.append("&-" if char == "&" else char)
    return "".join(out)


# ----- OneDrive files -----


def _drive_parts(path: str) -> list[str]:
    """Split a relative posix path, refusing anything that could leave the user's OneDrive."""
    parts = path.split("/")
    if path.startswith("/") or any(part in _NOT_A_NAME or "\0" in part for part in parts):
        raise InvalidInput(
            f"path escapes the user's OneDrive or is not relative: {display(path)!r}", "path"
        )
    return parts


def _restored_name(directory: Directory, name: str) -> str:
    """``name.ext`` -> ``name (restored).ext``, then ``name (restored 2).ext``, ... (first free)."""
    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
    number = 1
    while True:
        label = "restored" if number == 1 else f"restored {number}"
        candidate = f"{stem} ({label}){suffix}"
        if directory.lstat(candidate) is None:
            return candidate
        number += 1
