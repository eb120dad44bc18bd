"""Saving items as files under a directory (``keepstone restore save --to DIR``) without ever
leaving it.

Every component below DIR is a ``names.safe_component`` and is walked by ``sources.confined``
(each directory opened from its parent's descriptor, never through a link or across a mount);
a file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so a symbolic link planted inside DIR
(or swapped in while the save runs) is never followed, and an existing file is never
overwritten: the item gets a numbered name beside it instead, as two items whose names sanitize
to the same one do. A saved file keeps the item's permission bits and modification time
(``stamp``), as a put-back's file does.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from keepstone.domain.errors import InvalidInput
from keepstone.domain.names import UniqueNames
from keepstone.sources.confined import ConfinedRoot, Directory, Refused

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class SaveTree:
    """Files created below ``root``, each at safe components; use as a context manager."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = Path(os.path.realpath(root))
        self._dirs: dict[tuple[str, ...], Directory] = {(): ConfinedRoot(self.root).open()}
        self._names: dict[tuple[str, ...], UniqueNames] = {}
        self._actual: dict[tuple[str, ...], tuple[str, ...]] = {(): ()}

    def __enter__(self) -> SaveTree:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for directory in self._dirs.values():
            directory.close()
        self._dirs.clear()

    def create(self, parts: list[str]) -> tuple[Path, BinaryIO]:
        """A new file at ``parts`` (safe components: folders, then the name), or at a numbered
        name beside it when that one is taken; its path and the open file."""
        folders = tuple(parts[:-1])
        self._directory(folders)
        actual = self._actual[folders]
        names = self._names.setdefault(actual, UniqueNames())
        while True:
            name = names.claim(parts[-1])
            try:
                fd = os.open(name, _NEW_FILE, 0o600, dir_fd=self._dirs[actual].fd)
            except FileExistsError:  # a file, directory or link already there: not ours
                continue
            path = self._inside(Path(self.root, *actual, name))
            return path, os.fdopen(fd, "wb")

    def _directory(self, folders: tuple[str, ...]) -> None:
        """Make ``folders`` exist (as real directories, never through a link), each level
        once; a level whose name is taken by a link or file gets a numbered name instead."""
        if folders in self._actual:
            return
        self._directory(folders[:-1])
        parent = self._actual[folders[:-1]]
        names = self._names.setdefault(parent, UniqueNames())
        name = names.claim(folders[-1])
        while (directory := self._open_or_make(parent, name)) is None:
            name = names.claim(folders[-1])
        self._actual[folders] = (*parent, name)
        self._dirs[(*parent, name)] = directory

    def _open_or_make(self, parent: tuple[str, ...], name: str) -> Directory | None:
        try:
            return self._dirs[parent].child(name, create=True, mode=0o700)
        except (Refused, NotADirectoryError):  # a link, a mount or a file: never followed
            return None

    def _inside(self, path: Path) -> Path:
        """The resolved path must lie in the root (it does when every level was opened
        without following links; checked so a future change cannot quietly break it)."""
        if os.path.commonpath([self.root, os.path.realpath(path)]) != str(self.root):
            raise InvalidInput(f"'{path}' is outside the save directory {self.root}", "to")
        return path


def stamp(out: BinaryIO, mode: int, mtime: float) -> None:
    """Give a saved file, still open, the item's permission bits and modification time, as
    ``Directory.write_atomic`` gives a put-back's: on the open file, so no path is resolved
    again. Setuid, setgid and sticky bits are never restored (the operator may run this as
    root, and a source is hostile); a time the system cannot hold (NaN, beyond its range)
    leaves the file at the time it was written."""
    out.flush()
    os.fchmod(out.fileno(), stat.S_IMODE(mode) & 0o777)
    with contextlib.suppress(OverflowError, ValueError, OSError):
        os.utime(out.fileno(), (mtime, mtime))
