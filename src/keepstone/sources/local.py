"""Local organization connector: each user directory holds a Maildir++ ``Mail`` and a ``OneDrive``.

Layout under the organization root::

    <root>/<user>/Mail/{cur,new,tmp}              the Inbox
    <root>/<user>/Mail/.<Name>[.<Sub>]/{cur,...}  other folders, names in modified UTF-7
    <root>/<user>/OneDrive/...                    a plain file tree

Scans are streaming generators in a deterministic (name-sorted) order and cost one ``stat`` per
file (mail: one ``fstat`` on the descriptor that also reads the header block). Errors reading a
user's tree propagate from that user's iterator, so the caller can fail one user and go on.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from keepstone.domain.errors import InvalidInput

MAIL_DIR = "Mail"
DRIVE_DIR = "OneDrive"
INBOX = "Inbox"
COLLISIONS = ("skip", "overwrite", "keepBoth")

# Only the header block is parsed, and never more than this much of a message.
HEADER_LIMIT = 64 * 1024
_READ_CHUNK = 8 * 1024
_HEADERS = ("subject", "from", "to", "date")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
# Maildir flags (uppercase) plus Dovecot keyword letters (lowercase) are kept as they are.
_FLAG_CHARS = re.compile(r"[A-Za-z]*")


@dataclass(frozen=True, slots=True)
class LocalUser:
    name: str
    has_mailbox: bool
    has_onedrive: bool


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
    source_path: Path

    def open(self) -> BinaryIO:
        """Open the item for reading; a message re-flagged since the scan is found by its name."""
        try:
            return _open_no_follow(self.source_path)
        except FileNotFoundError:
            if self.kind != "mail":
                raise
            moved = _find_message(self.source_path.parent.parent, self.change_token)
            if moved is None:
                raise
            return _open_no_follow(moved)


@dataclass(slots=True)
class _FolderIndex:
    """The unique names a Maildir folder holds; valid while ``cur``/``new`` mtimes are unchanged."""

    stamp: tuple[int, int]
    files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Folder:
    path: str  # "Inbox", "Archive/2024"
    dir_name: str  # "", ".Archive.2024"
    dir: Path


class LocalOrganization:
    """One Local organization. Restores into one folder should not run concurrently."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Restoring a whole mailbox checks collisions per message: cache each folder's listing
        # instead of rescanning it every time (quadratic for large folders).
        self._indexes: dict[Path, _FolderIndex] = {}

    # ----- reading -----

    def users(self) -> list[LocalUser]:
        """Users sorted by name; non-directories and names starting with "." are ignored."""
        users = []
        for entry in _sorted_entries(self.root):
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            user_dir = Path(entry.path)
            users.append(
                LocalUser(
                    name=entry.name,
                    has_mailbox=_may_exist(user_dir / MAIL_DIR),
                    has_onedrive=_may_exist(user_dir / DRIVE_DIR),
                )
            )
        return users

    def mail_folders(self, user: str) -> list[str]:
        """Folder paths, "Inbox" first; empty if the user has no mailbox."""
        return [folder.path for folder in _list_folders(self._user_dir(user) / MAIL_DIR)]

    def mailbox_items(self, user: str) -> Iterator[SourceItem]:
        """Every message in ``cur/`` and ``new/`` of every folder (never ``tmp/``), once each."""
        return _scan_mailbox(user, self._user_dir(user) / MAIL_DIR)

    def onedrive_items(self, user: str) -> Iterator[SourceItem]:
        """Regular files of the user's OneDrive, depth first in name order; symlinks are skipped."""
        return _scan_drive(user, self._user_dir(user) / DRIVE_DIR)

    # ----- restoring -----

    def restore_message(
        self,
        user: str,
        folder: str,
        data: bytes | BinaryIO,
        flags: str,
        unique: str | None,
        collision: str,
    ) -> Path | None:
        """Deliver a message into ``folder``'s ``cur/`` (via ``tmp/``); None if skipped."""
        _check_collision(collision)
        flags = _normalize_flags(flags)
        if unique is not None:
            _check_unique(unique)
        user_dir = self._user_dir(user)
        folder_dir = _ensure_folder(user_dir, _folder_dir_name(folder))
        index, existing = self._lookup(folder_dir, unique)
        if existing is not None and collision == "skip":
            return None
        if unique is None or (existing is not None and collision == "keepBoth"):
            unique = _fresh_unique(index)
            existing = None
        target = folder_dir / "cur" / f"{unique}:2,{flags}"
        _write_atomically(folder_dir / "tmp", target, data)
        # Overwrite: the old copy goes only after the new one is in place (never zero copies).
        if existing is not None and existing != target:
            existing.unlink(missing_ok=True)
        index.files[unique] = target
        index.stamp = _folder_stamp(folder_dir)
        return target

    def restore_file(
        self,
        user: str,
        path: str,
        data: bytes | BinaryIO,
        mtime: float,
        mode: int,
        collision: str,
    ) -> Path | None:
        """Write a OneDrive file atomically with its mtime and mode; None if skipped."""
        _check_collision(collision)
        parts = _drive_parts(path)
        user_dir = self._user_dir(user)
        user_dir.mkdir(exist_ok=True)
        parent = _ensure_drive_parents(user_dir / DRIVE_DIR, parts[:-1], path)
        target = parent / parts[-1]
        if os.path.lexists(target):
            if collision == "skip":
                return None
            if collision == "keepBoth":
                target = _restored_name(target)
        _write_atomically(parent, target, data, mtime=mtime, mode=mode)
        return target

    # ----- helpers needing the instance -----

    def _user_dir(self, user: str) -> Path:
        if not user or user.startswith(".") or "/" in user or "\0" in user:
            raise InvalidInput(f"not a user of this organization: {user!r}", "user")
        return self.root / user

    def _lookup(self, folder_dir: Path, unique: str | None) -> tuple[_FolderIndex, Path | None]:
        """The folder's index and the file now holding ``unique``, if any."""
        index = self._index(folder_dir)
        existing = index.files.get(unique) if unique is not None else None
        # Directory mtimes are coarse (a few ms): a hit is cheap to confirm, so a message moved
        # in the same tick as our last write is looked up again rather than trusted.
        if existing is not None and not os.path.lexists(existing):
            index = self._index(folder_dir, rescan=True)
            existing = index.files.get(unique) if unique is not None else None
        return index, existing

    def _index(self, folder_dir: Path, rescan: bool = False) -> _FolderIndex:
        stamp = _folder_stamp(folder_dir)
        cached = self._indexes.get(folder_dir)
        if cached is not None and cached.stamp == stamp and not rescan:
            return cached
        index = _FolderIndex(stamp)
        for sub in ("cur", "new"):
            for entry in _sorted_entries_if_any(folder_dir / sub):
                if not entry.name.startswith("."):
                    index.files.setdefault(_split_name(entry.name)[0], Path(entry.path))
        self._indexes[folder_dir] = index
        return index


# ----- scanning -----


def _scan_mailbox(user: str, mail_dir: Path) -> Iterator[SourceItem]:
    # A message caught mid-move may show up in two folders: the key names it, so list it once.
    seen: set[str] = set()
    for folder in _list_folders(mail_dir):
        for sub in ("cur", "new"):
            for entry in _sorted_entries_if_any(folder.dir / sub):
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                unique, flags = _split_name(entry.name)
                if unique in seen:
                    continue
                item = _mail_item(user, folder, entry, unique, flags)
                if item is not None:
                    seen.add(unique)
                    yield item


def _mail_item(
    user: str, folder: _Folder, entry: os.DirEntry[str], unique: str, flags: str
) -> SourceItem | None:
    """The message's item, or None if it vanished since the listing (expunged or moved)."""
    try:
        fd = os.open(entry.path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        headers = _parse_headers(_read_header_block(fd))
    finally:
        os.close(fd)
    meta: dict[str, Any] = {"folder_dir": folder.dir_name, "file_name": entry.name, "flags": flags}
    meta.update(headers)
    return SourceItem(
        key=f"{user}/mail/{unique}",
        user=user,
        kind="mail",
        path=folder.path,
        size=st.st_size,
        mtime=st.st_mtime,
        mode=stat.S_IMODE(st.st_mode),
        meta=meta,
        change_token=unique,
        source_path=Path(entry.path),
    )


def _scan_drive(user: str, drive_dir: Path) -> Iterator[SourceItem]:
    if not _may_exist(drive_dir):
        _require_user_dir(drive_dir.parent)
        return
    prefix_len = len(str(drive_dir)) + 1
    # An explicit stack of sorted listings: no recursion limit on deep trees, stable order.
    stack = [iter(_sorted_entries(drive_dir))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            listing = _sorted_entries_if_any(Path(entry.path))
            stack.append(iter(listing))
        elif entry.is_file(follow_symlinks=False):
            item = _file_item(user, entry, entry.path[prefix_len:].replace(os.sep, "/"))
            if item is not None:
                yield item


def _file_item(user: str, entry: os.DirEntry[str], rel: str) -> SourceItem | None:
    try:
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:  # deleted since the listing
        return None
    return SourceItem(
        key=f"{user}/drive/{rel}",
        user=user,
        kind="file",
        path=rel,
        size=st.st_size,
        mtime=st.st_mtime,
        mode=stat.S_IMODE(st.st_mode),
        meta={"inode": st.st_ino},
        change_token=f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}",
        source_path=Path(entry.path),
    )


def _list_folders(mail_dir: Path) -> list[_Folder]:
    try:
        entries = _sorted_entries(mail_dir)
    except FileNotFoundError:
        _require_user_dir(mail_dir.parent)
        return []
    folders = [
        _Folder(_folder_path(entry.name), entry.name, Path(entry.path))
        for entry in entries
        if len(entry.name) > 1
        and entry.name.startswith(".")
        and entry.is_dir(follow_symlinks=False)
        and _is_maildir(Path(entry.path))
    ]
    folders.sort(key=lambda folder: folder.path.split("/"))
    return [_Folder(INBOX, "", mail_dir), *folders]


def _is_maildir(folder_dir: Path) -> bool:
    # Skips dot-directories that are not folders (e.g. a ".notmuch" database).
    return _may_exist(folder_dir / "cur") or _may_exist(folder_dir / "new")


def _sorted_entries(directory: Path) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as it:
        return sorted(it, key=lambda entry: entry.name)


def _sorted_entries_if_any(directory: Path) -> list[os.DirEntry[str]]:
    """Like ``_sorted_entries``, but a directory that is absent (or just removed) is empty."""
    try:
        return _sorted_entries(directory)
    except FileNotFoundError:
        return []


def _may_exist(path: Path) -> bool:
    """False only if ``path`` is known absent: an unreadable entry counts as present, so the
    caller goes on to list it and the real error surfaces for that user rather than vanishing."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def _require_user_dir(user_dir: Path) -> None:
    if not stat.S_ISDIR(os.stat(user_dir).st_mode):
        raise NotADirectoryError(f"not a user directory: {user_dir}")


# ----- messages -----


def _split_name(name: str) -> tuple[str, str]:
    """``unique:2,FLAGS`` -> (unique, sorted flags); a name without info has no flags."""
    unique, _, info = name.partition(":")
    flags = "".join(sorted(set(info[2:]))) if info.startswith("2,") else ""
    return unique, flags


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
    if data.startswith((b"\n", b"\r\n")):  # no headers at all
        return 0
    match = _HEADER_END.search(data)
    return match.start() if match else None


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


def _find_message(folder_dir: Path, unique: str) -> Path | None:
    for sub in ("cur", "new"):
        for entry in _sorted_entries_if_any(folder_dir / sub):
            if _split_name(entry.name)[0] == unique:
                return Path(entry.path)
    return None


def _folder_stamp(folder_dir: Path) -> tuple[int, int]:
    return (
        os.stat(folder_dir / "cur").st_mtime_ns,
        os.stat(folder_dir / "new").st_mtime_ns,
    )


def _ensure_folder(user_dir: Path, dir_name: str) -> Path:
    """Create the Maildir++ folder (``cur``/``new``/``tmp``) if missing; return its directory."""
    user_dir.mkdir(exist_ok=True)
    mail_dir = user_dir / MAIL_DIR
    folder_dir = mail_dir / dir_name if dir_name else mail_dir
    for sub in ("cur", "new", "tmp"):
        (folder_dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    if dir_name:
        # Courier and Dovecot mark Maildir++ subfolders with this empty file.
        (folder_dir / "maildirfolder").touch(exist_ok=True)
    return folder_dir


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


def _folder_path(dir_name: str) -> str:
    """``.Archive.2024`` -> ``Archive/2024``; a part that is not valid modified UTF-7 is kept."""
    return "/".join(_mutf7_decode_or_raw(part) for part in dir_name[1:].split("."))


def _folder_dir_name(folder: str) -> str:
    """``Inbox`` -> ``""``; ``Archive/2024`` -> ``.Archive.2024`` (parts in modified UTF-7)."""
    if folder.casefold() == INBOX.casefold():
        return ""
    parts = folder.split("/")
    for part in parts:
        # "." is the Maildir++ hierarchy separator, so it cannot appear inside a name.
        if not part or "." in part or "\0" in part:
            raise InvalidInput(f"not a restorable mail folder: {folder!r}", "folder")
    return "." + ".".join(_mutf7_encode(part) for part in parts)


def _mutf7_decode_or_raw(text: str) -> str:
    try:
        return _mutf7_decode(text)
    except ValueError:
        return text


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


def _mutf7_encode(text: str) -> str:
    out: list[str] = []
    run: list[str] = []
    for char in [*text, ""]:  # "" flushes the last run
        if char and not (" " <= char <= "~"):
            run.append(char)
            continue
        if run:
            raw = "".join(run).encode("utf-16-be")
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
    if path.startswith("/") or any(part in ("", ".", "..") or "\0" in part for part in parts):
        raise InvalidInput(f"path escapes the user's OneDrive or is not relative: {path!r}", "path")
    return parts


def _ensure_drive_parents(drive_dir: Path, parents: list[str], path: str) -> Path:
    """Create the parent directories one by one, refusing to pass through a symlink."""
    current = drive_dir
    current.mkdir(exist_ok=True)
    for part in parents:
        current = current / part
        try:
            current.mkdir()
        except FileExistsError:
            if current.is_symlink():
                raise InvalidInput(f"path goes through a symlink: {path!r}", "path") from None
    return current


def _restored_name(target: Path) -> Path:
    """``name.ext`` -> ``name (restored).ext``, then ``name (restored 2).ext``, ... (first free)."""
    stem, suffix = PurePosixPath(target.name).stem, PurePosixPath(target.name).suffix
    number = 1
    while True:
        label = "restored" if number == 1 else f"restored {number}"
        candidate = target.with_name(f"{stem} ({label}){suffix}")
        if not os.path.lexists(candidate):
            return candidate
        number += 1


# ----- writing -----


def _write_atomically(
    temp_dir: Path,
    target: Path,
    data: bytes | BinaryIO,
    *,
    mtime: float | None = None,
    mode: int | None = None,
) -> None:
    """Write a temp file in ``temp_dir``, fsync, set mode and mtime, rename it to ``target``."""
    fd, temp_name = tempfile.mkstemp(dir=temp_dir, prefix=".keepstone-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, bytes):
                out.write(data)
            else:
                shutil.copyfileobj(data, out)
            out.flush()
            if mode is not None:
                os.fchmod(out.fileno(), stat.S_IMODE(mode))
            os.fsync(out.fileno())
        if mtime is not None:
            os.utime(temp_name, (mtime, mtime))
        os.rename(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _open_no_follow(path: Path) -> BinaryIO:
    fd = os.open(path, _OPEN_FLAGS)
    try:
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
