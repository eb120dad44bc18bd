"""Restore sessions: explore a restore point, browse its mailboxes and drives, save items, and
put items back into the organization (to their place or another user's).

A session opens its restore point's repository once and browses it lazily (``Browser``): the
snapshot's folder summary lists owners and folders, and listing a folder reads only its trees,
so opening a session on a point of a million items reads one snapshot object.
"""

from __future__ import annotations

import copy
import enum
import io
import threading
import time
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO, overload

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keepstone.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from keepstone.domain.names import UniqueNames, safe_component, safe_parts
from keepstone.domain.scope import stable_user_id as user_id
from keepstone.engine import FolderSummary, Item, Repository, folder_of
from keepstone.engine.model import folder_marker
from keepstone.services import access, audit, restore_points
from keepstone.services.access import Access
from keepstone.services.audit import AuditAction, Entry
from keepstone.services.auth import Principal
from keepstone.services.catalog import get_organization_in
from keepstone.services.context import Context, new_id
from keepstone.services.vault import open_repository
from keepstone.sources import names
from keepstone.sources.targets import (
    ChunkReader,
    LocalTarget,
    Outcome,
    Placement,
    RestoreTarget,
)
from keepstone.sources.targets import Collision as Collision  # part of this service's API
from keepstone.store.paging import page_of
from keepstone.store.tables import Organization as OrganizationRow
from keepstone.store.tables import Repository as RepositoryRow
from keepstone.store.tables import RestoreEvent as EventRow
from keepstone.store.tables import RestorePoint
from keepstone.store.tables import RestoreSession as SessionRow

if TYPE_CHECKING:
    from keepstone.services.m365_restore import RestoreCredentials

OPEN_BROWSERS = 8
PROGRESS_EVERY_SECONDS = 1.0  # how often a running put-back publishes its counts
FAILURE_EVENTS = 100  # failed items of one put-back recorded as events, one each


def item_id(key: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"keepstone-item:{key}"))


class Top(enum.Enum):
    """The top of an owner's tree, asked for in place of a folder: its top-level folders, or
    the files at a drive's root (not in any folder)."""

    TOP = "top"


TOP = Top.TOP


def folder_id(user: str, kind: str, path: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"keepstone-folder:{user}/{kind}/{path}"))


@dataclass(frozen=True, slots=True)
class Owner:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Folder:
    id: str
    name: str
    path: str
    parent_id: str | None


class Browser:
    """One restore point as clients browse it, read lazily from its repository.

    Opening reads the snapshot object alone: its folder summary (a few numbers per folder of
    each user) lists owners and folders. A folder's items are read from the trees the summary
    names for it; an item looked up by id is found among its owner's trees. Recently read trees
    are kept (a small LRU), so paging through a folder does not read them again. A snapshot
    written before summaries existed is summarised once, reading its trees one at a time.
    """

    TREES_KEPT = 16
    # Folders listed lately (paged without a set, as the console pages them), at most this many
    # items in all: a folder may hold 100,000, and 16 of those would hold gigabytes.
    FOLDERS_KEPT = 16
    FOLDER_ITEMS_KEPT = 20_000
    # Which owners the viewer may reach (``limited_to``); None: all of them.
    _allows: Callable[[str], bool] | None = None

    def __init__(self, repository: Repository, organization_id: str, snapshot_id: str) -> None:
        self.repository = repository
        self.organization_id = organization_id
        self._snapshot = snapshot_id
        self._trees: OrderedDict[int, list[Item]] = OrderedDict()
        self._folder_items: OrderedDict[tuple[str, str, str], tuple[Item, ...]] = OrderedDict()
        self._lock = threading.Lock()
        summary = repository.folders(snapshot_id)
        if summary is None:
            summary = self._summarise()
        self._folders = summary
        self.owners = {user_id(organization_id, f.user): f.user for f in summary}
        self._by_owner: OrderedDict[str, dict[str, Item]] = OrderedDict()

    def _summarise(self) -> tuple[FolderSummary, ...]:
        found: dict[tuple[str, str, str], tuple[list[float], list[int]]] = {}
        for position in range(self.repository.tree_count(self._snapshot)):
            for item in self.repository.tree_items(self._snapshot, position):
                key = (item.user, item.kind, folder_of(item))
                numbers, trees = found.setdefault(key, ([0, item.mtime], []))
                numbers[0] += 1
                numbers[1] = max(numbers[1], item.mtime)
                if not trees or trees[-1] != position:
                    trees.append(position)
        return tuple(
            FolderSummary(user, kind, folder, int(n[0]), n[1], tuple(trees))
            for (user, kind, folder), (n, trees) in found.items()
        )

    def _tree(self, position: int) -> list[Item]:
        with self._lock:
            if position in self._trees:
                self._trees.move_to_end(position)
                return self._trees[position]
        items = self.repository.tree_items(self._snapshot, position)
        with self._lock:
            self._trees[position] = items
            while len(self._trees) > self.TREES_KEPT:
                self._trees.popitem(last=False)
        return items

    def _items(self, summaries: list[FolderSummary], keep: Any) -> list[Item]:
        """The items ``keep`` accepts from the trees of ``summaries``, in snapshot order."""
        positions = sorted({t for f in summaries for t in f.trees})
        return [i for position in positions for i in self._tree(position) if keep(i)]

    def _marked(
        self, summaries: list[FolderSummary], marker: bytes | None, keep: Callable[[Item], bool]
    ) -> list[Item] | None:
        """``_items`` for one folder, whose summaries say how many items it holds: of a tree not
        kept already only the items holding ``marker`` are decoded (``model.marked_items``), so
        a folder's first page does not decode the thousands of other items its trees hold. None
        when a tree is not in the canonical shape (or ``marker`` is None); the caller also
        checks the count against the summaries, so an item the marker missed cannot go unseen."""
        if marker is None:
            return None
        found: list[Item] = []
        for position in sorted({t for f in summaries for t in f.trees}):
            with self._lock:
                kept = self._trees.get(position)
            if kept is None:
                items = self.repository.marked_tree_items(self._snapshot, position, marker)
            else:
                items = kept
            if items is None:
                return None
            found.extend(i for i in items if keep(i))
        return found

    def limited_to(self, allows: Callable[[str], bool]) -> Browser:
        """This browser as a viewer reaching only the owners ``allows`` accepts sees it: the
        others are not listed, and asking for one (its folders, items, a save, a put-back) is
        the 404 of an owner that is not there. Shares this browser's trees."""
        view = copy.copy(self)
        view._allows = allows
        return view

    def owners_with(self, kind: str) -> list[Owner]:
        names = sorted({f.user for f in self._folders if f.kind == kind})
        owners = [Owner(user_id(self.organization_id, n), n) for n in names]
        return [o for o in owners if self._allows is None or self._allows(o.id)]

    def user(self, owner_id: str) -> str:
        if owner_id not in self.owners or (self._allows is not None and not self._allows(owner_id)):
            raise NotFound(f"'{owner_id}' is not a mailbox or drive in this restore point")
        return self.owners[owner_id]

    def _summaries(self, user: str, kind: str | None) -> list[FolderSummary]:
        return [f for f in self._folders if f.user == user and kind in (None, f.kind)]

    def folders(self, owner_id: str, kind: str) -> list[Folder]:
        user = self.user(owner_id)
        paths: set[str] = set()
        for summary in self._summaries(user, kind):
            folder = summary.folder
            parts = PurePosixPath(folder).parts if folder not in (".", "") else ()
            paths.update("/".join(parts[: n + 1]) for n in range(len(parts)))
        return [
            Folder(
                folder_id(user, kind, p),
                PurePosixPath(p).name,
                p,
                folder_id(user, kind, str(PurePosixPath(p).parent)) if "/" in p else None,
            )
            for p in sorted(paths)
        ]

    def children(self, owner_id: str, kind: str, parent: str | Top | None) -> list[Folder]:
        """The owner's folders of ``kind``: all of them (``parent`` None), the top-level ones
        (``TOP``), or one folder's subfolders (none for an id the point does not have)."""
        folders = self.folders(owner_id, kind)
        if parent is None:
            return folders
        wanted = None if parent is TOP else parent
        return [f for f in folders if f.parent_id == wanted]

    def folder(self, owner_id: str, kind: str, folder: str) -> Folder:
        """One folder of one owner and kind, by id (a 404 when the point has none such)."""
        for found in self.folders(owner_id, kind):
            if found.id == folder:
                return found
        raise NotFound(f"folder '{folder}' does not exist in this restore point")

    def newest(self, owner_id: str, kind: str) -> dict[str, float]:
        """The newest modification time under every folder path of the owner's ``kind``."""
        newest: dict[str, float] = {}
        for summary in self._summaries(self.user(owner_id), kind):
            folder = summary.folder if summary.folder != "." else ""
            parts = folder.split("/") if folder else []
            for depth in range(len(parts) + 1):
                path = "/".join(parts[:depth])
                newest[path] = max(newest.get(path, 0.0), summary.newest)
        return newest

    def contents(self, owner_id: str, kind: str, folder: str | Top | None) -> list[Item]:
        """Items of one owner and kind, in one folder (by id), at a drive's root (``TOP``), or
        all of them."""
        user = self.user(owner_id)
        summaries = self._summaries(user, kind)
        if folder is None:
            return self._items(summaries, lambda i: i.user == user and i.kind == kind)
        if folder is TOP:
            if kind != "file":
                raise NotFound("a mailbox's items are all in folders: name one")
            path = "."  # the files at the drive's root (folder_of)
        else:
            path = self.folder(owner_id, kind, folder).path
        key = (user, kind, path)
        with self._lock:
            if key in self._folder_items:
                self._folder_items.move_to_end(key)
                return list(self._folder_items[key])
        found = self._folder(user, kind, path, [f for f in summaries if f.folder == path])
        if len(found) <= self.FOLDER_ITEMS_KEPT:
            self._keep_folder(key, tuple(found))
        return found

    def _keep_folder(self, key: tuple[str, str, str], items: tuple[Item, ...]) -> None:
        with self._lock:
            kept = self._folder_items
            kept[key] = items
            while len(kept) > self.FOLDERS_KEPT or (
                sum(map(len, kept.values())) > self.FOLDER_ITEMS_KEPT
            ):
                kept.popitem(last=False)

    def _folder(
        self, user: str, kind: str, path: str, summaries: list[FolderSummary]
    ) -> list[Item]:
        """The items of one folder, in snapshot order, from the trees ``summaries`` name."""

        def keep(item: Item) -> bool:
            return item.user == user and item.kind == kind and folder_of(item) == path

        expected = sum(f.count for f in summaries)
        marked = self._marked(summaries, folder_marker(kind, path), keep)
        if marked is not None and len(marked) == expected:
            return marked
        return self._items(summaries, keep)  # a tree not cut as expected: each read whole

    def owner_items(
        self, owner_id: str, kind: str, reopen: Callable[[], Browser] | None = None
    ) -> Sequence[Item]:
        """``contents(owner_id, kind, None)`` read a window at a time (``OwnerItems``): a page
        of a mailbox's items without decoding every item of its trees. ``reopen`` gives the
        session's browser for each later window (a listed set outlives this browser: it must
        not keep it, its trees and repository, alive); None: this browser."""
        user = self.user(owner_id)
        return OwnerItems(self, user, kind, reopen)

    def top(self, owner_id: str, kind: str) -> list[Item]:
        """The owner's items of ``kind`` in no folder: only the trees that hold such items are
        read (a mailbox whose messages are all in folders reads none)."""
        user = self.user(owner_id)
        summaries = [f for f in self._summaries(user, kind) if f.folder in ("", ".")]
        return self._items(
            summaries,
            lambda i: i.user == user and i.kind == kind and folder_of(i) in ("", "."),
        )

    def search(self, owner_id: str, kind: str, text: str) -> list[Item]:
        """The owner's items of ``kind`` whose subject, sender or file name holds ``text``
        (ignoring case), in snapshot order."""
        wanted = text.casefold()

        def hit(item: Item) -> bool:
            meta = item.meta
            fields = (meta.get("subject"), meta.get("from"), PurePosixPath(item.path).name)
            return any(wanted in str(f).casefold() for f in fields if f)

        return [i for i in self.contents(owner_id, kind, None) if hit(i)]

    def items_of_user(self, user: str) -> list[Item]:
        """Every item of ``user`` (any kind), in snapshot order."""
        return self._items(self._summaries(user, None), lambda i: i.user == user)

    def each_item(self, users: Collection[str] | None = None) -> Iterator[Item]:
        """Every item of ``users`` (by name; None: every owner this viewer reaches), in snapshot
        order, read one tree at a time and kept nowhere: what a restore of many items walks. It
        holds one tree's items, never the point's (the trees browsing reads stay cached; a
        point's items as objects are several times its trees' JSON)."""
        wanted = {
            f.user
            for f in self._folders
            if (users is None or f.user in users)
            and (self._allows is None or self._allows(user_id(self.organization_id, f.user)))
        }
        positions = sorted({t for f in self._folders if f.user in wanted for t in f.trees})
        for position in positions:
            tree = self.repository.tree_items(self._snapshot, position)
            yield from (item for item in tree if item.user in wanted)
            del tree

    def items_of(self, owner_id: str, identifiers: list[str]) -> list[Item]:
        """The owner's items by id, each once however often it is listed (in first-listed
        order): one dictionary lookup per distinct id, so 25,000 repeats cost 25,000 steps."""
        return [self.item(owner_id, identifier) for identifier in dict.fromkeys(identifiers)]

    def reader(self, item: Item) -> BinaryIO:
        """The item's content as a stream, read from the repository as it is consumed."""
        return io.BufferedReader(ChunkReader(self.repository.read(item)), 1 << 20)

    def item(self, owner_id: str, identifier: str) -> Item:
        found = self._owner_items(owner_id).get(identifier)
        if found is None:
            raise NotFound(f"item '{identifier}' does not exist in this restore point")
        return found

    def _owner_items(self, owner_id: str) -> dict[str, Item]:
        """The owner's items by id (read from the owner's trees once; the last two owners
        asked for are kept)."""
        user = self.user(owner_id)
        with self._lock:
            if owner_id in self._by_owner:
                self._by_owner.move_to_end(owner_id)
                return self._by_owner[owner_id]
        found = {item_id(i.key): i for i in self.items_of_user(user)}
        with self._lock:
            self._by_owner[owner_id] = found
            while len(self._by_owner) > 2:
                self._by_owner.popitem(last=False)
        return found


class OwnerItems(Sequence[Item]):
    """One owner's items of one kind in snapshot order, as ``Browser.contents`` lists them
    without a folder, read a window at a time: its length is the snapshot's folder summaries'
    count, and a window decodes only what it needs, through the session's browser of the
    moment (``reopen``; a listed set keeps this for up to 30 minutes, which must not keep an
    evicted browser's trees and repository alive). A tree whose every summary is this
    owner's and kind's, naming it alone (``_pure``), holds exactly their count of items: a
    window inside it decodes its own items alone (``Repository.tree_window``, which also checks
    the tree cuts into that many items). Any other tree is decoded whole (``Browser._tree``),
    as is a tree that does not cut as expected. Trees before the window are skipped by their
    count of this owner's and kind's items when the summaries give it (``_known``: each such
    summary names that tree alone), else decoded to count them. Immutable, like the snapshot:
    a listed set keeps it instead of every item."""

    def __init__(
        self, browser: Browser, user: str, kind: str, reopen: Callable[[], Browser] | None
    ) -> None:
        self._user, self._kind = user, kind
        self._reopen: Callable[[], Browser] = reopen or (lambda: browser)
        touching: dict[int, list[FolderSummary]] = {}
        for summary in browser._folders:
            for position in summary.trees:
                touching.setdefault(position, []).append(summary)
        mine = [f for f in browser._folders if f.user == user and f.kind == kind]
        self._total = sum(f.count for f in mine)
        self._trees = sorted({t for f in mine for t in f.trees})
        self._known: dict[int, int] = {}
        self._pure: set[int] = set()
        for position in self._trees:
            ours = [f for f in touching[position] if f.user == user and f.kind == kind]
            if all(f.trees == (position,) for f in ours):
                self._known[position] = sum(f.count for f in ours)
                if len(ours) == len(touching[position]):
                    self._pure.add(position)

    def __len__(self) -> int:
        return self._total

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice) -> list[Item]: ...

    def __getitem__(self, index: int | slice) -> Item | list[Item]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._total)
            window = self._window(start, max(start, stop)) if step == 1 else list(self)[index]
            return window
        position = index + self._total if index < 0 else index
        if not 0 <= position < self._total:
            raise IndexError(index)
        return self._window(position, position + 1)[0]

    def __iter__(self) -> Iterator[Item]:
        browser = self._reopen()
        for position in self._trees:
            yield from self._mine(browser, position)

    def _mine(self, browser: Browser, position: int) -> list[Item]:
        user, kind = self._user, self._kind
        return [i for i in browser._tree(position) if i.user == user and i.kind == kind]

    def _window(self, start: int, stop: int) -> list[Item]:
        browser = self._reopen()
        found: list[Item] = []
        seen = 0  # this owner's and kind's items in the trees before
        for position in self._trees:
            if seen >= stop:
                break
            count = self._known.get(position)
            if count is not None and seen + count <= start:
                seen += count  # wholly before the window: not read
                continue
            found += self._part(browser, position, start - seen, stop - seen)
            seen += len(self._mine(browser, position)) if count is None else count
        return found

    def _part(self, browser: Browser, position: int, start: int, stop: int) -> list[Item]:
        """This owner's and kind's items ``start`` to ``stop`` of the tree at ``position``."""
        start = max(0, start)
        if position in self._pure:
            with browser._lock:
                kept = browser._trees.get(position)
            if kept is None:
                count = self._known[position]
                snapshot = browser._snapshot
                part = browser.repository.tree_window(snapshot, position, count, start, stop)
                if part is not None and all(self._ours(i) for i in part):
                    return part
        return self._mine(browser, position)[start:stop]

    def _ours(self, item: Item) -> bool:
        return item.user == self._user and item.kind == self._kind


_browsers: OrderedDict[str, Browser] = OrderedDict()
_browsers_lock = threading.Lock()


# ---- sessions ---------------------------------------------------------------------------------


def explore_at(
    ctx: Context,
    *,
    at: datetime | None,
    user_name: str,
    job_id: str | None = None,
    organization_id: str | None = None,
    kind: str = "Vex",
    caller: Principal | None = None,
) -> SessionRow:
    """Open a restore session on the restore point taken at (or last before) ``at``; for a
    ``caller`` restore operator, only of its organizations."""
    if organization_id is not None:
        access.require_organization(
            caller, organization_id, f"organization '{organization_id}'", Access.RESTORE
        )
    point = restore_points.point_at(
        ctx, at or ctx.clock.now(), job_id=job_id, organization_id=organization_id
    )
    access.require_organization(
        caller, point.organization_id, f"a restore point of job '{job_id}'", Access.RESTORE
    )
    return explore(ctx, point, user_name=user_name, kind=kind)


def explore(ctx: Context, point: RestorePoint, *, user_name: str, kind: str = "Vex") -> SessionRow:
    """Open a restore session on one restore point."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        session = SessionRow(
            id=new_id(),
            restore_point_id=point.id,
            organization_id=point.organization_id,
            type=kind,
            state="Working",
            result="Success",
            creation_time=now,
            end_time=None,
            initiated_by=user_name,
            details=f"Restore point of {point.backup_time.isoformat()}",
            statistics={"restored": 0, "skipped": 0, "failed": 0, "bytes": 0},
        )
        s.add(session)
        details = {"restoreSession": session.id, "restorePoint": point.id, "type": kind}
        entry = Entry(
            AuditAction.EXPLORE, user_name, organization_id=point.organization_id, details=details
        )
        audit.add(s, now, entry)
    return session


def list_sessions(
    ctx: Context,
    offset: int = 0,
    limit: int | None = None,
    until: datetime | None = None,
    total: int | None = None,
    caller: Principal | None = None,
) -> list[SessionRow]:
    """Newest first; ``until`` pins a listed set (sessions opened later are not in it). A
    scoped ``caller`` sees the sessions of its organizations only."""
    keys = (SessionRow.creation_time, SessionRow.id)
    with ctx.db.read() as s:
        return page_of(
            s,
            SessionRow,
            _opened_until(until, access.organizations_of(caller)),
            keys,
            descending=True,
            offset=offset,
            limit=limit,
            total=total,
        )


def count_sessions(
    ctx: Context, until: datetime | None = None, caller: Principal | None = None
) -> int:
    with ctx.db.read() as s:
        where = _opened_until(until, access.organizations_of(caller))
        return s.scalar(where(select(func.count()).select_from(SessionRow))) or 0


def _opened_until(until: datetime | None, organizations: frozenset[str] | None = None) -> Any:
    def where(query: Any) -> Any:
        if organizations is not None:
            query = query.where(SessionRow.organization_id.in_(organizations))
        return query if until is None else query.where(SessionRow.creation_time <= until)

    return where


def get_session(
    ctx: Context, session_id: str, caller: Principal | None = None, need: Access | None = None
) -> SessionRow:
    """The session; a 404 for a scoped ``caller`` outside its organizations (or without
    ``need``)."""
    with ctx.db.read() as s:
        session = s.get(SessionRow, session_id)
    what = f"restore session '{session_id}'"
    if session is None:
        raise NotFound(f"{what} does not exist")
    access.require_organization(caller, session.organization_id, what, need)
    return session


def stop(ctx: Context, session_id: str, caller: Principal | None = None) -> SessionRow:
    get_session(ctx, session_id, caller, Access.RESTORE)
    with ctx.db.write() as s:
        session = s.get(SessionRow, session_id)
        if session is None:
            raise NotFound(f"restore session '{session_id}' does not exist")
        if session.state == "Working":
            session.state, session.end_time = "Stopped", ctx.clock.now()
    with _browsers_lock:
        _browsers.pop(session_id, None)
    return session


def browser(ctx: Context, session_id: str, caller: Principal | None = None) -> Browser:
    """The open session's items (loaded once per session, kept in a small LRU), as ``caller``
    may see them: a restore operator of the session's organization, the owners in its scope.
    The session's row is read every time: another server of the catalog may have stopped it."""
    session = get_session(ctx, session_id, caller, Access.RESTORE)
    if session.state != "Working":
        raise Conflict(f"restore session '{session_id}' is stopped")
    loaded = _open_browser(ctx, session)
    if access.reach(caller) is None:
        return loaded
    organization_id = loaded.organization_id
    return loaded.limited_to(
        lambda owner_id: access.covers_user(caller, organization_id, owner_id, Access.RESTORE)
    )


def _open_browser(ctx: Context, session: SessionRow) -> Browser:
    session_id = session.id
    with _browsers_lock:
        if session_id in _browsers:
            _browsers.move_to_end(session_id)
            return _browsers[session_id]
    with ctx.db.read() as s:
        point = s.get(RestorePoint, session.restore_point_id)
        assert point is not None  # sessions cascade with their restore point
        repo_row = s.get(RepositoryRow, point.repository_id)
        assert repo_row is not None
    # The index loads at the first content read (a save, a put-back); browsing reads none.
    repository = open_repository(ctx, repo_row.id, repo_row.path, load_index=False)
    loaded = Browser(repository, point.organization_id or "", point.snapshot_id)
    with _browsers_lock:
        _browsers[session_id] = loaded
        while len(_browsers) > OPEN_BROWSERS:
            _browsers.popitem(last=False)
    return loaded


# ---- getting data out ---------------------------------------------------------------------------


def save_name(item: Item) -> str:
    if item.kind == "mail":
        subject = str(item.meta.get("subject") or "message")
        safe = "".join(c if c.isalnum() or c in " -_." else "_" for c in subject).strip()[:80]
        return f"{safe or 'message'}.eml"
    return safe_component(PurePosixPath(item.path).name)


def stream_item(
    ctx: Context,
    session_id: str,
    owner_id: str,
    identifier: str,
    *,
    by: str,
    caller: Principal | None = None,
) -> tuple[Item, Iterator[bytes]]:
    """One item's content, for ``by`` to download."""
    view = browser(ctx, session_id, caller)
    item = view.item(owner_id, identifier)
    started = ctx.clock.now()
    message = f"Saved {save_name(item)}"
    owner = view.user(owner_id)
    record_event(
        ctx, session_id, Event("Save", "Success", message, started, item, owner, "download", by)
    )
    return item, view.repository.read(item)


def read_start(
    ctx: Context,
    session_id: str,
    owner_id: str,
    identifier: str,
    limit: int,
    *,
    by: str,
    caller: Principal | None = None,
) -> tuple[Item, bytes, bool]:
    """The first ``limit`` bytes of an item, and whether it holds more, for ``by`` to read (a
    preview: in the audit trail, as a save is). Reading stops there: a preview of a 50 MB
    message reads about ``limit`` bytes of it."""
    view = browser(ctx, session_id, caller)
    item = view.item(owner_id, identifier)
    head = bytearray()
    for chunk in view.repository.read(item):  # chunks are read as the loop asks for them
        head += chunk
        if len(head) > limit:
            break
    session = get_session(ctx, session_id)
    details = {"restoreSession": session_id, "restorePoint": session.restore_point_id}
    entry = Entry(
        AuditAction.PREVIEW,
        by,
        organization_id=session.organization_id,
        subject=view.user(owner_id),
        details=details | {"item": item.path, "message": f"Previewed {save_name(item)}"},
    )
    audit.record(ctx, entry)
    return item, bytes(head[:limit]), len(head) > limit


def write_zip(
    ctx: Context,
    session_id: str,
    owner_id: str,
    identifiers: list[str],
    target: Path,
    *,
    by: str,
    caller: Principal | None = None,
) -> int:
    """Several items as one zip file; returns how many went in. An id listed twice is saved
    once, and every entry name is built from safe components (names are data, never paths)."""
    view = browser(ctx, session_id, caller)
    view.user(owner_id)  # a session or owner out of reach is a 404 whatever the body
    if not identifiers:
        raise InvalidInput("ids must list at least one item", "ids")
    items = view.items_of(owner_id, identifiers)
    owner, started = view.user(owner_id), ctx.clock.now()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        contents = view.repository.read_many(items)
        for (_item, content), name in zip(contents, entry_names(items), strict=True):
            with archive.open(name, "w") as entry:
                for chunk in content:
                    entry.write(chunk)
    message = f"Saved {len(items)} items as a zip file"
    record_event(
        ctx,
        session_id,
        Event("Save", "Success", message, started, None, owner, "zip download", by, len(items)),
    )
    return len(items)


def record_saved(
    ctx: Context, session_id: str, owner: str, count: int, to: str, *, by: str
) -> None:
    """``by`` wrote ``count`` items of ``owner`` into the directory ``to`` (outside the API)."""
    message = f"Saved {count} items into {to}"
    started = ctx.clock.now()
    record_event(
        ctx, session_id, Event("Save", "Success", message, started, None, owner, to, by, count)
    )


def save_parts(item: Item) -> list[str]:
    """Where a saved item goes, relative to the save's root, as safe components: a message as
    ``<folder>/.../<subject>.eml``, a file at its drive path."""
    parts = (
        [*item.path.split("/"), save_name(item)] if item.kind == "mail" else item.path.split("/")
    )
    return safe_parts(parts)


def entry_names(items: list[Item]) -> list[str]:
    """Zip entry names of ``items``: safe components joined by ``/``; two items that would get
    the same name are both kept, the second with a numbered suffix (per folder)."""
    per_folder: dict[tuple[str, ...], UniqueNames] = {}
    names = []
    for item in items:
        *folders, name = save_parts(item)
        unique = per_folder.setdefault(tuple(folders), UniqueNames()).claim(name)
        names.append("/".join([*folders, unique]))
    return names


@dataclass(frozen=True)
class Event:
    """One operation of a restore session, for its event list."""

    type: str  # Save | Restore
    status: str  # Success | Warning | Failed
    message: str
    started: datetime
    item: Item | None
    source: str
    target: str = ""
    by: str = ""  # the Keepstone user who did it
    count: int = 1  # how many items it was about


AUDIT_ACTIONS = {"Save": AuditAction.SAVE, "Restore": AuditAction.RESTORE}


def record_event(ctx: Context, session_id: str, event: Event) -> None:
    """Add ``event`` to the session's events (a row of its own: one insert however many came
    before), and to the audit trail."""
    now = ctx.clock.now()
    with ctx.db.write() as s:
        session = s.get(SessionRow, session_id)
        if session is None:
            return
        audit.add(s, now, _audit_entry(session, event))
        last = s.scalar(select(func.max(EventRow.seq)).where(EventRow.session_id == session_id))
        session.events_count += 1  # with the seq below, keeps a session's events provably 1..n
        s.add(
            EventRow(
                id=new_id(),
                session_id=session_id,
                seq=(last or 0) + 1,
                type=event.type,
                status=event.status,
                message=names.display(event.message),  # never a lone surrogate in JSON
                start_time=event.started,
                end_time=now,
                item_name=save_name(event.item) if event.item else "",
                item_type=event.item.kind if event.item else "",
                item_size_bytes=event.item.size if event.item else 0,
                source=event.source,
                target=event.target,
            )
        )


def list_events(
    ctx: Context,
    session_id: str,
    offset: int = 0,
    limit: int | None = None,
    until_seq: int | None = None,
    total: int | None = None,
    after: tuple[int, str] | None = None,
) -> list[EventRow]:
    """The session's events in the order they ran; ``until_seq`` pins a listed set; ``after``
    (an event's :func:`event_key`) continues after that event. Events numbered 1..n (every
    session but some moved by migration 0016) are found by ``seq``: the window at ``offset``
    starts at seq ``offset + 1``, however deep."""
    get_session(ctx, session_id)
    keys = (EventRow.seq, EventRow.id)
    with ctx.db.read() as s:
        numbered = _numbered_through(s, session_id) if after is None else None
        if numbered is not None:
            last = _listed_last(numbered, until_seq)
            end = last if limit is None else min(last, offset + limit)
            return list(s.scalars(_seq_window(session_id, offset, end)))
        where = _events_of(session_id, until_seq)
        return page_of(
            s, EventRow, where, keys, offset=offset, limit=limit, total=total, after=after
        )


def get_event(ctx: Context, session_id: str, event_id: str, caller: Principal) -> EventRow:
    """One event of a session the caller may read; a 404 names what is missing."""
    get_session(ctx, session_id, caller)
    with ctx.db.read() as s:
        event = s.get(EventRow, event_id)
    if event is None or event.session_id != session_id:
        raise NotFound(f"restore session '{session_id}' has no event '{event_id}'")
    return event


@dataclass(frozen=True, slots=True)
class SessionOrganization:
    """The organization a restore session explores: ``name`` and ``type`` are empty once the
    organization was removed (its restore points may outlive it)."""

    id: str | None
    name: str
    type: str


def session_organization(ctx: Context, session_id: str, caller: Principal) -> SessionOrganization:
    session = get_session(ctx, session_id, caller)
    with ctx.db.read() as s:
        org = s.get(OrganizationRow, session.organization_id) if session.organization_id else None
    if org is None:
        return SessionOrganization(session.organization_id, "", "")
    return SessionOrganization(org.id, org.name, org.type)


def event_key(event: EventRow) -> tuple[int, str]:
    """Where an event stands in its session's order (a keyset page continues after it)."""
    return event.seq, event.id


def count_events(ctx: Context, session_id: str, until_seq: int | None = None) -> int:
    """The events of the session (up to ``until_seq``): read off the session's row when they
    are numbered 1..n, counted otherwise."""
    with ctx.db.read() as s:
        numbered = _numbered_through(s, session_id)
        if numbered is not None:
            return _listed_last(numbered, until_seq)
        query = select(func.count()).select_from(EventRow)
        return s.scalar(_events_of(session_id, until_seq)(query)) or 0


def last_event(ctx: Context, session_id: str) -> int:
    """The order of the session's newest event (0: none): a listed set's pin."""
    get_session(ctx, session_id)
    with ctx.db.read() as s:
        query = select(func.max(EventRow.seq)).where(EventRow.session_id == session_id)
        return s.scalar(query) or 0


def _numbered_through(s: Session, session_id: str) -> int | None:
    """n when the session's events are exactly seq 1..n, else None (unknown session too).

    The proof: the count kept in the session's row (``record_event``) equals the highest seq
    and the lowest is at least 1; seqs are unique in a session, so n of them within 1..n are all
    of 1..n. Three index probes in one statement: on PostgreSQL each statement of a read sees
    its own snapshot, so the count and the seqs are of one moment. A session without events is
    not proven (its lowest seq is none): counting and listing nothing costs nothing anyway."""
    seqs = select(EventRow.seq).where(EventRow.session_id == session_id)
    lowest = seqs.order_by(EventRow.seq).limit(1).scalar_subquery()
    highest = seqs.order_by(EventRow.seq.desc()).limit(1).scalar_subquery()
    query = select(SessionRow.events_count, lowest, highest).where(SessionRow.id == session_id)
    row = s.execute(query).one_or_none()
    if row is None:
        return None
    count, low, high = row
    return count if low is not None and low >= 1 and high == count else None


def _listed_last(numbered: int, until_seq: int | None) -> int:
    """The last seq of a listed set of events numbered 1..``numbered``: its count."""
    return numbered if until_seq is None else max(0, min(numbered, until_seq))


def _seq_window(session_id: str, offset: int, end: int) -> Any:
    """The events after the ``offset`` first, through seq ``end``, of events numbered 1..n."""
    return (
        select(EventRow)
        .where(EventRow.session_id == session_id, EventRow.seq > offset, EventRow.seq <= end)
        .order_by(EventRow.seq)
    )


def _events_of(session_id: str, until_seq: int | None) -> Any:
    def where(query: Any) -> Any:
        query = query.where(EventRow.session_id == session_id)
        return query if until_seq is None else query.where(EventRow.seq <= until_seq)

    return where


def _audit_entry(session: SessionRow, event: Event) -> Entry:
    details: dict[str, Any] = {
        "restoreSession": session.id,
        "restorePoint": session.restore_point_id,
        "to": event.target,
        "items": event.count,
        "message": names.display(event.message),  # as the event's row: names from a source
    }
    if event.item is not None:
        details["item"] = names.display(event.item.path)
    return Entry(
        AUDIT_ACTIONS[event.type],
        event.by,
        success=event.status != "Failed",
        organization_id=session.organization_id,
        subject=event.source,
        details=details,
    )


# ---- putting data back --------------------------------------------------------------------------


@dataclass
class RestoreCounts:
    restored: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0

    def since(self, earlier: RestoreCounts) -> RestoreCounts:
        return RestoreCounts(
            self.restored - earlier.restored,
            self.skipped - earlier.skipped,
            self.failed - earlier.failed,
            self.bytes - earlier.bytes,
        )


def restore(
    ctx: Context,
    session_id: str,
    owner_id: str,
    identifiers: list[str] | None,
    *,
    kind: str,
    to_user: str | None = None,
    to_folder: str | None = None,
    collision: Collision = Collision.KEEP_BOTH,
    by: str,
    target: RestoreTarget | None = None,
    caller: Principal | None = None,
) -> RestoreCounts:
    """Write items of one kind (``mail`` or ``file``) back into the organization, for ``by``: to
    their own place, or to ``to_user`` and/or ``to_folder``. ``identifiers`` None means all of
    the owner's. ``target`` is the organization as :func:`session_target` gave it (checked
    before the restore started), else the organization with its own credentials. A scoped
    ``caller`` puts back only owners in its scope, and only to users in its scope."""
    view = browser(ctx, session_id, caller)
    items = (
        view.items_of(owner_id, identifiers)
        if identifiers is not None
        else view.contents(owner_id, kind, None)
    )
    if any(item.kind != kind for item in items):
        raise InvalidInput(f"only {kind} items can be restored here", "ids")
    user = view.user(owner_id)
    target = target or restore_target(ctx, view.organization_id)
    target_user = to_user or user
    if target_user not in target.users():
        raise InvalidInput(f"user '{target_user}' does not exist in the organization", "userName")
    if not access.covers_user_named(caller, view.organization_id, target_user):
        raise Forbidden(f"user '{target_user}' is outside the scope of your organization roles")
    where = Placement(target_user, to_folder, collision)
    started = ctx.clock.now()
    outcomes = target.put_back(items, view.reader, where)
    counts = _put_back(ctx, session_id, outcomes, user, by, single=len(items) == 1)
    shown = "/".join(p for p in (target_user, to_folder) if p)
    record_event(
        ctx,
        session_id,
        Event(
            "Restore",
            "Warning" if counts.failed else "Success",
            f"Restored {counts.restored} items to {shown} ({counts.skipped} skipped, "
            f"{counts.failed} failed)",
            started,
            items[0] if len(items) == 1 else None,
            user,
            shown,
            by,
            len(items),
        ),
    )
    return counts


def _put_back(
    ctx: Context,
    session_id: str,
    outcomes: Iterator[Outcome],
    user: str,
    by: str,
    *,
    single: bool,
) -> RestoreCounts:
    """Count the outcomes as they come, publishing the counts every second while it runs."""
    counts, published = RestoreCounts(), RestoreCounts()
    last_published = time.monotonic()
    for outcome in outcomes:
        if single and isinstance(outcome.error, InvalidInput):
            raise outcome.error  # one item asked for: its refusal is the answer (a 400)
        if outcome.error is not None:
            counts.failed += 1
            _item_failed(ctx, session_id, outcome, user, counts.failed, by)
        elif outcome.restored:
            counts.restored += 1
            counts.bytes += outcome.item.size
        else:
            counts.skipped += 1
        if time.monotonic() - last_published >= PROGRESS_EVERY_SECONDS:
            _add_statistics(ctx, session_id, counts.since(published))  # visible while it runs
            published, last_published = replace(counts), time.monotonic()
    _add_statistics(ctx, session_id, counts.since(published))
    return counts


def _item_failed(
    ctx: Context, session_id: str, outcome: Outcome, source: str, failures: int, by: str
) -> None:
    """One item of a put-back could not be written: the rest goes on; the first failures are
    events naming the item and why (a bounded number, whatever the size of the put-back)."""
    if failures > FAILURE_EVENTS:
        return
    record_event(
        ctx,
        session_id,
        Event(
            "Restore",
            "Failed",
            f"Cannot restore {outcome.item.path}: {outcome.why}",
            ctx.clock.now(),
            outcome.item,
            source,
            by=by,
        ),
    )


def session_target(
    ctx: Context, session_id: str, credentials: RestoreCredentials | None = None
) -> RestoreTarget:
    """The organization of a restore session as a put-back writes into it, with the
    credentials a request named (checked now: a refusal is a 400 naming the property)."""
    return restore_target(ctx, browser(ctx, session_id).organization_id, credentials)


def restore_target(
    ctx: Context, organization_id: str, credentials: RestoreCredentials | None = None
) -> RestoreTarget:
    """The organization as a put-back writes into it."""
    # Imported here: a process that only saves items does without the Graph and IMAP clients.
    from keepstone.services import imap_settings, m365_restore, m365_settings
    from keepstone.sources.graph.restore import GraphTarget
    from keepstone.sources.imap.restore import ImapTarget

    with ctx.db.read() as s:
        org = get_organization_in(s, organization_id)
    if credentials is not None and org.type != m365_settings.OFFICE365_TYPE:
        raise InvalidInput(
            f"names an application, but a {org.type} organization is written without one",
            "applicationId",
        )
    if org.type == m365_settings.OFFICE365_TYPE:
        access = (
            m365_restore.checked_access(ctx, org, credentials)
            if credentials is not None
            else m365_settings.access_of(ctx, org)
        )
        return GraphTarget(access, m365_settings.graph_users(ctx, org))
    if org.type == "Local":
        return LocalTarget(Path(org.settings["path"]))
    if org.type == "Imap":
        return ImapTarget(imap_settings.access_of(ctx, org))
    raise InvalidInput(f"items cannot be put back into a {org.type} organization yet")


def _add_statistics(ctx: Context, session_id: str, counts: RestoreCounts) -> None:
    with ctx.db.write() as s:
        session = s.get(SessionRow, session_id)
        if session is None:
            return
        totals = dict(session.statistics)
        for name in ("restored", "skipped", "failed", "bytes"):
            totals[name] = int(totals.get(name, 0)) + getattr(counts, name)
        session.statistics = totals
        if counts.failed:
            session.result = "Warning"
