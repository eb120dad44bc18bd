"""Where a put-back writes: the restore-target protocol every kind of organization answers.

The restore service chooses the items and keeps the counts, events and audit; a target only
knows how to write into its organization. Items go to a target as one sequence so that a target
able to batch (IMAP ``MULTIAPPEND``) can, while another writes them one by one (Local); each item
comes back as one :class:`Outcome`, in any order, exactly once.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from keepstone.domain.errors import InvalidInput, KeepstoneError
from keepstone.engine import Item
from keepstone.sources import names
from keepstone.sources.local import LocalOrganization, message_unique

Reader = Callable[[Item], BinaryIO]  # an item's content, opened only when it is written


class Collision(enum.StrEnum):
    SKIP = "skip"
    OVERWRITE = "overwrite"
    KEEP_BOTH = "keepBoth"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where items go: ``user``, and ``folder`` (a path of names joined by "/") when they go
    elsewhere than their own folder; what to do when an item is already there."""

    user: str
    folder: str | None
    collision: Collision


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one item: written (``restored``), skipped (already there), or failed
    (``error`` says why; an :class:`InvalidInput` is a refusal of the item itself)."""

    item: Item
    restored: bool = False
    error: OSError | KeepstoneError | None = None

    @property
    def why(self) -> str:
        if isinstance(self.error, KeepstoneError):
            return self.error.message
        if isinstance(self.error, OSError):
            return self.error.strerror or str(self.error)
        return ""


class RestoreTarget(Protocol):
    """One organization, as a put-back sees it."""

    def users(self) -> list[str]:
        """Names of the users items may be put back to."""
        ...

    def put_back(self, items: Sequence[Item], read: Reader, where: Placement) -> Iterator[Outcome]:
        """Write ``items`` (all of one kind) at ``where``; one outcome per item. Raises
        :class:`InvalidInput` before writing anything when the request itself is refused."""
        ...


class ChunkReader(io.RawIOBase):
    """An item's chunks as a readable stream, so putting a large file back never buffers it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def from_imap(item: Item) -> bool:
    return item.meta.get("source") == "imap"


class LocalTarget:
    """A Local organization: each item written on its own, atomically, in the order given;
    ``unread``: messages without their Seen flag (``S``)."""

    def __init__(self, root: Path, *, unread: bool = False) -> None:
        self.organization = LocalOrganization(root)
        self.unread = unread

    def marking_unread(self) -> LocalTarget:
        """The same organization, putting messages back unread."""
        return LocalTarget(self.organization.root, unread=True)

    def users(self) -> list[str]:
        return [user.name for user in self.organization.users()]

    def put_back(self, items: Sequence[Item], read: Reader, where: Placement) -> Iterator[Outcome]:
        if any(from_imap(item) for item in items):
            raise InvalidInput(
                "messages backed up from an Imap organization cannot be put back into a Local "
                "one; save them instead",
                "ids",
            )
        return self._each(items, read, where)

    def _each(self, items: Sequence[Item], read: Reader, where: Placement) -> Iterator[Outcome]:
        for item in items:
            try:
                written = self._write(item, read(item), where)
            except (OSError, InvalidInput) as error:
                yield Outcome(item, error=error)
                continue
            yield Outcome(item, restored=written is not None)

    def _write(self, item: Item, data: BinaryIO, where: Placement) -> Path | None:
        """Write one item back; names come from their exact bytes when the item kept them."""
        folder, collision = where.folder, where.collision.value
        if item.kind == "mail":
            file_name = names.exact(item.meta, "file_name")
            return self.organization.restore_message(
                where.user,
                folder or item.path,
                data,
                _flags(item, self.unread),
                message_unique(file_name) if file_name else None,
                collision,
                # Back into its own folder: the directory's own name, not the shown path
                # re-encoded.
                dir_name=None if folder else names.exact(item.meta, "folder_dir"),
            )
        path = names.exact(item.meta, "path", shown=item.path) or item.path
        path = f"{folder.strip('/')}/{path}" if folder else path
        return self.organization.restore_file(
            where.user, path, data, item.mtime, item.mode, collision
        )


def _flags(item: Item, unread: bool) -> str:
    """A message's Maildir flags as backed up, without Seen when it goes back ``unread``."""
    flags = str(item.meta.get("flags", ""))
    return flags.replace("S", "") if unread else flags
