"""OneDrive writes: folders (`POST …/children`), simple upload (`PUT …:/{name}:/content`), upload
sessions (`POST …:/{name}:/createUploadSession` and the upload host), `PATCH` of an item's
`fileSystemInfo`, and lookup by path (`GET …/items/{parent}:/{name}`), as graph.md §1.5 and
§6.2 describe them:

- `@microsoft.graph.conflictBehavior` `fail` (409 `nameAlreadyExists`), `replace` (same id, new
  content), `rename` (`name 1.ext`); in the query string or the body;
- names OneDrive refuses (`" * : < > ? / \\ |`, control characters, `.`/`..`, leading or
  trailing spaces, over 255 characters) are a 400 naming `name`;
- simple upload up to 250 MB (413 beyond), no metadata: dates need a `PATCH`;
- the upload URL is on another origin (as `*.sharepoint.com` is to Graph), takes no bearer
  token (401 if one is sent), fragments in order with `Content-Range`, each a multiple of
  320 KiB but the last and under 60 MiB (400), an overlap or a gap is 416, `GET` gives
  `nextExpectedRanges`, `DELETE` cancels, a session expires `session_lifetime_seconds` after
  it was made or last took a fragment (each fragment extends it, as the uploadSession page
  says) and is then 404 on its URL, a name clash under `fail` is 409 at the commit (the last
  fragment);
- the upload byte budget per (app, drive owner): over `budget_bytes` within `budget_window`
  seconds a write is 429 with `Retry-After` (off unless a test sets it);
- `cut`: the next N fragments keep the first 320 KiB-aligned half and the connection drops.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.drive import Drive, DriveItem
from tests.graph_fake.errors import graph_error
from tests.graph_fake.gate import _abort_connection
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.mail import NotFound
from tests.graph_fake.onedrive import _drive, other_origin
from tests.graph_fake.state import FakeState

WRITE_FILES = ("Files.ReadWrite.All", "Sites.ReadWrite.All")
FRAGMENT_UNIT = 320 * 1024
MAX_FRAGMENT = 60 * 1024 * 1024
SIMPLE_MAX = 250 * 1000 * 1000
BEHAVIOURS = ("fail", "replace", "rename")
BEHAVIOUR_KEY = "@microsoft.graph.conflictBehavior"
BAD_NAME = re.compile(r'["*:<>?/\\|\x00-\x1f\x7f]')
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")
FILE_SYSTEM_KEYS = frozenset({"createdDateTime", "lastModifiedDateTime", "lastAccessedDateTime"})


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


@dataclass
class Session:
    drive_id: str
    parent_id: str
    name: str
    behaviour: str
    owner: tuple[str, str]  # (app, drive owner): the byte budget's key
    expires: datetime
    file_system: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    total: int | None = None


@dataclass
class Uploads:
    sessions: dict[str, Session] = field(default_factory=dict)
    session_lifetime_seconds: int = 3600
    budget_bytes: int | None = None
    budget_window: float = 300  # seconds; microsoft_limits sets SharePoint's, scaled by k
    spent: dict[tuple[str, str], deque[tuple[float, int]]] = field(default_factory=dict)
    cut: int = 0


UPLOADS: WeakKeyDictionary[FakeState, Uploads] = WeakKeyDictionary()


def uploads(state: FakeState) -> Uploads:
    with state.lock:
        return UPLOADS.setdefault(state, Uploads())


# -- names, parents, conflicts ------------------------------------------------------------


def check_name(name: str) -> str:
    if (
        not name
        or len(name) > 255
        or BAD_NAME.search(name)
        or name in (".", "..")
        or name != name.strip(" ")
    ):
        raise Refused(400, "invalidRequest", "The name of the item is not valid: 'name'.")
    return name


def _behaviour(value: object, default: str) -> str:
    if value is None:
        return default
    if value not in BEHAVIOURS:
        raise Refused(400, "invalidRequest", f"Invalid value for '{BEHAVIOUR_KEY}'.")
    return str(value)


def _parent(drive: Drive, parent_id: str) -> DriveItem:
    item = drive.root if parent_id == "root" else drive.items.get(parent_id)
    if item is None:
        raise Refused(404, "itemNotFound", "The resource could not be found.")
    if not item.is_folder:
        raise Refused(400, "invalidRequest", "The parent is not a folder.")
    return item


def _existing(drive: Drive, parent: DriveItem, name: str) -> DriveItem | None:
    lowered = name.lower()  # OneDrive names are case-insensitive
    return next((c for c in drive.children(parent.id) if c.name.lower() == lowered), None)


def _free_name(drive: Drive, parent: DriveItem, name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        stem, extension = name, ""
    number = 1
    while True:
        candidate = f"{stem} {number}" + (f".{extension}" if extension else "")
        if _existing(drive, parent, candidate) is None:
            return candidate
        number += 1


def _place_file(
    state: FakeState, drive: Drive, parent: DriveItem, name: str, behaviour: str, content: bytes
) -> tuple[DriveItem, int]:
    """Write a file under ``parent`` by the conflict behaviour; (item, 201 or 200)."""
    now = state.clock.now()
    existing = _existing(drive, parent, name)
    if existing is not None and behaviour == "fail":
        raise Refused(409, "nameAlreadyExists", "The specified item name already exists.")
    if existing is not None and behaviour == "replace":
        if existing.is_folder:
            raise Refused(409, "nameAlreadyExists", "A folder with this name already exists.")
        return drive.change(existing.id, now, content=content), 200
    if existing is not None:
        name = _free_name(drive, parent, name)
    return drive.add(name, now, content, parent), 201


def _dates(item: DriveItem, info: object) -> None:
    if info is None:
        return
    if not isinstance(info, dict) or not set(info) <= FILE_SYSTEM_KEYS:
        raise Refused(400, "invalidRequest", "Invalid 'fileSystemInfo'.")
    try:
        created = info.get("createdDateTime")
        modified = info.get("lastModifiedDateTime")
        if created is not None:
            item.client_created = datetime.fromisoformat(str(created))
        if modified is not None:
            item.client_modified = datetime.fromisoformat(str(modified))
    except ValueError as exc:
        raise Refused(400, "invalidRequest", "Invalid date in 'fileSystemInfo'.") from exc


# -- the upload byte budget ------------------------------------------------------------------


def _spend(state: FakeState, book: Uploads, owner: tuple[str, str], size: int) -> None:
    if book.budget_bytes is None:
        return
    now = state.clock.now().timestamp()
    spent = book.spent.setdefault(owner, deque())
    while spent and spent[0][0] <= now - book.budget_window:
        spent.popleft()
    used = sum(n for _, n in spent)
    if used + size > book.budget_bytes:
        wait = int(spent[0][0] + book.budget_window - now) + 1 if spent else book.budget_window
        raise Refused(
            429, "activityLimitReached", "The upload byte budget is spent.", retry_after=wait
        )
    spent.append((now, size))


# -- routes ----------------------------------------------------------------------------------


def _refused(exc: Refused | NotFound, state: FakeState) -> Response:
    if isinstance(exc, NotFound):
        return graph_error(404, exc.code, exc.message, state.clock.now())
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return graph_error(exc.status, exc.code, exc.message, state.clock.now(), headers)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, "invalidRequest", "The request body is not JSON.") from exc
    if not isinstance(body, dict):
        raise Refused(400, "invalidRequest", "The request body must be an object.")
    return body


def _item_json(state: FakeState, drive: Drive, item: DriveItem) -> dict[str, Any]:
    return item.to_json(drive)


@graph_route(*WRITE_FILES)
async def create_child(request: Request, caller: Caller) -> Response:
    """`POST /drives/{d}/items/{parent}/children` `{"name", "folder": {}}`."""
    state = fake_of(request)
    try:
        body = await _json_body(request)
        unknown = set(body) - {"name", "folder", BEHAVIOUR_KEY, "fileSystemInfo"}
        if unknown:
            raise Refused(400, "invalidRequest", f"Unknown property '{sorted(unknown)[0]}'.")
        if not isinstance(body.get("folder"), dict):
            raise Refused(400, "invalidRequest", "Only folders are created here: 'folder'.")
        name = check_name(body.get("name") if isinstance(body.get("name"), str) else "")
        behaviour = _behaviour(
            body.get(BEHAVIOUR_KEY, request.query_params.get(BEHAVIOUR_KEY)), "fail"
        )
        with state.lock:
            drive = _drive(state, caller, request.path_params["drive"])
            parent = _parent(drive, request.path_params["parent"])
            existing = _existing(drive, parent, name)
            if existing is not None and behaviour == "fail":
                raise Refused(409, "nameAlreadyExists", "The specified item name already exists.")
            if existing is not None and behaviour == "replace":
                drive.delete(existing.id)
            elif existing is not None:
                name = _free_name(drive, parent, name)
            folder = drive.add(name, state.clock.now(), None, parent)
            _dates(folder, body.get("fileSystemInfo"))
            answer = _item_json(state, drive, folder)
    except (Refused, NotFound) as exc:
        return _refused(exc, state)
    return JSONResponse(answer, status_code=201)


@graph_route(*WRITE_FILES)
async def by_path(request: Request, caller: Caller) -> Response:
    """`…/items/{parent}:/{name}` with `GET` (lookup), `:/content` `PUT` (simple upload),
    `:/createUploadSession` `POST`."""
    state = fake_of(request)
    rest: str = request.path_params["rest"]
    try:
        if request.method == "PUT" and rest.endswith(":/content"):
            return await _simple_upload(request, caller, check_name(rest[: -len(":/content")]))
        if request.method == "POST" and rest.endswith(":/createUploadSession"):
            name = check_name(rest[: -len(":/createUploadSession")])
            return await _create_session(request, caller, name)
        if request.method == "GET":
            return _lookup(request, caller, rest.removesuffix(":"))
        raise Refused(405, "invalidRequest", "The method is not allowed here.")
    except (Refused, NotFound) as exc:
        return _refused(exc, state)


def _lookup(request: Request, caller: Caller, name: str) -> Response:
    state = fake_of(request)
    with state.lock:
        drive = _drive(state, caller, request.path_params["drive"])
        parent = _parent(drive, request.path_params["parent"])
        found = _existing(drive, parent, name)
        if found is None:
            raise Refused(404, "itemNotFound", "The resource could not be found.")
        return JSONResponse(_item_json(state, drive, found))


async def _simple_upload(request: Request, caller: Caller, name: str) -> Response:
    state = fake_of(request)
    content = await request.body()
    if len(content) > SIMPLE_MAX:
        raise Refused(413, "requestTooLarge", "Simple upload is limited to 250 MB.")
    behaviour = _behaviour(request.query_params.get(BEHAVIOUR_KEY), "replace")
    with state.lock:
        drive = _drive(state, caller, request.path_params["drive"])
        parent = _parent(drive, request.path_params["parent"])
        _spend(state, uploads(state), (caller.client_id, drive.owner_id), len(content))
        item, status = _place_file(state, drive, parent, name, behaviour, content)
        answer = _item_json(state, drive, item)
    return JSONResponse(answer, status_code=status)


async def _create_session(request: Request, caller: Caller, name: str) -> Response:
    state = fake_of(request)
    body = await _json_body(request)
    unknown = set(body) - {"item", "deferCommit"}
    if unknown:
        raise Refused(400, "invalidRequest", f"Unknown property '{sorted(unknown)[0]}'.")
    if body.get("deferCommit"):
        raise Refused(400, "invalidRequest", "'deferCommit' is not supported here.")
    item = body.get("item", {})
    if not isinstance(item, dict) or not set(item) <= {BEHAVIOUR_KEY, "name", "fileSystemInfo"}:
        raise Refused(400, "invalidRequest", "Invalid 'item'.")
    if "name" in item and item["name"] != name:
        raise Refused(400, "invalidRequest", "The 'name' does not match the path.")
    behaviour = _behaviour(
        item.get(BEHAVIOUR_KEY, request.query_params.get(BEHAVIOUR_KEY)), "replace"
    )
    info = item.get("fileSystemInfo")
    if info is not None and (not isinstance(info, dict) or not set(info) <= FILE_SYSTEM_KEYS):
        raise Refused(400, "invalidRequest", "Invalid 'fileSystemInfo'.")
    book = uploads(state)
    with state.lock:
        drive = _drive(state, caller, request.path_params["drive"])
        parent = _parent(drive, request.path_params["parent"])
        expires = state.clock.now() + timedelta(seconds=book.session_lifetime_seconds)
        session_id = secrets.token_urlsafe(24)
        book.sessions[session_id] = Session(
            drive.id,
            parent.id,
            name,
            behaviour,
            (caller.client_id, drive.owner_id),
            expires,
            dict(info or {}),
        )
    return JSONResponse(
        {
            "uploadUrl": f"{other_origin(request)}/_upload/{session_id}",
            "expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "nextExpectedRanges": ["0-"],
        }
    )


@graph_route(*WRITE_FILES)
async def patch_item(request: Request, caller: Caller) -> Response:
    """`PATCH /drives/{d}/items/{i}` with `fileSystemInfo` (the dates a client keeps)."""
    state = fake_of(request)
    try:
        body = await _json_body(request)
        if set(body) - {"fileSystemInfo"} or "fileSystemInfo" not in body:
            raise Refused(400, "invalidRequest", "Only 'fileSystemInfo' may be changed here.")
        with state.lock:
            drive = _drive(state, caller, request.path_params["drive"])
            item = drive.items.get(request.path_params["item"])
            if item is None:
                raise Refused(404, "itemNotFound", "The resource could not be found.")
            _dates(item, body["fileSystemInfo"])
            answer = _item_json(state, drive, item)
    except (Refused, NotFound) as exc:
        return _refused(exc, state)
    return JSONResponse(answer)


# -- the upload host -------------------------------------------------------------------------


def _session(state: FakeState, session_id: str) -> Session:
    book = uploads(state)
    session = book.sessions.get(session_id)
    if session is None:
        raise Refused(404, "itemNotFound", "The upload session was not found.")
    if state.clock.now() >= session.expires:
        del book.sessions[session_id]
        raise Refused(404, "itemNotFound", "The upload session has expired.")
    return session


def _status(session: Session) -> dict[str, Any]:
    return {
        "expirationDateTime": session.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nextExpectedRanges": [f"{len(session.data)}-"],
    }


class _CutAnswer(Response):
    """No answer: the connection drops after part of a fragment was received."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        _abort_connection(receive)


async def upload_host(request: Request) -> Response:
    """The upload URL: `PUT` a fragment, `GET` the status, `DELETE` to cancel. No bearer."""
    state = fake_of(request)
    session_id = request.path_params["session"]
    try:
        if "authorization" in request.headers:
            raise Refused(401, "unauthenticated", "The upload URL takes no Authorization header.")
        with state.lock:
            session = _session(state, session_id)
            if request.method == "GET":
                return JSONResponse(_status(session))
            if request.method == "DELETE":
                del uploads(state).sessions[session_id]
                return Response(status_code=204)
        return await _fragment(request, state, session_id)
    except (Refused, NotFound) as exc:
        return _refused(exc, state)


async def _fragment(request: Request, state: FakeState, session_id: str) -> Response:
    content = await request.body()
    match = CONTENT_RANGE.match(request.headers.get("content-range", ""))
    if match is None:
        raise Refused(400, "invalidRequest", "A 'Content-Range: bytes a-b/total' is required.")
    first, last, total = (int(g) for g in match.groups())
    if last < first or last >= total or len(content) != last - first + 1:
        raise Refused(400, "invalidRequest", "The 'Content-Range' does not match the body.")
    if len(content) >= MAX_FRAGMENT:
        raise Refused(400, "invalidRequest", "A fragment must be smaller than 60 MiB.")
    if last != total - 1 and len(content) % FRAGMENT_UNIT:
        raise Refused(400, "invalidRequest", "A fragment must be a multiple of 320 KiB.")
    book = uploads(state)
    with state.lock:
        session = _session(state, session_id)
        if session.total is not None and session.total != total:
            raise Refused(400, "invalidRequest", "The total size changed.")
        expected = len(session.data)
        if first != expected:
            code = "fragmentOverlap" if first < expected else "fragmentOutOfOrder"
            answer = graph_error(
                416,
                "invalidRange",
                "The uploaded fragment is not the next expected one.",
                state.clock.now(),
                inner_code=code,
            )
            return answer
        drive = next((d for d in state.drives.values() if d.id == session.drive_id), None)
        if drive is None:
            raise Refused(404, "itemNotFound", "The drive is gone.")
        _spend(state, book, session.owner, len(content))
        session.total = total
        # "Each fragment uploaded during the session extends the expiration time" (uploadSession)
        session.expires = state.clock.now() + timedelta(seconds=book.session_lifetime_seconds)
        if book.cut > 0:
            book.cut -= 1
            kept = len(content) // 2 // FRAGMENT_UNIT * FRAGMENT_UNIT
            session.data += content[:kept]
            return _CutAnswer()
        session.data += content
        if len(session.data) < total:
            return JSONResponse(_status(session), status_code=202)
        return _commit(state, book, session_id, session, drive)


def _commit(
    state: FakeState, book: Uploads, session_id: str, session: Session, drive: Drive
) -> Response:
    """The last fragment: the file is written by the session's conflict behaviour."""
    parent = _parent(drive, session.parent_id)
    try:
        item, status = _place_file(
            state, drive, parent, session.name, session.behaviour, bytes(session.data)
        )
    finally:
        del book.sessions[session_id]
    _dates(item, session.file_system or None)
    return JSONResponse(_item_json(state, drive, item), status_code=status)
