"""A user's Exchange mailbox in the fake: folders, messages (MIME bytes), a change log per folder.

The change log is what message delta reads: every add, update and removal appends the message
id with a new sequence number (graph.md §6.2 "append-only change log with sequence numbers").

Ids (graph.md §1.3 "Stable IDs"): a message has an immutable id (`Message.id`, what a request
with `Prefer: IdType="ImmutableId"` sees) and a REST id that a move between folders changes
(what a request without it sees). To keep ids simple in tests the first REST id equals the
immutable id; a move gives a new REST id, so a client without the header sees the moved message
as a removal and a new message under another id. Either current form finds the message.

An In-Place Archive (`add_archive`) is a mailbox of its own, addressed by its
`inPlaceArchiveMailboxId` ("MBX:<guid>@<tenant>") through the beta mail API (graph.md §1.3).
An auto-expanding archive moves a folder's content to an auxiliary archive (`expand_folder`):
the main archive keeps the folder in its hierarchy, the messages live in the auxiliary one under
the same folder id, and reads of that folder or its messages through the main archive answer
`308 Permanent Redirect` toward the auxiliary archive ("Handle archive mailbox redirects").
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from typing import Any

WELL_KNOWN = {
    "inbox": "Inbox",
    "drafts": "Drafts",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
    "archive": "Archive",
}


def exchange_id(prefix: str = "AAMkAG") -> str:
    """An id in Exchange's style: long, base64url, case-sensitive."""
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(33)).decode()


@dataclass
class MailFolder:
    id: str
    display_name: str
    parent_id: str
    is_hidden: bool = False
    well_known: str | None = None

    def to_json(self, mailbox: Mailbox) -> dict[str, Any]:
        # an expanded folder's counts are the main archive's own (its content is elsewhere):
        # nothing documents them following the content, so the fake shows the hard case, 0
        messages = [m for m in mailbox.messages.values() if m.folder_id == self.id]
        return {
            "id": self.id,
            "displayName": self.display_name,
            "parentFolderId": self.parent_id,
            "childFolderCount": len(mailbox.children(self.id, hidden=True)),
            "unreadItemCount": sum(1 for m in messages if not m.is_read),
            "totalItemCount": len(messages),
            "isHidden": self.is_hidden,
        }


_PARSED: dict[bytes, tuple[bool, str, str]] = {}


@dataclass
class Message:
    id: str
    folder_id: str
    mime: bytes
    received: datetime
    last_modified: datetime
    is_read: bool = False
    is_draft: bool = False
    flag_status: str = "notFlagged"
    categories: list[str] = field(default_factory=list)
    change_key: str = field(default_factory=lambda: exchange_id("CQAAABYAAA"))
    rest_id: str = ""  # "" until a move gives the message a new REST id

    def id_for(self, immutable: bool) -> str:
        return self.id if immutable or not self.rest_id else self.rest_id

    def _headers(self) -> tuple[bool, str, str]:
        """(hasAttachments, internetMessageId, subject) of the MIME, parsed once per content
        (delta pages show a message many times; parsing each time made big folders slow)."""
        cached = _PARSED.get(self.mime)
        if cached is None:
            parsed = message_from_bytes(self.mime, policy=policy.default)
            attachments = parsed.is_multipart() and any(True for _ in parsed.iter_attachments())
            cached = (
                attachments,
                str(parsed.get("Message-ID", "")),
                str(parsed.get("Subject", "")),
            )
            if len(_PARSED) > 50_000:
                _PARSED.clear()
            _PARSED[self.mime] = cached
        return cached

    def to_json(self) -> dict[str, Any]:
        has_attachments, message_id, subject = self._headers()
        stamp = self.received.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "@odata.type": "#microsoft.graph.message",
            "@odata.etag": f'W/"{self.change_key}"',
            "id": self.id,
            "createdDateTime": stamp,
            "lastModifiedDateTime": self.last_modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "changeKey": self.change_key,
            "categories": list(self.categories),
            "receivedDateTime": stamp,
            "sentDateTime": stamp,
            "hasAttachments": has_attachments,
            "internetMessageId": message_id,
            "subject": subject,
            "importance": "normal",
            "parentFolderId": self.folder_id,
            "isRead": self.is_read,
            "isDraft": self.is_draft,
            "flag": {"flagStatus": self.flag_status},
        }


# Properties `$select` may name on a message.
MESSAGE_PROPERTIES = frozenset(Message("", "", b"", datetime.min, datetime.min).to_json()) - {
    "@odata.type",
    "@odata.etag",
}


class Mailbox:
    """Folders, messages and the per-folder change log of one user's mailbox."""

    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id
        # mailboxSettings.userPurpose: user, shared, room, equipment, linked, others.
        self.purpose = "user"
        self.root = MailFolder(exchange_id("AAMkAGroot"), "Top of Information Store", "", True)
        self.folders: dict[str, MailFolder] = {self.root.id: self.root}
        self.messages: dict[str, Message] = {}
        self.sequence = 0
        # folder id -> [(sequence, message id)]
        self.changes: dict[str, list[tuple[int, str]]] = {}
        # folder id -> current sync state generation (graph.md §2.5)
        self.generations: dict[str, int] = {}
        # REST id -> immutable id, for messages a move gave a new REST id
        self.rest_ids: dict[str, str] = {}
        # (folder id, immutable id) -> the REST id the message had there (its tombstone's id)
        self.former_rest_ids: dict[tuple[str, str], str] = {}
        # Messages delta lists but `$value`/GET no longer finds (deleted in between)
        self.vanished: set[str] = set()
        self.archive: Mailbox | None = None
        self.archive_id: str | None = None
        # auxiliary archive id -> mailbox; expanded folder id -> the auxiliary id holding it
        self.auxiliaries: dict[str, Mailbox] = {}
        self.expanded: dict[str, str] = {}
        for well_known, name in WELL_KNOWN.items():
            self.add_folder(name, well_known=well_known)

    def add_archive(self, tenant_id: str) -> Mailbox:
        """The user's In-Place Archive: a separate mailbox with its own folders."""
        self.archive = Mailbox(self.owner_id)
        self.archive_id = f"MBX:{secrets.token_hex(16)}@{tenant_id}"
        return self.archive

    def expand_folder(self, folder: MailFolder, tenant_id: str) -> Mailbox:
        """Move `folder`'s messages to a new auxiliary archive (same folder and message ids);
        the folder stays in this mailbox's hierarchy as the expanded folder."""
        auxiliary = Mailbox(self.owner_id)
        aux_id = f"MBX:{secrets.token_hex(16)}@{tenant_id}"
        self.auxiliaries[aux_id] = auxiliary
        self.expanded[folder.id] = aux_id
        copy = MailFolder(folder.id, folder.display_name, auxiliary.root.id, folder.is_hidden)
        auxiliary.folders[copy.id] = copy
        for message in [m for m in self.messages.values() if m.folder_id == folder.id]:
            del self.messages[message.id]
            auxiliary.messages[message.id] = message
            auxiliary._log(folder.id, message.id)
        return auxiliary

    def holder_of(self, message_key: str) -> str | None:
        """The auxiliary archive holding a message this mailbox does not (None if none)."""
        for aux_id, auxiliary in self.auxiliaries.items():
            if auxiliary.find(message_key) is not None:
                return aux_id
        return None

    def find(self, key: str) -> Message | None:
        """A message by its immutable id or its current REST id (case-sensitive)."""
        if key in self.vanished:
            return None
        return self.messages.get(self.rest_ids.get(key, key))

    def move_message(self, message_id: str, folder: MailFolder, when: datetime) -> Message:
        """`POST /messages/{id}/move`: a removal in the old folder, an add in the new one, and
        a new REST id (the immutable id stays)."""
        message = self.messages[message_id]
        old_folder = message.folder_id
        self.former_rest_ids[(old_folder, message.id)] = message.id_for(False)
        if message.rest_id:
            del self.rest_ids[message.rest_id]
        message.rest_id = exchange_id()
        self.rest_ids[message.rest_id] = message.id
        message.folder_id = folder.id
        message.last_modified = when
        message.change_key = exchange_id("CQAAABYAAA")
        self._log(old_folder, message.id)
        self._log(folder.id, message.id)
        return message

    def add_folder(
        self,
        name: str,
        parent: MailFolder | None = None,
        hidden: bool = False,
        well_known: str | None = None,
    ) -> MailFolder:
        folder = MailFolder(
            exchange_id("AAMkAGfld"), name, (parent or self.root).id, hidden, well_known
        )
        self.folders[folder.id] = folder
        return folder

    def children(self, parent_id: str, hidden: bool) -> list[MailFolder]:
        return [
            f
            for f in self.folders.values()
            if f.parent_id == parent_id and (hidden or not f.is_hidden)
        ]

    def folder(self, key: str) -> MailFolder | None:
        """A folder by id (case-sensitive) or well-known name (case-insensitive)."""
        if key in self.folders:
            return self.folders[key]
        if key.lower() == "msgfolderroot":
            return self.root
        return next((f for f in self.folders.values() if f.well_known == key.lower()), None)

    def _log(self, folder_id: str, message_id: str) -> None:
        self.sequence += 1
        self.changes.setdefault(folder_id, []).append((self.sequence, message_id))

    def add_message(self, folder: MailFolder, mime: bytes, when: datetime) -> Message:
        message = Message(exchange_id(), folder.id, mime, when, when)
        self.messages[message.id] = message
        self._log(folder.id, message.id)
        return message

    def update_message(self, message_id: str, when: datetime, **changes: Any) -> Message:
        message = self.messages[message_id]
        for name, value in changes.items():
            setattr(message, name, value)
        message.last_modified = when
        message.change_key = exchange_id("CQAAABYAAA")
        self._log(message.folder_id, message.id)
        return message

    def delete_message(self, message_id: str) -> None:
        message = self.messages.pop(message_id)
        self.former_rest_ids[(message.folder_id, message.id)] = message.id_for(False)
        if message.rest_id:
            del self.rest_ids[message.rest_id]
        self._log(message.folder_id, message.id)

    def invalidate_delta(self, folder_id: str) -> None:
        """Forget the folder's sync states: every earlier delta or next link then gets 410."""
        self.generations[folder_id] = self.generations.get(folder_id, 0) + 10
