"""What a job backs up: its users and, per user, the mailbox and/or the drive.

Selected and excluded items are the vendor's ``RESTJobItemComposed`` records; a user item names
its user by ``user.id`` or ``user.name``, a ``PartialOrganization`` item stands for every user;
the ``mailbox``, ``oneDrive`` and ``archiveMailbox`` flags narrow an item to those parts (none
set: mailbox and OneDrive). The In-Place Archive is backed up only where an item selects it with
``archiveMailbox`` (it is a separate, often large mailbox, reached through Graph's beta API).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from keepstone.domain.jobs import BackupType


@dataclass(frozen=True, slots=True)
class Parts:
    mailbox: bool
    onedrive: bool
    archive: bool = False

    def __bool__(self) -> bool:
        return self.mailbox or self.onedrive or self.archive


def stable_user_id(organization_id: str, user: str) -> str:
    """A user's UUID in an organization whose own user ids are names (a Local directory)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"keepstone:{organization_id}:{user}"))


@dataclass(frozen=True, slots=True)
class ScopeUser:
    name: str
    id: str
    # An Office365 user's Entra object id: the vendor's user ids are it followed by the
    # on-premises GUID (zeros for a cloud-only user), so an item id starting with it names it.
    object_id: str = ""


def resolve_scope(
    backup_type: BackupType,
    selected: list[dict[str, Any]],
    excluded: list[dict[str, Any]],
    users: Iterable[ScopeUser],
) -> dict[str, Parts]:
    """user name -> the parts of that user the job backs up (users with no part are absent)."""
    scope: dict[str, Parts] = {}
    for user in users:
        wanted = (
            Parts(True, True)
            if backup_type is BackupType.ENTIRE_ORGANIZATION
            else _parts(selected, user)
        )
        unwanted = _parts(excluded, user)
        parts = Parts(
            wanted.mailbox and not unwanted.mailbox,
            wanted.onedrive and not unwanted.onedrive,
            wanted.archive and not unwanted.archive,
        )
        if parts:
            scope[user.name] = parts
    return scope


def _parts(items: list[dict[str, Any]], user: ScopeUser) -> Parts:
    """The union of the parts the user items naming ``user`` cover."""
    mailbox = onedrive = archive = False
    for item in items:
        if item.get("type") not in ("User", "PartialOrganization") or not _names(item, user):
            continue
        flags = (item.get("mailbox"), item.get("oneDrive"), item.get("archiveMailbox"))
        whole = all(flag is None for flag in flags)
        mailbox |= whole or bool(flags[0])
        onedrive |= whole or bool(flags[1])
        archive |= bool(flags[2])
    return Parts(mailbox, onedrive, archive)


def _names(item: dict[str, Any], user: ScopeUser) -> bool:
    if item.get("type") == "PartialOrganization":
        return True
    who = item.get("user") or {}
    ids = [i for i in (who.get("id"), item.get("id")) if isinstance(i, str)]
    if user.id in ids or (user.object_id and any(i.startswith(user.object_id) for i in ids)):
        return True
    return user.name in (who.get("name"), who.get("displayName"))
