"""One Exchange Online mailbox (primary or In-Place Archive) read through Graph, incrementally.

- **Folders**: ``mailFolders?includeHiddenFolders=true`` and, for every folder whose
  ``childFolderCount`` is not 0, its ``childFolders`` (same option). Not ``mailFolders/delta``:
  v1.0 documents neither ``includeHiddenFolders`` nor nested folders for it (graph.md §7), and a
  folder missed is mail lost; the walk costs one request plus one per folder that has children.
  Well-known roles (what a restore places by) cost one ``$batch`` of 6 inner requests, only
  when a folder is new to the job; Graph counts each inner request, so they are few.
- **Messages**: per folder, ``messages/delta`` with ``$select`` (only what the item meta needs)
  and ``Prefer: odata.maxpagesize``; its delta link is kept in the folder's item and followed next
  run. A folder the listing shows empty (``totalItemCount`` 0) gets no delta round at all: it is
  read whole once it holds mail again (requests: about one per message plus one per non-empty
  folder, graph.md §6.3 G2/G3). New messages are fetched as MIME (``$value``, one request
  each, a few in parallel); a message the previous restore point holds is never downloaded
  again (a read/flag change or a move only changes its metadata: ``Prefer:
  IdType="ImmutableId"`` keeps ids across moves); ``@removed`` drops it from the folder.
- **Lost sync state** (``410 SyncStateNotFound``) or a folder whose previous state is incomplete:
  the folder is read again from scratch and merged by id (a message already stored is carried,
  never downloaded twice; delta replays are merged the same way).
- Messages seen by no delta this run keep their previous item (carried at the end, once, only
  if no folder reported them: a move reported by one folder wins over the stale copy of another).

Per-item problems (a message gone between delta and ``$value``, an unreadable MIME) are
``on_skip`` warnings and leave the folder ``complete: false`` (read whole next run). A mailbox
that cannot be read at all (no mailbox, unknown user, auth, Graph still failing after the
client's retries) raises ``PartFailed`` after carrying over what this run did not reach.

The archive: Graph v1.0 cannot reach In-Place Archives ("The API does not support accessing
in-place archive mailboxes", Outlook mail API overview). The documented way is the beta Mail API
for archive mailboxes: ``GET /beta/users/{id}/settings/exchange`` gives
``inPlaceArchiveMailboxId``, which addresses the archive as a user in ``/beta/users/{id}/...``.
An auto-expanding archive keeps a folder's content in an auxiliary archive: reads through the
main archive answer ``308`` toward it, which the client follows (on Graph only, a few at most);
the folder's delta link then names the auxiliary archive and is kept as any other.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, unquote

from keepstone.engine import Item
from keepstone.sources.connector import PartFailed, SkipHandler, Skipped, SourceItem
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.errors import (
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphSyncStateLost,
    GraphThrottled,
    GraphUnavailable,
)
from keepstone.sources.local import headers_of
from keepstone.sources.names import display, key_part

MailboxKind = Literal["primary", "archive"]
MESSAGE_MODE = 0o600
PAGE_SIZE = 500  # Outlook's documented delta page maximum (Corso: "[1-500]")
FOLDER_PAGE = 250
FETCHERS = 4  # parallel $value requests: Outlook allows 4 in flight per mailbox
FULL_ROUNDS = 2  # a full read whose state is lost midway is started again once
IMMUTABLE = 'IdType="ImmutableId"'
MESSAGE_SELECT = (
    "id,changeKey,receivedDateTime,sentDateTime,internetMessageId,subject,isRead,isDraft,"
    "flag,importance,categories"
)
FOLDER_SELECT = "id,displayName,parentFolderId,childFolderCount,totalItemCount"
# Well-known names resolved to roles (one $batch, only when a folder is new): only the roles a
# restore places messages by (mail_restore.WELL_KNOWN; a test keeps the two equal). Each inner
# request of a $batch counts against the mailbox's budget like a request of its own, so asking
# names no restore uses would cost requests for nothing.
WELL_KNOWN = ("inbox", "drafts", "sentitems", "deleteditems", "junkemail", "archive")
MAILBOX_GONE = frozenset({"MailboxNotEnabledForRESTAPI", "ErrorInvalidUser", "ResourceNotFound"})


@dataclass(frozen=True)
class MailFolder:
    id: str
    parent_id: str
    names: tuple[str, ...]  # display names from the top of the mailbox
    role: str | None = None
    has_children: bool = False
    empty: bool = False  # the listing's totalItemCount is 0: no delta round needed

    @property
    def path(self) -> str:
        return "/".join(_segment(name) for name in self.names)


@dataclass
class _Pass:
    """What one folder's reading produced: message ids now in it, and whether all were kept."""

    members: set[str] = field(default_factory=set)
    complete: bool = True
    delta_link: str | None = None


class MailboxBackup:
    """``items()`` gives the mailbox's messages and folder states for one restore point."""

    def __init__(
        self,
        client: GraphClient,
        user: GraphUser,
        mailbox: MailboxKind,
        previous: Iterable[Item],
        on_skip: SkipHandler,
        *,
        page_size: int = PAGE_SIZE,
        fetchers: int = FETCHERS,
    ) -> None:
        self.client = client
        self.user = user
        self.mailbox = mailbox
        self.on_skip = on_skip
        self.page_size = page_size
        self.fetchers = fetchers
        self.scope = user.graph_id  # the throttling scope: Outlook limits per app and mailbox
        self.base = f"/v1.0/users/{quote(user.graph_id, safe='')}"
        mine = [i for i in previous if i.meta.get("source") == "graph"]
        mine = [i for i in mine if i.meta.get("mailbox") == mailbox]
        self.folders_before = {str(i.meta.get("folder_id")): i for i in mine if i.kind == "folder"}
        self.messages_before = {str(i.meta.get("graph_id")): i for i in mine if i.kind == "mail"}
        self.given: set[str] = set()  # message ids given this run
        self.quiet: dict[str, tuple[MailFolder, Item]] = {}  # carried unless a delta says more
        self.requests = 0
        self._count_lock = threading.Lock()

    # ----- the run -----

    def items(self) -> Iterator[SourceItem]:
        done: set[str] = set()
        try:
            if self.mailbox == "archive":
                archive = self._archive_base()
                if archive is None:
                    return  # no In-Place Archive: nothing to back up, nothing wrong
                self.base = archive
            folders = self._folders()
            if self.mailbox == "archive":
                # an expanded folder's count may be the main archive's (0) while its messages
                # live in an auxiliary archive: there an empty-looking folder is still read
                folders = [replace(f, empty=False) for f in folders]
            self._resolve_roles(folders)
            with ThreadPoolExecutor(self.fetchers, thread_name_prefix="keepstone-mail") as pool:
                for folder in folders:
                    yield from self._folder(pool, folder)
                    done.add(folder.id)
            yield from self._carry_quiet()
        except GraphError as error:
            yield from self._carry_rest(done)
            raise PartFailed(f"{self._label()} cannot be read: {_why(error)}") from error

    def _label(self) -> str:
        return "archive mailbox" if self.mailbox == "archive" else "mailbox"

    def _archive_base(self) -> str | None:
        """The documented (beta) way to the In-Place Archive: its mailbox id as a user; None
        when the user has none (Graph v1.0 cannot tell beforehand, so the job may ask anyway)."""
        settings = self._get(f"/beta/users/{quote(self.user.graph_id, safe='')}/settings/exchange")
        archive = settings.get("inPlaceArchiveMailboxId")
        if not isinstance(archive, str) or not archive:
            return None
        return f"/beta/users/{quote(archive, safe='')}"

    # ----- requests -----

    def _headers(self, page: bool = False) -> dict[str, str]:
        prefer = f"odata.maxpagesize={self.page_size}, {IMMUTABLE}" if page else IMMUTABLE
        return {"Prefer": prefer}

    def _get(self, url: str) -> dict[str, Any]:
        self.requests += 1
        return self.client.get_json(url, scope=self.scope, headers=self._headers())

    def _pages(self, url: str, page: bool = False) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """Pages of a collection, each with the link that follows it (a next or delta link;
        "" when the collection ends without one)."""
        next_url: str | None = url
        while next_url is not None:
            self.requests += 1
            body = self.client.get_json(next_url, scope=self.scope, headers=self._headers(page))
            value = body.get("value", [])
            entries = [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []
            next_url = _link(body, "@odata.nextLink")
            yield entries, next_url or _link(body, "@odata.deltaLink") or ""

    # ----- the folder tree -----

    def _folders(self) -> list[MailFolder]:
        """Every folder, hidden ones included, parents before their children."""
        query = f"includeHiddenFolders=true&$top={FOLDER_PAGE}&$select={FOLDER_SELECT}"
        found: list[MailFolder] = []
        pending: list[tuple[str, tuple[str, ...]]] = [(f"{self.base}/mailFolders?{query}", ())]
        seen: set[str] = set()
        while pending:
            url, names = pending.pop()
            children: list[MailFolder] = []
            for entries, _ in self._pages(url):
                children += [f for e in entries if (f := _folder_of(e, names)) is not None]
            for child in children:
                if child.id in seen:
                    continue  # a cycle or a repeat in hostile data: each folder once
                seen.add(child.id)
                found.append(child)
            pending += [
                (f"{self.base}/mailFolders/{quote(c.id, safe='')}/childFolders?{query}", c.names)
                for c in reversed(children)
                if c.has_children
            ]
        return found

    def _resolve_roles(self, folders: list[MailFolder]) -> None:
        """Roles (well-known names) from the previous state; one $batch asks Graph only when a
        folder is new to this job."""
        roles: dict[str, str | None] = {
            fid: item.meta.get("role") for fid, item in self.folders_before.items()
        }
        if self.mailbox == "primary" and any(f.id not in roles for f in folders):
            roles.update(self._batch_roles())
        for index, folder in enumerate(folders):
            folders[index] = replace(folder, role=roles.get(folder.id))

    def _batch_roles(self) -> dict[str, str | None]:
        relative = self.base.split("/", 2)[2]  # "users/{id}" (the batch runs in its version)
        version = self.base.split("/", 2)[1]
        requests = [
            {
                "id": str(n),
                "method": "GET",
                "url": f"/{relative}/mailFolders/{name}?$select=id",
                "headers": {"Prefer": IMMUTABLE},
            }
            for n, name in enumerate(WELL_KNOWN)
        ]
        self.requests += len(requests)  # Graph counts every inner request on its own
        roles: dict[str, str | None] = {}
        try:
            response = self.client.request(
                "POST",
                f"/{version}/$batch",
                scope=self.scope,
                headers={"Content-Type": "application/json"},
                content=json.dumps({"requests": requests}).encode(),
            )
            answers = response.json().get("responses", [])
        except GraphAuthError:
            raise
        except (GraphError, ValueError, AttributeError):
            return roles  # roles are a convenience: no role beats a failed backup
        for answer in answers if isinstance(answers, list) else []:
            role = _role_answer(answer)
            if role is not None:
                roles[role[0]] = role[1]
        return roles

    # ----- one folder -----

    def _folder(self, pool: ThreadPoolExecutor, folder: MailFolder) -> Iterator[SourceItem]:
        if folder.empty:
            # Nothing to read: no delta round (one request per empty folder on every run saved).
            # Without a delta link the folder is read whole once it holds mail again, and what
            # it held before is gone from it (a move is reported by the folder it went to).
            yield _folder_item(self.user, self.mailbox, folder, _Pass())
            return
        before = self.folders_before.get(folder.id)
        link = before.meta.get("delta_link") if before is not None else None
        incremental = (
            before is not None and before.meta.get("complete") is True and isinstance(link, str)
        )
        start = f"{self.base}/mailFolders/{quote(folder.id, safe='')}/messages/delta"
        rounds = [(str(link), True)] if incremental else []
        rounds += [(f"{start}?$select={MESSAGE_SELECT}", False)] * FULL_ROUNDS
        try:
            outcome = yield from self._rounds(pool, folder, rounds)
        except GraphNotFound as error:
            if error.code in MAILBOX_GONE:
                raise
            return  # the folder was deleted since the listing: not in this restore point
        except GraphError as error:
            if isinstance(error, GraphAuthError | GraphThrottled | GraphUnavailable):
                raise  # the mailbox, not the folder: PartFailed
            self._skip(folder, f"folder cannot be read: {_why(error)}")
            yield from self._carry_folder(folder)
            return
        yield _folder_item(self.user, self.mailbox, folder, outcome)

    def _rounds(
        self, pool: ThreadPoolExecutor, folder: MailFolder, rounds: list[tuple[str, bool]]
    ) -> Generator[SourceItem, None, _Pass]:
        """The first round that completes: a lost sync state (410, at the delta link or at a
        next link midway) starts the next one, a full read merged by id."""
        for index, (url, incremental) in enumerate(rounds):
            try:
                return (yield from self._read(pool, folder, url, incremental=incremental))
            except GraphSyncStateLost:
                if index == len(rounds) - 1:
                    raise
        raise AssertionError("no delta round to run")  # rounds always holds a full read

    def _read(
        self, pool: ThreadPoolExecutor, folder: MailFolder, url: str, *, incremental: bool
    ) -> Generator[SourceItem, None, _Pass]:
        """One delta round (restarted whole if its state is lost midway). Returns its _Pass."""
        members: dict[str, Item] = {}
        if incremental:
            members = {
                gid: item
                for gid, item in self.messages_before.items()
                if item.meta.get("folder_id") == folder.id
            }
        reported: set[str] = set()
        outcome = _Pass()
        for entries, following in self._pages(url, page=True):
            fetch: dict[str, dict[str, Any]] = {}
            for entry in entries:
                gid = entry.get("id")
                if not isinstance(gid, str) or not gid:
                    continue
                if "@removed" in entry:
                    members.pop(gid, None)
                    reported.discard(gid)
                    fetch.pop(gid, None)
                    continue
                reported.add(gid)
                members.pop(gid, None)
                if gid in self.given:
                    continue  # a replay, or a message this run already holds
                earlier = self.messages_before.get(gid)
                if earlier is None or _content_changed(earlier, entry):
                    fetch.pop(gid, None)  # a page may name a message twice: the latest wins
                    fetch[gid] = entry
                else:
                    self.quiet.pop(gid, None)
                    self.given.add(gid)
                    yield self._updated(folder, earlier, entry)
            base = self._holder_base(following)
            outcome.complete &= yield from self._fetch(pool, folder, list(fetch.values()), base)
            outcome.delta_link = following
        for gid, item in members.items():
            self.quiet.setdefault(gid, (folder, item))  # unchanged: carried at the end
        outcome.members = reported | set(members)
        return outcome

    def _holder_base(self, link: str) -> str:
        """Where the folder's messages are: the mailbox its delta link names when that is an
        auxiliary archive the main one redirected to (so each ``$value`` is not a 308 first),
        else this mailbox."""
        prefix = self.client.endpoints.graph_url + "/beta/users/"
        if self.mailbox != "archive" or not link.startswith(prefix):
            return self.base
        holder = link[len(prefix) :].split("/", 1)[0].split("?", 1)[0]
        return f"/beta/users/{quote(unquote(holder), safe='')}" if holder else self.base

    def _fetch(
        self,
        pool: ThreadPoolExecutor,
        folder: MailFolder,
        entries: list[dict[str, Any]],
        base: str,
    ) -> Generator[SourceItem, None, bool]:
        """Download ``entries`` as MIME, a few at a time (bounded memory); False if any was
        skipped."""
        complete = True
        window = max(1, self.fetchers) * 2
        for start in range(0, len(entries), window):
            chunk = entries[start : start + window]
            mimes = pool.map(lambda entry: self._mime(entry, base), chunk)
            for entry, mime in zip(chunk, mimes, strict=True):
                gid = str(entry["id"])
                if isinstance(mime, GraphError | ValueError):
                    complete = False
                    self._skip(folder, f"message {gid[-16:]} cannot be read: {_why(mime)}")
                    continue
                if gid in self.given:
                    continue
                self.quiet.pop(gid, None)
                self.given.add(gid)
                yield _message_item(self.user, self.mailbox, folder, entry, mime)
        return complete

    def _mime(self, entry: dict[str, Any], base: str) -> bytes | GraphError | ValueError:
        """A message's MIME, or the per-message reason it cannot be had (mailbox-wide failures
        propagate). Not found in an auxiliary archive: asked of the main one, which redirects
        to wherever the message is now."""
        mime = self._mime_at(entry, base)
        if base != self.base and isinstance(mime, GraphNotFound):
            return self._mime_at(entry, self.base)
        return mime

    def _mime_at(self, entry: dict[str, Any], base: str) -> bytes | GraphError | ValueError:
        url = f"{base}/messages/{quote(str(entry['id']), safe='')}/$value"
        try:
            with self._count_lock:
                self.requests += 1  # counted from the fetcher threads
            response = self.client.request("GET", url, scope=self.scope, headers=self._headers())
        except (GraphAuthError, GraphThrottled, GraphUnavailable):
            raise
        except GraphError as error:
            if error.code in MAILBOX_GONE:
                raise
            return error
        if response.status_code != 200 or not response.content:
            return ValueError(f"no MIME content (HTTP {response.status_code})")
        return response.content

    def _updated(self, folder: MailFolder, earlier: Item, entry: dict[str, Any]) -> SourceItem:
        """A stored message Graph reports again (flags, read state, a move): new metadata,
        the same content."""
        meta = _entry_meta(self.mailbox, folder, entry)
        kept = {k: earlier.meta.get(k, "") for k in ("from", "to", "date", "message_id")}
        return _carried(earlier, folder, {**earlier.meta, **meta, **kept})

    # ----- carrying -----

    def _carry_quiet(self) -> Iterator[SourceItem]:
        for gid, (folder, item) in self.quiet.items():
            if gid not in self.given:
                self.given.add(gid)
                yield _carried(item, folder, dict(item.meta))
        self.quiet.clear()

    def _carry_folder(self, folder: MailFolder) -> Iterator[SourceItem]:
        """A folder that could not be read keeps its previous state in this point."""
        for gid, item in self.messages_before.items():
            if item.meta.get("folder_id") == folder.id and gid not in self.given:
                self.quiet.setdefault(gid, (folder, item))
        before = self.folders_before.get(folder.id)
        if before is not None:
            yield _carried_state(before)

    def _carry_rest(self, done: set[str]) -> Iterator[SourceItem]:
        """The mailbox failed: what this run did not reach keeps its previous state."""
        yield from self._carry_quiet()
        for gid, item in self.messages_before.items():
            if gid not in self.given and item.meta.get("folder_id") not in done:
                self.given.add(gid)
                yield _carried(item, None, dict(item.meta))
        for fid, item in self.folders_before.items():
            if fid not in done:
                yield _carried_state(item)

    def _skip(self, folder: MailFolder, reason: str) -> None:
        where = f"{self._label()} {folder.path}"
        self.on_skip(Skipped(self.user.name, where, display(reason)))


# ----- items -----


def message_key(user: str, mailbox: str, graph_id: str) -> str:
    return f"{user}/graph-mail/{mailbox}/{key_part(graph_id)}"


def folder_key(user: str, mailbox: str, folder_id: str) -> str:
    return f"{user}/graph-folder/{mailbox}/{key_part(folder_id)}"


def _entry_meta(mailbox: str, folder: MailFolder, entry: dict[str, Any]) -> dict[str, Any]:
    """What a delta entry says of a message (the item meta's Graph half)."""
    flag = entry.get("flag")
    status = flag.get("flagStatus") if isinstance(flag, dict) else None
    status = status if status in ("notFlagged", "flagged", "complete") else "notFlagged"
    is_read = entry.get("isRead") is True
    categories = entry.get("categories")
    return {
        "source": "graph",
        "mailbox": mailbox,
        "graph_id": str(entry.get("id", "")),
        "folder_id": folder.id,
        "folder_names": list(folder.names),
        "role": folder.role,
        "subject": display(str(entry.get("subject") or "")),
        "received": _iso(entry.get("receivedDateTime")),
        "sent": _iso(entry.get("sentDateTime")),
        "is_read": is_read,
        "is_draft": entry.get("isDraft") is True,
        "flag_status": status,
        "importance": display(str(entry.get("importance") or "normal")),
        "categories": [display(str(c)) for c in categories] if isinstance(categories, list) else [],
        "flags": "".join(sorted(("S" if is_read else "") + ("F" if status == "flagged" else ""))),
        "change_key": display(str(entry.get("changeKey") or "")),
    }


def _message_item(
    user: GraphUser, mailbox: str, folder: MailFolder, entry: dict[str, Any], mime: bytes
) -> SourceItem:
    meta = _entry_meta(mailbox, folder, entry)
    headers = headers_of(mime)
    meta["message_id"] = display(str(entry.get("internetMessageId") or ""))
    meta["from"], meta["to"], meta["date"] = headers["from"], headers["to"], headers["date"]
    if not meta["subject"]:
        meta["subject"] = headers["subject"]
    gid = meta["graph_id"]
    return SourceItem(
        key=message_key(user.name, mailbox, gid),
        user=user.name,
        kind="mail",
        path=folder.path,
        size=len(mime),
        mtime=_timestamp(meta["received"]),
        mode=MESSAGE_MODE,
        meta=meta,
        change_token=_content_token(gid, meta["is_draft"], meta["change_key"]),
        found_in=None,
        opener=lambda: io.BytesIO(mime),
    )


def _carried(item: Item, folder: MailFolder | None, meta: dict[str, Any]) -> SourceItem:
    """A stored message given again: the executor keeps its content (same change token)."""
    meta.pop("change_token", None)
    if folder is not None:
        meta.update(folder_id=folder.id, folder_names=list(folder.names), role=folder.role)
    return SourceItem(
        key=item.key,
        user=item.user,
        kind=item.kind,
        path=folder.path if folder is not None else item.path,
        size=item.size,
        mtime=item.mtime,
        mode=item.mode,
        meta=meta,
        change_token=str(item.meta.get("change_token", "")),
        found_in=None,
        opener=_gone,
    )


def _carried_state(item: Item) -> SourceItem:
    meta = {k: v for k, v in item.meta.items() if k != "change_token"}
    return SourceItem(
        key=item.key,
        user=item.user,
        kind=item.kind,
        path=item.path,
        size=0,
        mtime=0.0,
        mode=item.mode,
        meta=meta,
        change_token=str(item.meta.get("change_token", "")),
        found_in=None,
        opener=lambda: io.BytesIO(b""),
    )


def _folder_item(user: GraphUser, mailbox: str, folder: MailFolder, state: _Pass) -> SourceItem:
    link = state.delta_link or None
    meta: dict[str, Any] = {
        "source": "graph",
        "mailbox": mailbox,
        "folder_id": folder.id,
        "parent_id": folder.parent_id,
        "folder_names": list(folder.names),
        "role": folder.role,
        "delta_link": link,
        "messages": len(state.members),
        "complete": state.complete and (link is not None or folder.empty),
        "empty": folder.empty,
    }
    token = f"{link}:{meta['messages']}:{meta['complete']}:{folder.path}:{folder.role}"
    return SourceItem(
        key=folder_key(user.name, mailbox, folder.id),
        user=user.name,
        kind="folder",
        path=folder.path,
        size=0,
        mtime=0.0,
        mode=0o700,
        meta=meta,
        change_token=token,
        found_in=None,
        opener=lambda: io.BytesIO(b""),
    )


def is_carried(item: SourceItem) -> bool:
    """Whether ``item`` is a stored message given again (no content held in memory)."""
    return item.opener is _gone


def _gone() -> io.BytesIO:
    """A carried message whose content the repository lost: the folder is read whole next
    time (its item count no longer adds up is not checked; the warning says it)."""
    raise OSError(2, "its content is no longer in the repository")


# ----- helpers -----


def _folder_of(entry: dict[str, Any], parent_names: tuple[str, ...]) -> MailFolder | None:
    fid = entry.get("id")
    if not isinstance(fid, str) or not fid:
        return None
    name = display(str(entry.get("displayName") or ""))
    children, total = entry.get("childFolderCount"), entry.get("totalItemCount")
    return MailFolder(
        fid,
        display(str(entry.get("parentFolderId") or "")),
        (*parent_names, name),
        None,
        has_children=not isinstance(children, int) or children > 0,
        empty=isinstance(total, int) and not isinstance(total, bool) and total == 0,
    )


def _role_answer(answer: Any) -> tuple[str, str] | None:
    """(folder id, well-known name) from one $batch answer, None if it names none."""
    if not isinstance(answer, dict) or answer.get("status") != 200:
        return None
    body, index = answer.get("body"), str(answer.get("id", ""))
    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not index.isdigit():
        return None
    return (body["id"], WELL_KNOWN[int(index)]) if int(index) < len(WELL_KNOWN) else None


def _content_changed(earlier: Item, entry: dict[str, Any]) -> bool:
    """Exchange never changes a sent or received message's MIME; a draft's may change, and a
    stored draft that is no longer one (sent) is read again too."""
    if earlier.meta.get("is_draft") is not True:
        return False
    change_key = display(str(entry.get("changeKey") or ""))
    return entry.get("isDraft") is not True or change_key != earlier.meta.get("change_key")


def _content_token(graph_id: str, is_draft: bool, change_key: str) -> str:
    return f"{graph_id}:{change_key}" if is_draft else graph_id


def _segment(name: str) -> str:
    """A folder name as one path segment: no separator, never empty, "." or ".."."""
    text = display(name).replace("/", "\u2215").replace("\0", "")
    return text if text not in ("", ".", "..") else f"_{text}"


def _link(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None


def _iso(value: Any) -> str:
    """An ISO 8601 UTC instant as Graph gives it, normalised; "" when unreadable."""
    if not isinstance(value, str):
        return ""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        return ""
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else 0.0


def _why(error: BaseException) -> str:
    return display(getattr(error, "message", None) or str(error) or type(error).__name__)
