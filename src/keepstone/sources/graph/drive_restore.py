"""Files put back into a user's OneDrive through Graph: in place, into another user's drive, or
under a folder (``Placement.folder``), folders created as needed.

- Up to ``SIMPLE_LIMIT`` (4 MiB) a file is one ``PUT …/items/{parent}:/{name}:/content``. The
  Graph v1.0 page allows 250 MB there, the OneDrive API page 4 MB; we keep 4 MiB because a
  simple upload cannot be resumed (a cut at 249 MB starts again) and carries no metadata.
  Its dates (``fileSystemInfo``) then go in one ``$batch`` of ``PATCH``es per 20 files.
- Above, an upload session: ``createUploadSession`` (the dates ride in its ``item``), then
  fragments of ``CHUNK`` bytes (a multiple of 320 KiB) in order to the upload URL, which takes
  no Authorization header (the client sends the token to the Graph URL only); after a cut the
  session's ``nextExpectedRanges`` says where to go on.
- An upload session expires (``expirationDateTime``; its URL then answers 404, or 410): a new
  session is made and the file sent again from its first byte (a new session holds nothing),
  up to ``SESSIONS`` sessions per file.
- ``@microsoft.graph.conflictBehavior`` from the collision policy: skip → ``fail`` (a 409 is
  the file skipped), overwrite → ``replace``, keepBoth → ``rename``.
- Never twice: a simple upload and a session's last fragment are sent without the client's
  replay. When the answer is lost, the file at the name is looked at: the same size and
  ``quickXorHash`` as ours means it was written; otherwise it is sent again (``fail`` and
  ``replace`` can make no second copy). keepBoth first sends ``fail`` and only on a 409
  ``rename``, so a lost answer is only ever to a request that writes at the file's own name;
  a lost answer to the ``rename`` itself fails the file, saying a copy may exist.

Names are data: every folder name and file name from a backup goes through
``domain.names.safe_component`` before it becomes a path segment (and is percent-encoded in the
URL), so no name can climb out of ``Placement.folder``.
"""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from keepstone.domain.errors import InvalidInput
from keepstone.domain.names import safe_component
from keepstone.domain.quickxor import QuickXor
from keepstone.engine import Item
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.client import GraphClient, inner_retry_after
from keepstone.sources.graph.drive_backup import API, DRIVE_SCOPE
from keepstone.sources.graph.errors import GraphAnswerLost, GraphError
from keepstone.sources.targets import Collision, Outcome, Placement, Reader

SIMPLE_LIMIT = 4 << 20
FRAGMENT_UNIT = 320 * 1024
CHUNK = 32 * FRAGMENT_UNIT  # 10 MiB a fragment
BATCH = 20  # Graph's most requests in one $batch
RESUMES = 5  # times one upload session goes on after a cut before the file fails
SESSIONS = 3  # upload sessions one file may use (each after the previous one expired)
SESSION_GONE = (404, 410)  # an upload URL's answer once its session expired
BEHAVIOUR = {
    Collision.SKIP: "fail",
    Collision.OVERWRITE: "replace",
    Collision.KEEP_BOTH: "rename",
}
BEHAVIOUR_KEY = "@microsoft.graph.conflictBehavior"


class Skip(Exception):
    """The name is taken and the policy is to skip."""


@dataclass
class Landing:
    """Where a session's file lands (``path``, with the ``behaviour`` its session was made
    with), and the hash of what was sent so far."""

    path: str
    behaviour: str
    hasher: QuickXor = field(default_factory=QuickXor)


class SessionGone(Exception):
    """The upload session expired under the upload: a new one starts the file again."""


@dataclass
class Dated:
    """A file written by simple upload, waiting for its dates."""

    item: Item
    item_id: str
    dates: dict[str, str]


def put_back_files(
    client: GraphClient, user: GraphUser, items: Sequence[Item], read: Reader, where: Placement
) -> Iterator[Outcome]:
    """Write ``items`` into ``user``'s drive (``user`` is the target: ``where.user`` resolved,
    the items' own user for a restore in place) below ``where.folder``; one outcome per item,
    in order except that simple uploads answer once their dates are set. Raises
    :class:`InvalidInput` before writing anything when the user has no drive."""
    try:
        drive = client.get_json(f"{API}/users/{quote(user.graph_id)}/drive", scope=DRIVE_SCOPE)
    except GraphError as error:
        raise InvalidInput(
            f"the OneDrive of {user.name} cannot be written: {error.code}", "user"
        ) from error
    drive_id = drive.get("id")
    if not isinstance(drive_id, str) or not drive_id:
        raise InvalidInput(f"Graph gave the OneDrive of {user.name} no id", "user")
    return DriveWriter(client, drive_id, where).put_back(items, read)


class DriveWriter:
    def __init__(self, client: GraphClient, drive_id: str, where: Placement) -> None:
        self.client = client
        self.drive = f"{API}/drives/{quote(drive_id)}"
        self.where = where
        self.behaviour = BEHAVIOUR[where.collision]
        self._folders: dict[tuple[str, ...], str] = {(): "root"}
        self._dated: list[Dated] = []

    def put_back(self, items: Sequence[Item], read: Reader) -> Iterator[Outcome]:
        for item in items:
            if item.kind != "file":
                yield Outcome(item, error=InvalidInput("only files go into a OneDrive", "ids"))
                continue
            outcome = self._one(item, read)
            if outcome is not None:
                yield outcome
            if len(self._dated) >= BATCH:
                yield from self._set_dates()
        yield from self._set_dates()

    def _one(self, item: Item, read: Reader) -> Outcome | None:
        """Write one file; None when its outcome waits for its dates."""
        folder, name = target_of(item, self.where.folder)
        try:
            parent = self._folder(folder)
            if item.size <= SIMPLE_LIMIT:
                with read(item) as data:
                    return self._simple(item, parent, name, data)
            self._session(item, parent, name, read)
        except Skip:
            return Outcome(item)
        except GraphError as error:
            return Outcome(item, error=OSError(errno.EIO, f"Graph refused it: {error.code}"))
        except OSError as error:
            return Outcome(item, error=error)
        return Outcome(item, restored=True)

    # -- folders ------------------------------------------------------------------------

    def _folder(self, parts: tuple[str, ...]) -> str:
        """The id of the folder at ``parts`` below the root, made where missing (each level
        asked once per put-back)."""
        known = self._folders.get(parts)
        if known is not None:
            return known
        parent = self._folder(parts[:-1])
        name = parts[-1]
        try:
            made = self._post(
                f"{self.drive}/items/{quote(parent)}/children",
                {"name": name, "folder": {}, BEHAVIOUR_KEY: "fail"},
            )
        except GraphError as error:
            if error.status != 409:
                raise
            made = self.client.get_json(
                f"{self.drive}/items/{quote(parent)}:/{quote(name, safe='')}", scope=DRIVE_SCOPE
            )
            if "folder" not in made:
                raise OSError(errno.ENOTDIR, f"a file is in the way of the folder {name}") from None
        folder_id = made.get("id")
        if not isinstance(folder_id, str) or not folder_id:
            raise OSError(errno.EIO, "Graph gave a folder no id")
        self._folders[parts] = folder_id
        return folder_id

    # -- simple upload ------------------------------------------------------------------

    def _simple(self, item: Item, parent: str, name: str, data: BinaryIO) -> Outcome | None:
        content = data.read(SIMPLE_LIMIT + 1)
        if len(content) > SIMPLE_LIMIT:
            raise OSError(errno.EFBIG, "the content is larger than the backup said")
        path = f"{self.drive}/items/{quote(parent)}:/{quote(name, safe='')}"
        first = "fail" if self.behaviour == "rename" else self.behaviour
        try:
            written = self._written(path, content, first)
        except GraphError as error:
            if error.status != 409:
                raise
            if self.behaviour == "fail":
                raise Skip() from None
            # keepBoth: the name is taken, so a renamed copy; a lost answer here cannot be told
            # from a copy that was not made, so the file fails rather than risk a second copy
            try:
                written = _json(self._put_content(path, content, "rename").content)
            except GraphAnswerLost:
                raise OSError(
                    errno.EIO, "Graph's answer was lost; a renamed copy may have been written"
                ) from None
        item_id = written.get("id")
        if not isinstance(item_id, str):
            raise OSError(errno.EIO, "Graph gave the file no id")
        self._dated.append(Dated(item, item_id, dates_of(item)))
        return None

    def _written(self, path: str, content: bytes, behaviour: str) -> dict[str, Any]:
        """PUT ``content`` at ``path`` (``fail`` or ``replace``), never twice: after a lost
        answer the file there is ours if its size and hash are; else it is sent again."""
        for attempt in range(1, RESUMES + 1):
            try:
                return _json(self._put_content(path, content, behaviour).content)
            except GraphAnswerLost:
                if attempt == RESUMES:
                    raise
            there = self._at(path)
            if there is not None and _same(there, len(content), quick_xor(content)):
                return there
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _put_content(self, path: str, content: bytes, behaviour: str) -> httpx.Response:
        return self.client.request(
            "PUT",
            f"{path}:/content?{BEHAVIOUR_KEY}={behaviour}",
            scope=DRIVE_SCOPE,
            headers={"Content-Type": "application/octet-stream"},
            content=content,
            replay=False,
        )

    def _at(self, path: str) -> dict[str, Any] | None:
        """The item at ``path`` (…/items/{parent}:/{name}), or None."""
        try:
            return self.client.get_json(path, scope=DRIVE_SCOPE)
        except GraphError as error:
            if error.status == 404:
                return None
            raise

    def _set_dates(self) -> Iterator[Outcome]:
        """The waiting files' dates, 20 ``PATCH``es to a ``$batch``; a file whose dates cannot
        be set is written but reported failed (its dates are part of it)."""
        waiting, self._dated = self._dated, []
        if not waiting:
            return
        requests = [
            {
                "id": str(n),
                "method": "PATCH",
                "url": f"{self.drive.removeprefix(API)}/items/{quote(d.item_id)}",
                "headers": {"Content-Type": "application/json"},
                "body": {"fileSystemInfo": d.dates},
            }
            for n, d in enumerate(waiting)
        ]
        statuses = self._batch(requests)
        for n, dated in enumerate(waiting):
            status = statuses.get(str(n), 0)
            if 200 <= status < 300:
                yield Outcome(dated.item, restored=True)
            else:
                why = f"written, but its dates could not be set (HTTP {status})"
                yield Outcome(dated.item, error=OSError(errno.EIO, why))

    def _batch(self, requests: list[dict[str, Any]]) -> dict[str, int]:
        """Run a batch; inner requests throttled (429/503 with Retry-After) go again after the
        longest wait named, a few times."""
        statuses: dict[str, int] = {}
        pending = requests
        for _ in range(RESUMES):
            try:
                answer = self._post(f"{API}/$batch", {"requests": pending})
            except GraphError:
                return statuses
            waits: list[float] = []
            again: list[dict[str, Any]] = []
            by_id = {r["id"]: r for r in pending}
            for response in answer.get("responses", []):
                if not isinstance(response, dict) or response.get("id") not in by_id:
                    continue
                status = response.get("status")
                status = status if isinstance(status, int) else 0  # Graph's answer is data
                statuses[response["id"]] = status
                if status in (429, 503, 504):
                    again.append(by_id[response["id"]])
                    waits.append(inner_retry_after(response) or 1.0)
            if not again:
                return statuses
            # the whole drive scope waits (not only this thread): the next $batch passes the gate
            self.client.hold(DRIVE_SCOPE, max(waits))
            pending = again
        return statuses

    # -- upload sessions ----------------------------------------------------------------

    def _session(self, item: Item, parent: str, name: str, read: Reader) -> None:
        """Upload by session; an expired session is replaced by a new one, the file sent
        again from its start (each attempt reads the backup afresh)."""
        path = f"{self.drive}/items/{quote(parent)}:/{quote(name, safe='')}"
        behaviour = self.behaviour
        if behaviour == "rename" and self._at(path) is None:
            behaviour = "fail"  # the name is free: a lost last answer can then be checked
        for attempt in range(1, SESSIONS + 1):
            upload_url = self._open_session(item, parent, name, behaviour)
            try:
                with read(item) as data:
                    self._send(upload_url, item.size, data, Landing(path, behaviour))
                return
            except SessionGone:
                if attempt == SESSIONS:
                    raise OSError(
                        errno.ETIMEDOUT, f"{SESSIONS} upload sessions expired before the end"
                    ) from None
            except BaseException:
                self._cancel(upload_url)
                raise

    def _open_session(self, item: Item, parent: str, name: str, behaviour: str) -> str:
        url = f"{self.drive}/items/{quote(parent)}:/{quote(name, safe='')}:/createUploadSession"
        body = {
            "item": {
                BEHAVIOUR_KEY: behaviour,
                "name": name,
                "fileSystemInfo": dates_of(item),
            }
        }
        upload_url = self._post(url, body).get("uploadUrl")
        if not isinstance(upload_url, str) or not upload_url:
            raise OSError(errno.EIO, "Graph gave no upload URL")
        return upload_url

    def _send(self, upload_url: str, total: int, data: BinaryIO, landing: Landing) -> None:
        """Fragments in order; after a cut (a transport failure, or a 416 for a fragment the
        service partly kept) the session's ``nextExpectedRanges`` says where to go on, within
        the fragment still in memory. An expired session raises :class:`SessionGone`."""
        offset = 0
        resumes = 0
        while offset < total:
            chunk = data.read(CHUNK)
            if not chunk or len(chunk) < min(CHUNK, total - offset):
                raise OSError(errno.EIO, "the backup's content is shorter than its size")
            landing.hasher.update(chunk)
            start = offset
            while offset < start + len(chunk):
                piece = chunk[offset - start :]
                try:
                    done = self._put(upload_url, offset, piece, total)
                except GraphAnswerLost:
                    if self._landed(landing, total):
                        return
                    if resumes >= RESUMES:
                        raise
                    resumes += 1  # not written: the session says where to go on
                    offset = self._next_expected(upload_url, start, start + len(chunk))
                    continue
                except GraphError as error:
                    if error.status in SESSION_GONE:
                        raise SessionGone() from None
                    if error.status == 409 and landing.behaviour == "fail":
                        if self.behaviour == "rename":
                            raise OSError(errno.EEXIST, "the name was taken meanwhile") from None
                        raise Skip() from None
                    if resumes >= RESUMES or error.status not in (416, 0, 500, 502, 503, 504):
                        raise
                    resumes += 1
                    offset = self._next_expected(upload_url, start, start + len(chunk))
                    continue
                offset = start + len(chunk)
                if done:
                    return
        raise OSError(errno.EIO, "the upload session did not complete")

    def _put(self, upload_url: str, offset: int, piece: bytes, total: int) -> bool:
        last = offset + len(piece) - 1
        response = self.client.request(
            "PUT",
            upload_url,
            scope=DRIVE_SCOPE,
            headers={"Content-Range": f"bytes {offset}-{last}/{total}"},
            content=piece,
            replay=last + 1 < total,  # the last fragment writes the file: never twice
        )
        return response.status_code in (200, 201)

    def _landed(self, landing: Landing, total: int) -> bool:
        """After a lost answer to the last fragment: whether the file is at its name, whole."""
        if landing.behaviour == "rename":
            raise OSError(
                errno.EIO, "Graph's answer was lost; a renamed copy may have been written"
            )
        there = self._at(landing.path)
        return there is not None and _same(there, total, landing.hasher.b64digest())

    def _next_expected(self, upload_url: str, low: int, high: int) -> int:
        try:
            status = self.client.get_json(upload_url, scope=DRIVE_SCOPE)
        except GraphError as error:
            if error.status in SESSION_GONE:
                raise SessionGone() from None
            raise
        ranges = status.get("nextExpectedRanges")
        first = ranges[0] if isinstance(ranges, list) and ranges else None
        try:
            offset = int(str(first).split("-", 1)[0])
        except ValueError:
            raise OSError(errno.EIO, "the upload session gave no next range") from None
        if not low <= offset <= high:
            raise OSError(errno.EIO, "the upload session lost data already sent")
        return offset

    def _cancel(self, upload_url: str) -> None:
        with contextlib.suppress(GraphError, OSError):  # an abandoned session expires anyway
            self.client.request("DELETE", upload_url, scope=DRIVE_SCOPE)

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.request(
            "POST",
            url,
            scope=DRIVE_SCOPE,
            headers={"Content-Type": "application/json"},
            content=json.dumps(body).encode(),
        )
        return _json(response.content)


def target_of(item: Item, folder: str | None) -> tuple[tuple[str, ...], str]:
    """Where a file goes: its folder's parts below the drive's root and its name, each a safe
    component; under ``folder`` (itself made of safe components) when given."""
    parts = [p for p in item.path.split("/") if p]
    shown = item.meta.get("name") if item.meta.get("source") == "graph" else None
    name = safe_component(shown if isinstance(shown, str) and shown else (parts or [""])[-1])
    own = [safe_component(p) for p in parts[:-1]]
    base = [safe_component(p) for p in (folder or "").split("/") if p.strip()]
    return tuple(base + own), name


def quick_xor(content: bytes) -> str:
    hasher = QuickXor()
    hasher.update(content)
    return hasher.b64digest()


def _same(item: dict[str, Any], size: int, digest: str) -> bool:
    """Whether a driveItem holds content of ``size`` bytes hashing to ``digest``."""
    hashes = (item.get("file") or {}).get("hashes") if isinstance(item.get("file"), dict) else None
    found = hashes.get("quickXorHash") if isinstance(hashes, dict) else None
    return item.get("size") == size and found == digest


def dates_of(item: Item) -> dict[str, str]:
    """``fileSystemInfo`` from the backup: Graph's own dates, or the file's mtime."""
    modified = item.meta.get("modified") if item.meta.get("source") == "graph" else None
    created = item.meta.get("created") if item.meta.get("source") == "graph" else None
    fallback = datetime.fromtimestamp(item.mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "createdDateTime": created if isinstance(created, str) and created else fallback,
        "lastModifiedDateTime": modified if isinstance(modified, str) and modified else fallback,
    }


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
