"""Object stores: the only I/O the engine does. Objects are immutable, written atomically.

A repository is private to the server's user: every file it writes is 0600 and every directory
0700, set explicitly so that neither the process umask nor an attached repository's history can
widen them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from keepstone.domain.errors import InvalidInput
from keepstone.engine.errors import ObjectExists, ObjectNotFound, RepositoryCorrupt

# Names are slash-separated; components are plain (no "..", no hidden files, no spaces).
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
_TMP = "tmp"
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


_IOV_MAX = 1024  # POSIX guarantees at least this many buffers per writev


class ObjectStore(Protocol):
    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` atomically and durably; raise ``ObjectExists`` if ``name`` exists."""
        ...

    def get(self, name: str) -> bytes: ...

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset`` (``RepositoryCorrupt`` if it is shorter)."""
        ...

    def exists(self, name: str) -> bool: ...

    def list(self, prefix: str) -> list[str]:
        """Every name starting with ``prefix``, sorted."""
        ...

    def delete(self, name: str) -> None: ...

    def size(self, name: str) -> int: ...


@runtime_checkable
class PartsStore(Protocol):
    """A store that can write an object given in pieces without joining them first."""

    def put_parts(self, name: str, parts: Sequence[bytes]) -> None: ...


def put_parts(store: ObjectStore, name: str, parts: Sequence[bytes]) -> None:
    """``store.put`` of the concatenation of ``parts``, joined only if the store needs it."""
    if isinstance(store, PartsStore):
        store.put_parts(name, parts)
    else:
        store.put(name, b"".join(parts))


class Spool(Protocol):
    """An object written piece by piece before its name is known (a pack is named by the hash
    of all its bytes): ``write`` as often as needed, then ``commit`` or ``discard`` once."""

    def write(self, parts: Sequence[bytes]) -> None:
        """Append the concatenation of ``parts`` (never joined first)."""
        ...

    def commit(self, name: str) -> None:
        """Store what was written under ``name``, atomically and durably, as ``put`` does;
        ``ObjectExists`` if ``name`` exists. The spool is spent either way."""
        ...

    def discard(self) -> None:
        """Drop what was written; harmless after ``commit`` or a first ``discard``."""
        ...


@runtime_checkable
class SpoolingStore(Protocol):
    """A store that keeps a spool's bytes outside memory until it is committed."""

    def open_spool(self) -> Spool: ...


@runtime_checkable
class TemporaryFiles(Protocol):
    """A store whose interrupted puts and spools can leave temporary files behind."""

    def remove_stale_temporaries(self, older_than: float) -> int:
        """Delete temporary files untouched for ``older_than`` seconds; the bytes they held."""
        ...


def open_spool(store: ObjectStore) -> Spool:
    """The store's own spool (a local store's is a temporary file), else one in memory."""
    if isinstance(store, SpoolingStore):
        return store.open_spool()
    return MemorySpool(store)


class MemorySpool:
    """A spool for stores that write an object in one request (S3): its pieces in memory."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._parts: list[bytes] = []

    def write(self, parts: Sequence[bytes]) -> None:
        self._parts.extend(parts)

    def commit(self, name: str) -> None:
        parts, self._parts = self._parts, []
        put_parts(self._store, name, parts)

    def discard(self) -> None:
        self._parts = []


def check_name(name: str) -> str:
    if not _NAME.match(name) or name.split("/", 1)[0] == _TMP:
        raise InvalidInput(f"not a valid object name: {name!r}")
    return name


class LocalStore:
    """Objects as files below ``root``; temporary files live in ``root/tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def make_private(self) -> None:
        """Restrict the repository's root to the server's user (0700): whatever an attached or
        older repository holds below it becomes unreachable to anyone else."""
        if self.root.is_dir():
            os.chmod(self.root, DIRECTORY_MODE)

    def put(self, name: str, data: bytes) -> None:
        self.put_parts(name, (data,))

    def put_parts(self, name: str, parts: Sequence[bytes]) -> None:
        self._path(name)  # a bad name is refused before anything is written
        spool = self.open_spool()
        try:
            spool.write(parts)
        except BaseException:
            spool.discard()
            raise
        spool.commit(name)

    def open_spool(self) -> FileSpool:
        return FileSpool(self)

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"object {name} does not exist") from None

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        try:
            fd = os.open(self._path(name), os.O_RDONLY)
        except FileNotFoundError:
            raise ObjectNotFound(f"object {name} does not exist") from None
        try:
            return _pread_exact(fd, name, offset, length)
        finally:
            os.close(fd)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def list(self, prefix: str) -> list[str]:
        head, _, _ = prefix.rpartition("/")
        start = self.root / head if head else self.root
        names = [n for n in _walk(start, head) if n.startswith(prefix)]
        return sorted(n for n in names if n.split("/", 1)[0] != _TMP)

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ObjectNotFound(f"object {name} does not exist") from None
        _fsync_dir(path.parent)

    def size(self, name: str) -> int:
        try:
            return self._path(name).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"object {name} does not exist") from None

    def remove_stale_temporaries(self, older_than: float) -> int:
        """Prune calls this under its exclusive lock, so no live run is writing a pack; the age
        spares the brief puts made without a lock (a lock's own), which last seconds."""
        oldest = time.time() - older_than
        freed = 0
        try:
            entries = list(os.scandir(self.root / _TMP))
        except FileNotFoundError:
            return 0
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                found = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(found.st_mode) and found.st_mtime < oldest:
                    os.unlink(entry.path)
                    freed += found.st_size
        return freed

    def _tmp_dir(self) -> Path:
        tmp = self.root / _TMP
        if not tmp.is_dir():
            self._make_dirs(tmp)
        return tmp

    def _make_dirs(self, directory: Path) -> None:
        """Create ``directory`` and make its entry durable in its parent."""
        if directory.is_dir():
            return
        if directory == self.root:
            directory.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
            os.chmod(directory, DIRECTORY_MODE)
            return
        self._make_dirs(directory.parent)
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIRECTORY_MODE)
            os.chmod(directory, DIRECTORY_MODE)  # mkdir's mode is filtered by the umask
            _fsync_dir(directory.parent)


class FileSpool:
    """A local object being written: a file in ``tmp/`` that ``commit`` makes durable and then
    links into place under its name (never replacing one), as ``put`` does. One dropped
    without ``commit`` or ``discard`` (a writer abandoned mid-pack) is discarded when it is
    collected: its descriptor closed, its file removed."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self._tmp = store._tmp_dir() / f"{secrets.token_hex(8)}.tmp"
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        self._drop = weakref.finalize(self, _drop_temporary, self._fd, self._tmp)
        try:
            os.fchmod(self._fd, FILE_MODE)  # open's mode is filtered by the umask
        except BaseException:
            self.discard()
            raise

    def write(self, parts: Sequence[bytes]) -> None:
        if self._fd < 0:
            raise ValueError("this spool is already committed or discarded")
        _write_all(self._fd, [memoryview(p) for p in parts if p])

    def commit(self, name: str) -> None:
        try:
            final = self._store._path(name)  # a bad name discards the spool too
            if self._fd < 0:
                raise ValueError("this spool is already committed or discarded")
            os.fsync(self._fd)
            self._store._make_dirs(final.parent)
            _link_no_replace(self._tmp, final)
        finally:
            self.discard()
        _fsync_dir(final.parent)

    def discard(self) -> None:
        self._fd = -1
        self._drop()  # once: later calls do nothing


def _drop_temporary(fd: int, tmp: Path) -> None:
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()


def _write_all(fd: int, views: list[memoryview]) -> None:
    """writev (which releases the GIL) until every view is written, short writes included."""
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + _IOV_MAX])
        while written:
            if written >= len(views[first]):
                written -= len(views[first])
                first += 1
            else:
                views[first] = views[first][written:]
                written = 0


def _link_no_replace(tmp: Path, final: Path) -> None:
    try:
        os.link(tmp, final)
    except FileExistsError:
        raise ObjectExists(f"object {final.name} already exists") from None
    except OSError as e:
        # Some file systems have no hard links: rename after a check (racy, but names are hashes).
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if final.exists():
            raise ObjectExists(f"object {final.name} already exists") from None
        os.rename(tmp, final)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pread_exact(fd: int, name: str, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    while len(data) < length:
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            raise RepositoryCorrupt(f"object {name} is shorter than {offset + length} bytes")
        data += more
    return data


def _walk(directory: Path, prefix: str) -> list[str]:
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    names: list[str] = []
    for entry in entries:
        name = f"{prefix}/{entry.name}" if prefix else entry.name
        if entry.is_dir(follow_symlinks=False):
            names.extend(_walk(Path(entry.path), name))
        elif not entry.name.startswith("."):
            names.append(name)
    return names
