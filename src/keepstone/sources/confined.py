"""Confinement: reach paths below a root one component at a time, never leaving it.

A source organization's users may write anywhere in their own directories, so any component of
any path below the root may be a symbolic link, or be swapped for one while the server works.
Nothing here builds a path string and lets the kernel follow it: every directory is opened from
its parent's descriptor with ``O_NOFOLLOW | O_DIRECTORY`` (``openat``), listed and stat-ed
through its descriptor, files are opened with ``O_NOFOLLOW`` relative to it, and new files are
written as temp files inside it and renamed within it. A link at any level, or a directory on
another file system than the root (a mount), is refused with ``Refused``: backups skip it, restores
fail with a 400 naming the path. Every connector's read and restore paths go through here.

Names are the operating system's (``str`` with surrogate escapes for bytes that are not UTF-8);
messages show them through ``names.display``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import shutil
import stat
import weakref
from collections.abc import Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any, BinaryIO

from keepstone.domain.errors import InvalidInput
from keepstone.sources.names import display

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO swapped in for a file must not block the open; it is refused after fstat.
# It stays set on the regular files that are read: it changes nothing for them (Linux reads a
# regular file's data the same with or without it), and clearing it was a system call an item.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
TEMP_PREFIX = ".keepstone-"
_name = attrgetter("name")  # sorts listings (a lambda costs a Python call per entry)


class Refused(InvalidInput):
    """A path component is a link, another file system, or not a name: it is never followed."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{display(path)} {why}: refused, it could lead outside the organization")
        self.path = path
        self.why = why


def check_name(name: str, path: str) -> None:
    """One path component: never empty, ``.``, ``..``, or holding ``/`` or NUL."""
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise Refused(path, f"has the component {display(name)!r}, which is not a name")


class Directory:
    """An open directory below a root. Its descriptor closes with ``close`` or when the last
    reference goes (items found in it keep it open until they are read)."""

    def __init__(self, fd: int, path: str, device: int) -> None:
        self.fd = fd
        self.path = path  # relative to the root, for messages
        self.device = device  # the root's: anything on another device is refused
        self._closer = weakref.finalize(self, os.close, fd)

    def close(self) -> None:
        self._closer()

    def __enter__(self) -> Directory:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def below(self, name: str) -> str:
        return f"{self.path}/{name}" if self.path else name

    # ----- directories -----

    def child(self, name: str, *, create: bool = False, mode: int = 0o777) -> Directory:
        """The subdirectory ``name`` (made first if ``create``); a link or mount is refused."""
        path = self.below(name)
        check_name(name, path)
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=self.fd)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except OSError as error:
            # O_NOFOLLOW | O_DIRECTORY gives ENOTDIR (or ELOOP) for a link: say which it was.
            if error.errno in (errno.ENOTDIR, errno.ELOOP) and self.is_link(name):
                raise Refused(path, "is a symbolic link") from None
            raise
        return self._adopt(fd, path)

    def _adopt(self, fd: int, path: str) -> Directory:
        try:
            device = os.fstat(fd).st_dev
        except BaseException:
            os.close(fd)
            raise
        if device != self.device:
            os.close(fd)
            raise Refused(path, "is on another file system (a mount point)")
        return Directory(fd, path, self.device)

    def entries(self) -> list[os.DirEntry[str]]:
        """The directory's entries sorted by name (``is_*`` and ``stat`` never follow links)."""
        with os.scandir(self.fd) as it:
            return sorted(it, key=_name)

    # ----- looking -----

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry itself (a link is not followed); None if absent."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def is_link(self, name: str) -> bool:
        found = self.lstat(name)
        return found is not None and stat.S_ISLNK(found.st_mode)

    def stamp(self) -> int:
        return os.fstat(self.fd).st_mtime_ns

    # ----- files -----

    def open_fd(self, name: str) -> tuple[int, os.stat_result]:
        """A regular file of this directory opened for reading, and its status (one ``fstat``);
        a link, a FIFO, a device or a mount is refused."""
        path = self.below(name)
        check_name(name, path)
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=self.fd)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise Refused(path, "is a symbolic link") from None
            raise
        try:
            found = os.fstat(fd)
            if found.st_dev != self.device:
                raise Refused(path, "is on another file system (a mount point)")
            if not stat.S_ISREG(found.st_mode):
                raise Refused(path, "is not a regular file")
        except BaseException:
            os.close(fd)
            raise
        return fd, found

    def open_file(self, name: str) -> OpenedFile:
        fd, found = self.open_fd(name)
        return OpenedFile(fd, found, self.below(name))

    def write_file(
        self,
        name: str,
        data: bytes | BinaryIO,
        *,
        temp_dir: Directory | None = None,
        mode: int = 0o600,
        mtime: float | None = None,
    ) -> None:
        """Write ``name`` atomically: a temp file in ``temp_dir`` (default: here), fsync-ed,
        with ``mode`` and ``mtime`` set on the open file, renamed over ``name``. Setuid, setgid
        and sticky bits are never restored (the server may run as root)."""
        check_name(name, self.below(name))
        staging = temp_dir or self
        temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}.tmp"
        fd = os.open(temp, _CREATE_FLAGS, 0o600, dir_fd=staging.fd)
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out)
                out.flush()
                os.fchmod(out.fileno(), stat.S_IMODE(mode) & 0o777)
                if mtime is not None:
                    os.utime(out.fileno(), (mtime, mtime))
                os.fsync(out.fileno())
            os.rename(temp, name, src_dir_fd=staging.fd, dst_dir_fd=self.fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=staging.fd)
            raise

    def touch(self, name: str) -> None:
        """Create an empty file if absent; an existing link is refused, never written through."""
        try:
            os.close(os.open(name, _CREATE_FLAGS, 0o600, dir_fd=self.fd))
        except FileExistsError:
            if self.is_link(name):
                raise Refused(self.below(name), "is a symbolic link") from None

    def unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)


class OpenedFile(io.RawIOBase):
    """A source file open for reading, with its status when opened, so a reader can tell
    whether it changed while being read.

    Read straight from its descriptor into the reader's buffer: each system call releases the
    GIL, and with the backup's threads waiting for it each release is a hand-off (futex calls
    and a context switch). A buffered file cost a third ``fstat``, a ``seek`` and a third read
    an item besides the open, its status, the reads to the end and the close.
    """

    def __init__(self, fd: int, opened: os.stat_result, path: str) -> None:
        super().__init__()
        self._fd = fd
        self.opened = opened
        self.path = path

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def readinto(self, buffer: Any) -> int:
        return os.readv(self._fd, [buffer])

    def close(self) -> None:
        if not self.closed:
            fd, self._fd = self._fd, -1
            super().close()
            os.close(fd)

    def changed(self, bytes_read: int) -> bool:
        """Whether the file was rewritten, truncated or grown since it was opened."""
        now = os.fstat(self._fd)
        before = self.opened
        return bytes_read != before.st_size or (
            (now.st_size, now.st_mtime_ns, now.st_ctime_ns)
            != (before.st_size, before.st_mtime_ns, before.st_ctime_ns)
        )


class ConfinedRoot:
    """A root directory (the administrator's, so the configured path itself may be a link) and
    every path below it, reached component by component."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> Directory:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            device = os.fstat(fd).st_dev
        except BaseException:
            os.close(fd)
            raise
        return Directory(fd, "", device)

    def walk(self, parts: Sequence[str], *, create: bool = False, mode: int = 0o777) -> Directory:
        """The directory ``parts`` below the root, each component opened from its parent;
        missing ones are made when ``create``."""
        current = self.open()
        for part in parts:
            try:
                following = current.child(part, create=create, mode=mode)
            finally:
                current.close()
            current = following
        return current
