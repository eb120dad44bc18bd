"""Putting messages back into an Exchange Online mailbox through Graph.

Each message is created from JSON directly in its folder, non-draft, with its dates and flags
(``mime_message`` says how). Its attachments ride in the create while the request stays under
Graph's 4 MB cap; the rest follow one by one (``POST …/attachments``) or, from 3 MB, through an
upload session (``…/attachments/createUploadSession``, fragments under 4 MB, PUT to the session
URL without the token). A message whose attachments cannot all be added is deleted again and
fails (never a half message). The MIME create is not used: it always makes a draft in Drafts
whose state cannot be changed, so it never gives the same result, even for a draft (JSON without
PR_MESSAGE_FLAGS makes a draft in place, in one request).

Folders: the item's own (``folder_names`` from the top of the mailbox; its well-known ``role``
maps to the target's well-known folder whatever it is called there), or the requested one; each
created where missing, ``ErrorFolderExists`` (a concurrent creation) answered by looking again.
Children are listed once per parent and kept, so N messages cost no folder requests past the
first of each folder. Items of other organizations (IMAP roles, Maildir letters) restore too.

Collisions (skip / overwrite / keepBoth) are decided by internetMessageId in the target folder
as it was before the restore (a folder the restore created holds none; keepBoth asks nothing):
``$filter=internetMessageId eq '…'``, for 20 messages at a time in one ``$batch``
(``mail_lookup``); overwrite creates the new copy before it deletes the old (never zero copies).

Never twice: every create carries a restore tag (``mail_lookup.TAG_PROPERTY``: this put-back's
run id and a hash of the item's key) and is sent without the client's replay; when its answer is
lost (the connection drops once the request was sent), the folder is asked for the tag before
the create is sent again, so a message Graph made is used, not made a second time. An
attachment added after the create (or the last fragment of its upload session) is sent the same
way; after a lost answer the new message's attachments are counted before it is sent again.

Options (``MailOptions``, the vendor's Exchange restore options): ``mark_unread`` restores every
message unread (``markRestoredAsUnread``); ``excluded_roles`` skips the messages of those
well-known folders (``excludeDrafts``, ``excludeDeletedItems``); ``existing=False`` skips a
message already in its target folder (``changedItems: false``) and ``missing=False`` one that is
not (``deletedItems: false``), by the same Message-ID lookups as the collision policy, then asked
even under keepBoth.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from keepstone.domain.errors import InvalidInput, KeepstoneError
from keepstone.engine import Item
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.auth import CredentialError
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.errors import (
    GraphAnswerLost,
    GraphAuthError,
    GraphError,
    GraphThrottled,
    GraphUnavailable,
    TokenError,
)
from keepstone.sources.graph.mail_lookup import (
    BATCH,
    TAG_PROPERTY,
    found_ids,
    look_up_many,
    look_up_one,
    lookup_path,
    tag_path,
)
from keepstone.sources.graph.mime_message import (
    FLAG_STATUSES,
    IMPORTANCES,
    Attachment,
    GraphMessage,
    MailState,
    to_graph,
)
from keepstone.sources.imap.restore import requested_folder
from keepstone.sources.targets import Collision, Outcome, Placement, Reader

IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}
JSON = {"Content-Type": "application/json"} | IMMUTABLE
MAX_REQUEST = 4 * 1024 * 1024  # Graph's request body cap (graph.md §0 #5)
REQUEST_BUDGET = MAX_REQUEST - 64 * 1024  # room for the JSON around the message
SESSION_MIN = 3 * 1024 * 1024  # smaller attachments cannot use an upload session
SESSION_MAX = 150 * 1024 * 1024  # larger ones cannot be attached at all
FRAGMENT = 3 * 1024 * 1024 + 512 * 1024  # each upload PUT stays under 4 MB
WELL_KNOWN = frozenset({"inbox", "sentitems", "drafts", "deleteditems", "junkemail", "archive"})
IMAP_ROLES = {
    "\\sent": "sentitems",
    "\\drafts": "drafts",
    "\\trash": "deleteditems",
    "\\junk": "junkemail",
    "\\archive": "archive",
}
FOLDER_PAGE = 100
CREATE_ATTEMPTS = 3  # sends of one create whose answers were lost, before the message fails
# the whole put-back stops at these: another request would fail the same way
FATAL = (GraphAuthError, GraphThrottled, GraphUnavailable, TokenError, CredentialError)


class PutBackFailed(KeepstoneError):
    """One message could not be put back; says what Graph answered."""


@dataclass(frozen=True, slots=True)
class MailOptions:
    """How messages are put back beyond where (see the module's text)."""

    mark_unread: bool = False
    excluded_roles: frozenset[str] = frozenset()
    existing: bool = True  # put back a message already in its target folder
    missing: bool = True  # put back a message its target folder lacks

    @property
    def looks_up(self) -> bool:
        """Whether messages are looked for in the target even when both copies are kept."""
        return not (self.existing and self.missing)


def put_back_mail(
    client: GraphClient,
    user: GraphUser,
    items: Sequence[Item],
    read: Reader,
    where: Placement,
    options: MailOptions | None = None,
) -> Iterator[Outcome]:
    """Write ``items`` (messages) into ``user``'s mailbox at ``where``; one outcome each.
    Raises InvalidInput before any request when the request itself is refused."""
    if any(item.kind != "mail" for item in items):
        raise InvalidInput("only messages can be put back into a mailbox", "ids")
    if not user.has_mailbox:
        raise InvalidInput(f"user '{user.name}' has no mailbox", "userName")
    requested = requested_folder(where.folder)
    restore = _MailRestore(client, user, read, where, requested, options or MailOptions())
    return restore.run(items)


def restore_tag(run: str, item: Item) -> str:
    """The tag a put-back gives the message it makes of ``item``: its run and the item."""
    return f"{run}:{hashlib.sha256(item.key.encode()).hexdigest()[:32]}"


def state_of(item: Item) -> MailState:
    """Read, flag, draft, dates and labels from the item's metadata, whatever its source."""
    meta = item.meta
    if meta.get("source") == "graph":
        flag = str(meta.get("flag_status") or "notFlagged")
        importance = str(meta.get("importance") or "")
        return MailState(
            read=bool(meta.get("is_read")),
            flag_status=flag if flag in FLAG_STATUSES else "notFlagged",
            draft=bool(meta.get("is_draft")),
            received=_instant(meta.get("received")) or _mtime(item),
            sent=_instant(meta.get("sent")),
            importance=importance if importance in IMPORTANCES else None,
            categories=tuple(str(c) for c in meta.get("categories") or () if str(c)),
        )
    letters = str(meta.get("flags") or "")
    imap = {str(f).lower() for f in meta.get("imap_flags") or ()}
    return MailState(
        read="S" in letters or "\\seen" in imap,
        flag_status="flagged" if "F" in letters or "\\flagged" in imap else "notFlagged",
        draft="D" in letters or "\\draft" in imap,
        received=_instant(meta.get("internal_date")) or _mtime(item),
    )


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _mtime(item: Item) -> datetime | None:
    try:
        return datetime.fromtimestamp(item.mtime, UTC) if item.mtime > 0 else None
    except (OverflowError, OSError, ValueError):
        return None


def folder_path(item: Item) -> tuple[str, ...]:
    """The item's folder as names from the top of its mailbox."""
    names = item.meta.get("folder_names")
    if isinstance(names, list) and names and all(isinstance(n, str) and n for n in names):
        return tuple(names)
    return tuple(part for part in item.path.split("/") if part)


def role_of(item: Item) -> str | None:
    """The target's well-known folder for the item's own folder, if it had a role."""
    role = str(item.meta.get("role") or "").lower()
    if role in WELL_KNOWN:
        return role
    if role in IMAP_ROLES:
        return IMAP_ROLES[role]
    if item.meta.get("source") != "graph" and folder_path(item) == ("Inbox",):
        return "inbox"  # Local and IMAP name the inbox so, with no role
    return None


class _MailRestore:
    def __init__(
        self,
        client: GraphClient,
        user: GraphUser,
        read: Reader,
        where: Placement,
        requested: tuple[str, ...] | None,
        options: MailOptions,
    ) -> None:
        self.client, self.user, self.read, self.where = client, user, read, where
        self.requested = requested
        self.options = options
        self.run_id = uuid.uuid4().hex  # this put-back's part of every restore tag
        self.base = f"/v1.0/users/{quote(user.graph_id, safe='')}"
        self.children: dict[str, dict[str, str]] = {}  # parent key -> lower name -> id
        self.resolved: dict[tuple[str, ...], str] = {}  # (role or "", *names) -> folder key
        self.gone: PutBackFailed | None = None  # why the put-back stopped, if it did
        # folders this put-back created: empty before it, so nothing there can collide (as
        # for IMAP, collisions are with what the folder held before the restore)
        self.created: set[str] = set()
        self.user_path = f"/users/{quote(user.graph_id, safe='')}"
        self.known: dict[str, list[str]] = {}  # lookup path -> ids, from the window's batch

    def run(self, items: Sequence[Item]) -> Iterator[Outcome]:
        for start in range(0, len(items), BATCH):
            window = items[start : start + BATCH]
            self._prefetch(window)
            yield from self._each(window)

    def _each(self, items: Sequence[Item]) -> Iterator[Outcome]:
        for item in items:
            if self.gone is not None:
                yield Outcome(item, error=self.gone)
                continue
            try:
                restored = self._one(item)
            except FATAL as error:
                self.gone = _failed(error)
                yield Outcome(item, error=self.gone)
                continue
            except GraphError as error:
                yield Outcome(item, error=_failed(error))
                continue
            except (OSError, ValueError, KeepstoneError) as error:
                yield Outcome(item, error=_unreadable(error))
                continue
            yield Outcome(item, restored=restored)

    # ----- one message -----

    def _one(self, item: Item) -> bool:
        """Put one message back; False when skipped as already there."""
        if role_of(item) in self.options.excluded_roles:
            return False
        folder = self._folder(item)
        state = state_of(item)
        if self.options.mark_unread:
            state = replace(state, read=False)
        message = to_graph(self.read(item).read(), state)
        existing = self._existing(folder, message.message_id)
        if existing and (self.where.collision is Collision.SKIP or not self.options.existing):
            return False
        if not existing and not self.options.missing:
            return False
        tag = restore_tag(self.run_id, item)
        message.body["singleValueExtendedProperties"].append({"id": TAG_PROPERTY, "value": tag})
        self._create(folder, message, tag)
        if self.where.collision is Collision.OVERWRITE:
            for old in existing:
                self._delete(old)
        return True

    def _existing(self, folder: str, message_id: str) -> list[str]:
        if self._keeps_both() or not message_id or folder in self.created:
            return []
        path = lookup_path(self.user_path, folder, message_id)
        if path in self.known:  # asked in the window's batch; once (a repeat asks again)
            return self.known.pop(path)
        return look_up_one(self.client, self.user.graph_id, path)

    def _keeps_both(self) -> bool:
        """Whether nothing in the target matters: both copies kept, whatever is there."""
        return self.where.collision is Collision.KEEP_BOTH and not self.options.looks_up

    def _prefetch(self, window: Sequence[Item]) -> None:
        """The collision lookups of a window of messages, in one ``$batch``, by the
        Message-IDs their metadata names (the MIME's own is checked against it later)."""
        self.known.clear()
        if self._keeps_both() or self.gone is not None:
            return
        paths: dict[str, str] = {}
        for item in window:
            message_id = " ".join(str(item.meta.get("message_id") or "").split())
            if not message_id or role_of(item) in self.options.excluded_roles:
                continue
            try:
                folder = self._folder(item)
            except (GraphError, KeepstoneError, TokenError, CredentialError):
                return  # the message's own turn meets the same failure and reports it
            if folder not in self.created:
                paths.setdefault(lookup_path(self.user_path, folder, message_id), "")
        if len(paths) < 2:
            return  # one lookup costs one request either way
        keyed = {str(n): path for n, path in enumerate(paths)}
        try:
            found = look_up_many(self.client, self.user.graph_id, keyed)
        except (GraphError, TokenError, CredentialError):
            return  # each message asks on its own
        self.known = {keyed[key]: ids for key, ids in found.items()}

    def _create(self, folder: str, message: GraphMessage, tag: str) -> None:
        inline, later = _plan(message)
        body = message.body | {"attachments": [a.as_json() for a in inline]}
        raw = json.dumps(body).encode()
        if len(raw) > MAX_REQUEST:
            raise PutBackFailed("the message body alone is over Graph's 4 MB request limit")
        for attachment in later:
            if len(attachment.data) > SESSION_MAX:
                raise PutBackFailed(f"attachment '{attachment.name}' is over 150 MB")
        made = self._make(folder, raw, tag)
        message_url = f"{self.base}/messages/{quote(str(made['id']), safe='')}"
        try:
            for number, attachment in enumerate(later, start=len(inline) + 1):
                self._attach_once(message_url, attachment, number)
        except (GraphError, KeepstoneError):
            self._forget(message_url)  # never leave a message without its attachments
            raise

    def _make(self, folder: str, raw: bytes, tag: str) -> dict[str, Any]:
        """Create the message, never twice: after a lost answer the tag is looked for first."""
        url = f"{self._folder_url(folder)}/messages"
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return self._post(url, raw, replay=False)
            except GraphAnswerLost:
                if attempt == CREATE_ATTEMPTS:
                    raise
            path = tag_path(self.user_path, folder, tag)
            found = look_up_one(self.client, self.user.graph_id, path)
            if found:
                return {"id": found[0]}
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _attach_once(self, message_url: str, attachment: Attachment, number: int) -> None:
        """Add the message's ``number``-th attachment, never twice: after a lost answer the
        message's attachments are counted (the message is new: only this put-back adds any)."""
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                self._attach(message_url, attachment)
                return
            except GraphAnswerLost:
                if attempt == CREATE_ATTEMPTS:
                    raise
            listed = self.client.get_json(
                f"{message_url}/attachments?$select=id", scope=self.user.graph_id
            )
            if len(found_ids(listed)) >= number:
                return

    def _attach(self, message_url: str, attachment: Attachment) -> None:
        if len(attachment.data) < SESSION_MIN:
            body = json.dumps(attachment.as_json()).encode()
            self._post(f"{message_url}/attachments", body, replay=False)
            return
        session = self._post(
            f"{message_url}/attachments/createUploadSession",
            json.dumps(
                {
                    "AttachmentItem": attachment.header_json()
                    | {"attachmentType": "file", "size": len(attachment.data)}
                }
            ).encode(),
        )
        url = str(session.get("uploadUrl") or "")
        data, total = attachment.data, len(attachment.data)
        for start in range(0, total, FRAGMENT):
            fragment = data[start : start + FRAGMENT]
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"bytes {start}-{start + len(fragment) - 1}/{total}",
            }
            # the upload URL carries its own authentication; the client sends the token
            # only to Graph's own host
            last = start + len(fragment) >= total  # it adds the attachment: never twice
            self.client.request(
                "PUT",
                url,
                scope=self.user.graph_id,
                headers=headers,
                content=fragment,
                replay=not last,
            )

    def _post(self, url: str, raw: bytes, *, replay: bool = True) -> dict[str, Any]:
        answer = self.client.request(
            "POST", url, scope=self.user.graph_id, headers=JSON, content=raw, replay=replay
        )
        try:
            document = answer.json()
        except ValueError:
            raise PutBackFailed("Graph's answer to a create is not JSON") from None
        if not isinstance(document, dict):
            raise PutBackFailed("Graph's answer to a create is not a JSON object")
        return document

    def _delete(self, message_id: str) -> None:
        url = f"{self.base}/messages/{quote(message_id, safe='')}"
        try:
            self.client.request("DELETE", url, scope=self.user.graph_id, headers=IMMUTABLE)
        except GraphError as error:
            if error.status != 404:  # already gone is what overwrite wants
                raise

    def _forget(self, message_url: str) -> None:
        # the failure being reported already says the message is incomplete
        with contextlib.suppress(GraphError):
            self.client.request("DELETE", message_url, scope=self.user.graph_id)

    # ----- folders -----

    def _folder_url(self, key: str) -> str:
        return f"{self.base}/mailFolders/{quote(key, safe='')}"

    def _folder(self, item: Item) -> str:
        """The target folder's key (an id or a well-known name), created as needed."""
        if self.requested is not None:
            base, names = "", self.requested
        elif item.meta.get("mailbox") == "archive":
            # Graph v1.0 writes no archive mailbox: its folders go under the target's Archive
            base, names = "archive", folder_path(item)
        else:
            role = role_of(item)
            if role is not None:
                return role  # the item's own folder is the target's well-known one
            base, names = "", folder_path(item)
        if not names:
            return base or "inbox"  # a message with no folder at all goes to the inbox
        if (base, *names) not in self.resolved:
            parent = base  # "" is the top of the mailbox (msgfolderroot)
            for name in names:
                parent = self._child(parent, name)
            self.resolved[(base, *names)] = parent
        return self.resolved[(base, *names)]

    def _child(self, parent: str, name: str) -> str:
        known = self._listed(parent, fresh=False)
        if name.lower() in known:
            return known[name.lower()]
        url = f"{self._folder_url(parent)}/childFolders" if parent else f"{self.base}/mailFolders"
        try:
            made = self._post(url, json.dumps({"displayName": name}).encode())
        except GraphError as error:
            if error.code != "ErrorFolderExists":
                raise
            known = self._listed(parent, fresh=True)  # made meanwhile, or hidden: look again
            if name.lower() not in known:
                raise
            return known[name.lower()]
        known[name.lower()] = str(made["id"])
        self.created.add(known[name.lower()])
        return known[name.lower()]

    def _listed(self, parent: str, *, fresh: bool) -> dict[str, str]:
        if fresh or parent not in self.children:
            url = (
                f"{self._folder_url(parent)}/childFolders" if parent else f"{self.base}/mailFolders"
            )
            walk = self.client.iterate_pages(
                f"{url}?includeHiddenFolders=true&$top={FOLDER_PAGE}",
                scope=self.user.graph_id,
                headers=IMMUTABLE,
            )
            found: dict[str, str] = {}
            for page in walk:
                for folder in page:
                    name, key = folder.get("displayName"), folder.get("id")
                    if isinstance(name, str) and isinstance(key, str):
                        found.setdefault(name.lower(), key)
            self.children[parent] = found
        return self.children[parent]


def _plan(message: GraphMessage) -> tuple[list[Attachment], list[Attachment]]:
    """Which attachments ride in the create (in their order, while under the cap) and which
    follow it."""
    room = REQUEST_BUDGET - len(json.dumps(message.body).encode())
    inline: list[Attachment] = []
    later: list[Attachment] = []
    for attachment in message.attachments:
        if attachment.encoded_size <= room:
            inline.append(attachment)
            room -= attachment.encoded_size
        else:
            later.append(attachment)
    return inline, later


def _failed(error: Exception) -> PutBackFailed:
    if isinstance(error, GraphError):
        return PutBackFailed(
            f"Graph refused the message: {error.status} {error.code}: {error.message}"
        )
    if isinstance(error, PutBackFailed):
        return error
    return PutBackFailed(f"Graph cannot be used: {error}")


def _unreadable(error: Exception) -> KeepstoneError:
    if isinstance(error, KeepstoneError):
        return error
    return PutBackFailed(f"the backed-up message cannot be read: {error}")
