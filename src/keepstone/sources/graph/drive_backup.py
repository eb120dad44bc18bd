"""One user's OneDrive, read through Graph: ``root/delta`` from the delta link the previous run
kept, folders tracked by id, files downloaded from their pre-authenticated URLs and checked
against their ``quickXorHash``.

Every run yields the whole drive (the restore point is a full view): files the delta round did
not name are the previous run's, under their current path, and the executor carries them over by
their change token (the ``cTag``) without reading them. The item format is in
docs/repository-format.md ("Microsoft 365: OneDrive").

A lost delta state (``410 Gone``) is followed as documented: its ``Location`` is a nextLink
starting a fresh enumeration, read whole and taken as the drive's state (both
``resyncChangesApplyDifferences`` and ``resyncChangesUploadDifferences``: a backup has no local
changes to upload; for the latter the files no longer listed are named in one warning).

Throttling scope: SharePoint and OneDrive throttle **per application per tenant** (graph.md
§2.3), not per drive, so every drive request of one organization's client shares one scope
(``DRIVE_SCOPE``): a ``Retry-After`` from any drive holds every drive of the tenant (sending on
another drive during the penalty would be a premature retry of the same budget), and the
client's 4 in flight and its request budget (10,000 per 10 minutes, 16.7/s: below the smallest
tenant's 1,250 resource units a minute for 1-unit reads) apply to the tenant's drives together.
"""

from __future__ import annotations

import errno
import io
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, cast
from urllib.parse import quote

from keepstone.domain.names import safe_component
from keepstone.domain.quickxor import QuickXor
from keepstone.engine import Item
from keepstone.sources.connector import PartFailed, SkipHandler, Skipped, SourceItem
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.errors import (
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphSyncStateLost,
)
from keepstone.sources.names import key_part

API = "/v1.0"
DRIVE_SCOPE = "sharepoint"  # the app-per-tenant unit of SharePoint/OneDrive throttling
PAGE_SIZE = 500  # Corso's page size for drive delta
RESYNC_ROUNDS = 3  # fresh enumerations tried when the service keeps resetting (410) midway
# The 410 codes asking a client to upload what the service did not return (the doc's name and
# the errors page's shorter one).
UPLOAD_DIFFERENCES = frozenset({"resyncChangesUploadDifferences", "resyncUploadDifferences"})
SPILL_BYTES = 4 << 20  # a download is kept in memory up to this, on disk beyond
READ_PIECE = 1 << 20
DOWNLOAD_URL = "@microsoft.graph.downloadUrl"
SELECT = ",".join(
    (
        "id",
        "name",
        "cTag",
        "size",
        "createdDateTime",
        "lastModifiedDateTime",
        "parentReference",
        "root",
        "folder",
        "file",
        "package",
        "deleted",
        "malware",
        "content.downloadUrl",
    )
)
# Deletions as a `deleted` facet rather than dropped silently; items below a folder the app
# cannot see are still listed (graph.md §1.4).
PREFER = {"Prefer": "deltashowremovedasdeleted, deltatraversepermissiongaps"}
FILE_MODE = 0o644


def file_key(user: str, item_id: str) -> str:
    return f"{user}/graph-drive/{key_part(item_id)}"


def folder_key(user: str, item_id: str) -> str:
    return f"{user}/graph-drive-folder/{key_part(item_id)}"


def state_key(user: str) -> str:
    return f"{user}/graph-drive-state"


@dataclass
class Folder:
    name: str
    parent_id: str | None


@dataclass
class File:
    """A file as the drive's current state knows it; ``url`` is the download URL the delta
    round gave (None for a file carried from the previous run)."""

    item_id: str
    name: str
    parent_id: str | None
    size: int
    ctag: str
    quick_xor_hash: str
    created: str
    modified: str
    url: str | None = None


@dataclass
class DriveModel:
    """The drive's folders and files by id, and which ids a round reported deleted."""

    root_id: str | None = None
    folders: dict[str, Folder] = field(default_factory=dict)
    files: dict[str, File] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)


class DriveBackup:
    """One user's drive for one run (see the module's docstring)."""

    def __init__(
        self, client: GraphClient, user: GraphUser, previous: list[Item], on_skip: SkipHandler
    ) -> None:
        self.client = client
        self.user = user
        self.on_skip = on_skip
        self.previous = {i.key: i for i in previous if _is_drive_key(user.name, i.key)}
        self.drive_id = ""
        self.requests = 0  # Graph requests of the listing (the downloads count apart)
        self._pending = 0
        self._failed: set[str] = set()
        self._done = threading.Condition()

    # -- the run ------------------------------------------------------------------------

    def items(self) -> Iterator[SourceItem]:
        """The drive's folders, its files, then its state. The state comes once every file
        whose change token changed has been opened (the executor opens each such item, in its
        pool) so that it can name the files whose download failed."""
        self.drive_id = self._drive_id()
        state = self.previous.get(state_key(self.user.name))
        model, delta_link = self._read(state)
        paths = FolderPaths(model)
        yield from self._folder_items(model, paths)
        yield from self._file_items(model, paths)
        with self._done:  # the state last: the ids whose download failed are retried next run
            while self._pending:
                self._done.wait()
            retry = sorted(self._failed)
        yield self._state_item(model, delta_link, retry)

    def _drive_id(self) -> str:
        try:
            drive = self.client.get_json(
                f"{API}/users/{quote(self.user.graph_id)}/drive", scope=DRIVE_SCOPE
            )
        except GraphNotFound as error:
            raise PartFailed(f"the user has no OneDrive ({error.message or error.code})") from error
        except GraphError as error:
            raise PartFailed(f"the OneDrive cannot be read: {error.code}") from error
        self.requests += 1
        drive_id = drive.get("id")
        if not isinstance(drive_id, str) or not drive_id:
            raise PartFailed("Graph gave the OneDrive no id")
        return drive_id

    def _read(self, state: Item | None) -> tuple[DriveModel, str | None]:
        """The drive's state after this run's delta round: the previous state plus the round's
        changes, or (first run, another drive, the delta link lost: 410) a full listing."""
        link = state.meta.get("delta_link") if state else None
        same_drive = state is not None and state.meta.get("drive_id") == self.drive_id
        resync: GraphSyncStateLost | None = None
        if same_drive and isinstance(link, str) and link:
            model = self._previous_model(state)
            try:
                delta_link = self._apply_round(model, link)
            except GraphSyncStateLost as error:
                resync = error  # a fresh enumeration replaces the local state (below)
            except GraphError as error:
                raise PartFailed(f"the OneDrive changes cannot be listed: {error.code}") from error
            else:
                self._retry(model, state)
                return model, delta_link
        return self._full_listing(resync)

    def _full_listing(self, resync: GraphSyncStateLost | None) -> tuple[DriveModel, str | None]:
        """Every item of the drive, from the fresh enumeration a 410's ``Location`` names (a
        nextLink, graph.md §2.5) or else from a delta without a token. The server's state is
        the drive's: files it does not list are not in this restore point (earlier points keep
        them); a file whose cTag is unchanged is carried, not downloaded again."""
        start = f"{API}/drives/{quote(self.drive_id)}/root/delta?$select={SELECT}&$top={PAGE_SIZE}"
        for attempt in range(RESYNC_ROUNDS):
            model = DriveModel()
            try:
                delta_link = self._apply_round(model, self._resync_url(resync) or start)
            except GraphSyncStateLost as error:
                if attempt == RESYNC_ROUNDS - 1:  # reset again and again: the part fails
                    raise PartFailed(f"the OneDrive kept resetting: {error.code}") from error
                resync = error
                continue
            except GraphError as error:
                raise PartFailed(f"the OneDrive cannot be listed: {error.code}") from error
            if resync is not None:
                self._resynced(resync, model)
            return model, delta_link
        raise AssertionError("unreachable")

    def _resync_url(self, resync: GraphSyncStateLost | None) -> str | None:
        """The 410's ``Location`` when it is a Graph URL (the token is only ever sent to Graph;
        anything else is ignored and the listing starts without a token)."""
        location = resync.location if resync is not None else None
        if location and location.startswith(self.client.endpoints.graph_url + "/"):
            return location
        return None

    def _resynced(self, resync: GraphSyncStateLost, model: DriveModel) -> None:
        """``resyncChangesUploadDifferences`` says the service may not know items a client
        holds (graph.md §2.5: "upload any local items that the service didn't return"). A
        backup uploads nothing: the drive is what the service lists, and the files it no
        longer lists are named in one warning (they stay in the earlier restore points)."""
        if not UPLOAD_DIFFERENCES.intersection((resync.code, *resync.details)):
            return  # resyncChangesApplyDifferences: the server's version replaces ours
        before = {str(i.meta.get("item_id")) for i in self.previous.values() if i.kind == "file"}
        missing = len(before - set(model.files))
        if missing:
            self.on_skip(
                Skipped(
                    self.user.name,
                    "OneDrive",
                    f"OneDrive asked for a resync that uploads differences; {missing} file(s) "
                    "it no longer lists are kept in earlier restore points only",
                )
            )

    def _apply_round(self, model: DriveModel, url: str) -> str | None:
        """Follow one delta round to its delta link; entries are merged by id, the last one of
        an id wins (an item may come more than once, a child before its parent)."""
        entries: dict[str, dict[str, Any]] = {}
        walk = self.client.iterate_pages(url, scope=DRIVE_SCOPE, headers=PREFER)
        try:
            for page in walk:
                for entry in page:
                    entry_id = entry.get("id")
                    if isinstance(entry_id, str) and entry_id:
                        entries.pop(entry_id, None)
                        entries[entry_id] = entry
        finally:
            self.requests += walk.requests
        for entry in entries.values():
            self._apply(model, entry)
        return walk.delta_link

    def _apply(self, model: DriveModel, entry: dict[str, Any]) -> None:
        entry_id: str = entry["id"]
        if "deleted" in entry:
            model.folders.pop(entry_id, None)
            model.files.pop(entry_id, None)
            model.deleted.add(entry_id)
            return
        model.deleted.discard(entry_id)
        parent = entry.get("parentReference")
        parent_id = parent.get("id") if isinstance(parent, dict) else None
        parent_id = parent_id if isinstance(parent_id, str) else None
        name = entry.get("name")
        if "root" in entry:
            model.root_id = entry_id
            return
        if not isinstance(name, str) or not name:
            self._skip(entry_id, "Graph gave the item no name")
            return
        if "malware" in entry:
            self._skip(name, "OneDrive flagged the file as malware; it cannot be downloaded")
            return
        if "folder" in entry or "package" in entry:
            model.files.pop(entry_id, None)
            model.folders[entry_id] = Folder(name, parent_id)
            return
        if isinstance(entry.get("file"), dict):
            model.folders.pop(entry_id, None)
            model.files[entry_id] = _file_of(entry_id, name, parent_id, entry)
            return
        self._skip(name, "neither a file nor a folder")

    def _retry(self, model: DriveModel, state: Item | None) -> None:
        """Files whose download failed last run (the round no longer names them): asked again."""
        ids = state.meta.get("retry", []) if state else []
        for item_id in ids if isinstance(ids, list) else []:
            if not isinstance(item_id, str) or item_id in model.files or item_id in model.deleted:
                continue
            try:
                entry = self.client.get_json(self._item_url(item_id), scope=DRIVE_SCOPE)
            except GraphNotFound:
                continue  # deleted since
            except GraphError:
                self._failed.add(item_id)  # asked again next run
                continue
            self.requests += 1
            if entry.get("id") == item_id:
                self._apply(model, entry)

    def _previous_model(self, state: Item | None) -> DriveModel:
        root = state.meta.get("root_id") if state else None
        model = DriveModel(root_id=root if isinstance(root, str) else None)
        for item in self.previous.values():
            meta = item.meta
            item_id, name, parent = meta.get("item_id"), meta.get("name"), meta.get("parent_id")
            if not isinstance(item_id, str) or not isinstance(name, str):
                continue
            parent_id = parent if isinstance(parent, str) else None
            if item.kind == "folder":
                model.folders[item_id] = Folder(name, parent_id)
            elif item.kind == "file":
                model.files[item_id] = File(
                    item_id,
                    name,
                    parent_id,
                    item.size,
                    str(meta.get("ctag") or ""),
                    str(meta.get("quick_xor_hash") or ""),
                    str(meta.get("created") or ""),
                    str(meta.get("modified") or ""),
                )
        return model

    # -- what the run yields ------------------------------------------------------------

    def _folder_items(self, model: DriveModel, paths: FolderPaths) -> Iterator[SourceItem]:
        for folder_id, folder in model.folders.items():
            path = paths.of(folder_id)
            if path is None:
                continue  # below a folder deleted in this round
            meta = {
                "source": "graph",
                "drive_id": self.drive_id,
                "item_id": folder_id,
                "name": folder.name,
                "parent_id": folder.parent_id,
                "path": path,
            }
            yield SourceItem(
                folder_key(self.user.name, folder_id),
                self.user.name,
                "folder",
                path,
                0,
                0.0,
                0o700,
                meta,
                f"{folder.parent_id}\0{folder.name}\0{path}",
                None,
                _empty,
            )

    def _file_items(self, model: DriveModel, paths: FolderPaths) -> Iterator[SourceItem]:
        for file in model.files.values():
            folder = paths.of(file.parent_id) if file.parent_id else ""
            if folder is None:
                continue  # below a folder deleted in this round
            name = safe_component(file.name)
            key = file_key(self.user.name, file.item_id)
            token = file.ctag or file.quick_xor_hash
            before = self.previous.get(key)
            fresh = before is None or before.meta.get("change_token") != token
            if fresh:
                with self._done:
                    self._pending += 1
            yield SourceItem(
                key,
                self.user.name,
                "file",
                f"{folder}/{name}" if folder else name,
                file.size,
                _timestamp(file.modified),
                FILE_MODE,
                self._file_meta(file),
                token,
                None,
                _Opener(self, file, counted=fresh),
            )

    def _file_meta(self, file: File) -> dict[str, Any]:
        return {
            "source": "graph",
            "drive_id": self.drive_id,
            "item_id": file.item_id,
            "parent_id": file.parent_id,
            "name": file.name,
            "quick_xor_hash": file.quick_xor_hash,
            "ctag": file.ctag,
            "created": file.created,
            "modified": file.modified,
        }

    def _state_item(
        self, model: DriveModel, delta_link: str | None, retry: list[str]
    ) -> SourceItem:
        meta = {
            "source": "graph",
            "drive_id": self.drive_id,
            "delta_link": delta_link,
            "root_id": model.root_id,
            "retry": retry,
        }
        return SourceItem(
            state_key(self.user.name),
            self.user.name,
            "folder",
            "",
            0,
            0.0,
            0o700,
            meta,
            f"{delta_link}\0{','.join(retry)}",
            None,
            _empty,
        )

    # -- downloads ----------------------------------------------------------------------

    def fetch(self, file: File) -> BinaryIO:
        """The file's bytes, downloaded and checked against its quickXorHash (once more on a
        mismatch); an OSError (a per-item warning) when they cannot be had."""
        for _ in range(2):
            # closed here on failure, by the executor once read on success
            spill = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPILL_BYTES))  # noqa: SIM115
            try:
                self._download(file, spill)
                if _matches(spill, file):
                    spill.seek(0)
                    return spill
            except BaseException:
                spill.close()
                raise
            spill.close()
            file.url = None  # the next attempt asks for a fresh URL
        raise OSError(
            errno.EIO, "the downloaded content did not match its quickXorHash, twice: not stored"
        )

    def _download(self, file: File, sink: BinaryIO) -> None:
        """One download; an expired URL (401 from the download host) is asked for again once."""
        for attempt in range(2):
            url = file.url or self._fresh_url(file)
            try:
                self.client.download(url, sink, scope=DRIVE_SCOPE)
                return
            except GraphAuthError:
                if attempt:
                    raise OSError(errno.EACCES, "the download URL was refused twice") from None
                sink.seek(0)
                sink.truncate()
                file.url = None
            except GraphNotFound:
                raise OSError(errno.ENOENT, "deleted since it was listed") from None
            except GraphError as error:
                raise OSError(errno.EIO, f"download failed: {error.code}") from None

    def _fresh_url(self, file: File) -> str:
        try:
            entry = self.client.get_json(
                self._item_url(file.item_id) + "?$select=id,content.downloadUrl",
                scope=DRIVE_SCOPE,
            )
        except GraphNotFound:
            raise OSError(errno.ENOENT, "deleted since it was listed") from None
        except GraphError as error:
            raise OSError(errno.EIO, f"no download URL: {error.code}") from None
        url = entry.get(DOWNLOAD_URL)
        if not isinstance(url, str) or not url:
            raise OSError(errno.EIO, "Graph gave no download URL")
        return url

    def _item_url(self, item_id: str) -> str:
        return f"{API}/drives/{quote(self.drive_id)}/items/{quote(item_id)}"

    def _opened(self, file: File, failed: bool, counted: bool) -> None:
        with self._done:
            if failed:
                self._failed.add(file.item_id)
            if counted:
                self._pending -= 1
                self._done.notify_all()

    def _skip(self, what: str, reason: str) -> None:
        self.on_skip(Skipped(self.user.name, f"OneDrive/{what}", reason))


class _Opener:
    """A file's opener: downloads when the executor reads the file, and tells the backup how
    it went (the state item waits for the downloads it counted)."""

    def __init__(self, backup: DriveBackup, file: File, *, counted: bool) -> None:
        self.backup, self.file, self.counted = backup, file, counted

    def __del__(self) -> None:
        # Dropped unopened (a stopped run cancels the reads ahead): the backup must not wait
        # for it, and the file is read again next run.
        if self.counted:
            self.counted = False
            self.backup._opened(self.file, True, True)

    def __call__(self) -> BinaryIO:
        counted, self.counted = self.counted, False  # a second open is not counted again
        try:
            stream = self.backup.fetch(self.file)
        except BaseException:
            self.backup._opened(self.file, True, counted)
            raise
        self.backup._opened(self.file, False, counted)
        return stream


class FolderPaths:
    """Folder paths from parent ids (delta gives no paths), each computed once: sanitised
    names joined by "/", "" for the root. A folder whose parent is unknown sits at the top; one
    below a folder deleted in the round has no path (None); a cycle is cut where it closes."""

    def __init__(self, model: DriveModel) -> None:
        self.model = model
        self._memo: dict[str, str | None] = {}
        if model.root_id:
            self._memo[model.root_id] = ""

    def of(self, folder_id: str | None) -> str | None:
        if folder_id is None:
            return ""
        chain: list[str] = []
        seen: set[str] = set()
        current: str | None = folder_id
        while current is not None and current not in self._memo:
            if current in self.model.deleted:
                break
            folder = self.model.folders.get(current)
            if folder is None or current in seen:
                break
            seen.add(current)
            chain.append(current)
            current = folder.parent_id
        base: str | None
        if current is not None and current in self.model.deleted:
            base = None
        else:
            base = self._memo.get(current, "") if current is not None else ""
        for link in reversed(chain):
            if base is not None:
                name = safe_component(self.model.folders[link].name)
                base = f"{base}/{name}" if base else name
            self._memo[link] = base
        return self._memo.get(folder_id, base)


def _file_of(item_id: str, name: str, parent_id: str | None, entry: dict[str, Any]) -> File:
    facet = entry["file"]
    hashes = facet.get("hashes")
    quick = hashes.get("quickXorHash") if isinstance(hashes, dict) else None
    size = entry.get("size")
    url = entry.get(DOWNLOAD_URL)
    return File(
        item_id,
        name,
        parent_id,
        size if isinstance(size, int) and size >= 0 else 0,
        _text(entry.get("cTag")),
        quick if isinstance(quick, str) else "",
        _text(entry.get("createdDateTime")),
        _text(entry.get("lastModifiedDateTime")),
        url if isinstance(url, str) and url else None,
    )


def _matches(spill: BinaryIO, file: File) -> bool:
    """Whether the bytes read are the file: its size, and its quickXorHash when Graph gave one."""
    spill.seek(0)
    hasher = QuickXor()
    size = 0
    while piece := spill.read(READ_PIECE):
        hasher.update(piece)
        size += len(piece)
    if file.quick_xor_hash and hasher.b64digest() != file.quick_xor_hash:
        return False
    return size == file.size or not file.size


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _timestamp(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


def _empty() -> BinaryIO:
    return io.BytesIO()


def _is_drive_key(user: str, key: str) -> bool:
    return key.startswith((f"{user}/graph-drive/", f"{user}/graph-drive-folder/")) or (
        key == state_key(user)
    )
