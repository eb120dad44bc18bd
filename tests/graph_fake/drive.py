"""A user's OneDrive in the fake: items by id, file bytes, and a change log for delta.

Items are tracked by id and parent id only; delta answers never carry paths (graph.md §1.4).
A deleted item leaves a tombstone so delta can report it with the `deleted` facet.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.graph_fake.quickxor import quickxorhash


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def item_id() -> str:
    """An id in OneDrive for Business style: `01` and 32 base32 characters."""
    return "01" + base64.b32encode(secrets.token_bytes(20)).decode()[:32]


@dataclass
class DriveItem:
    id: str
    name: str
    parent_id: str | None
    is_folder: bool
    content: bytes
    created: datetime
    modified: datetime
    version: int = 1  # any change: the eTag
    content_version: int = 1  # content changes only: the cTag (a rename or move keeps it)
    # The dates a client set (`fileSystemInfo`); the service's own dates when none was set.
    client_created: datetime | None = None
    client_modified: datetime | None = None

    def to_json(self, drive: Drive) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "eTag": f'"{{{self.id}}},{self.version}"',
            "cTag": f'"c:{{{self.id}}},{self.content_version}"',
            "createdDateTime": self.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastModifiedDateTime": self.modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "size": len(self.content) if not self.is_folder else drive.folder_size(self.id),
            "parentReference": drive.parent_reference(self.parent_id),
            "fileSystemInfo": {
                "createdDateTime": _stamp(self.client_created or self.created),
                "lastModifiedDateTime": _stamp(self.client_modified or self.modified),
            },
        }
        if self.parent_id is None:
            body["root"] = {}
        if self.is_folder:
            body["folder"] = {"childCount": len(drive.children(self.id))}
        else:
            body["file"] = {
                "mimeType": "application/octet-stream",
                "hashes": {"quickXorHash": quickxorhash(self.content)},
            }
        return body


class Drive:
    def __init__(self, owner_id: str, now: datetime) -> None:
        self.id = "b!" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")
        self.owner_id = owner_id
        self.root = DriveItem(item_id(), "root", None, True, b"", now, now)
        self.items: dict[str, DriveItem] = {self.root.id: self.root}
        self.tombstones: dict[str, DriveItem] = {}
        self.sequence = 0
        self.changes: list[tuple[int, str]] = []
        # Bumped to invalidate every delta and next link (410 resync, graph.md §2.5).
        self.generation = 1
        # The 410's detailed code (the driveItem delta doc's two) and the fresh rounds its
        # Location started; how many of them a client began reading.
        self.resync_code = "resyncChangesApplyDifferences"
        self.resync_rounds: set[str] = set()
        self.resyncs_followed = 0
        self._log(self.root.id)

    def _log(self, changed: str) -> None:
        self.sequence += 1
        self.changes.append((self.sequence, changed))

    def parent_reference(self, parent_id: str | None) -> dict[str, Any]:
        reference: dict[str, Any] = {"driveType": "business", "driveId": self.id}
        if parent_id is not None:
            reference["id"] = parent_id
        return reference

    def children(self, parent_id: str) -> list[DriveItem]:
        return [i for i in self.items.values() if i.parent_id == parent_id]

    def folder_size(self, folder_id: str) -> int:
        return sum(
            len(i.content) if not i.is_folder else self.folder_size(i.id)
            for i in self.children(folder_id)
        )

    def add(
        self,
        name: str,
        when: datetime,
        content: bytes | None = None,
        parent: DriveItem | None = None,
    ) -> DriveItem:
        """A file (with `content`) or a folder (without), under `parent` or the root."""
        item = DriveItem(
            item_id(), name, (parent or self.root).id, content is None, content or b"", when, when
        )
        self.items[item.id] = item
        self._log(item.id)
        return item

    def change(self, changed_id: str, when: datetime, **values: Any) -> DriveItem:
        item = self.items[changed_id]
        for name, value in values.items():
            setattr(item, name, value)
        item.modified, item.version = when, item.version + 1
        if "content" in values:
            item.content_version += 1
        self._log(item.id)
        return item

    def delete(self, deleted_id: str) -> None:
        """Delete an item and, for a folder, everything below it."""
        for child in self.children(deleted_id):
            self.delete(child.id)
        self.tombstones[deleted_id] = self.items.pop(deleted_id)
        self._log(deleted_id)

    def tombstone_json(self, deleted_id: str) -> dict[str, Any]:
        gone = self.tombstones[deleted_id]
        body: dict[str, Any] = {
            "id": gone.id,
            "parentReference": self.parent_reference(gone.parent_id),
            "deleted": {"state": "deleted"},
        }
        body["folder" if gone.is_folder else "file"] = {}
        return body

    def invalidate_delta(self, code: str = "resyncChangesApplyDifferences") -> None:
        self.generation += 1
        self.resync_code = code

    def depth(self, of: str) -> int:
        item = self.items[of]
        return 0 if item.parent_id is None else 1 + self.depth(item.parent_id)
