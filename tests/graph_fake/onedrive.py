"""OneDrive routes: the user's drive, `root/delta`, items, `/content` (302) and the download host.

`@microsoft.graph.downloadUrl` points at `/_download/...` with a sealed `tempauth` that expires
by the fake's clock (1 h by default, settable); it needs no Authorization header, honours
`Range` (206, or 416 when unsatisfiable) and answers 401 once expired or when tampered with.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from weakref import WeakKeyDictionary

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from tests.graph_fake import paging
from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.drive import Drive
from tests.graph_fake.errors import graph_error
from tests.graph_fake.gate import _abort_connection
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.mail import NotFound, refusal_response
from tests.graph_fake.query import BadQuery, parse_top, refuse_options
from tests.graph_fake.sharepoint import APP_SCOPE_KEY
from tests.graph_fake.state import FakeState

READ_FILES = ("Files.Read.All", "Files.ReadWrite.All", "Sites.Read.All", "Sites.ReadWrite.All")
DOWNLOAD_URL = "@microsoft.graph.downloadUrl"
ITEM_PROPERTIES = frozenset(
    {
        "id",
        "name",
        "eTag",
        "cTag",
        "createdDateTime",
        "lastModifiedDateTime",
        "size",
        "parentReference",
        "root",
        "folder",
        "file",
        "deleted",
        "content.downloadUrl",
        "createdBy",
        "lastModifiedBy",
        "package",
        "shared",
        "malware",
        "fileSystemInfo",
        "webUrl",
    }
)
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class DownloadFaults:
    """Switches of the download host, each for its next N answers: a `tempauth` found expired
    (as when a long run reaches a URL issued over an hour ago), a body cut halfway (the
    connection dropped after the headers promised the whole file), a body with one byte flipped
    (what a quickXorHash check exists to catch)."""

    expire: int = 0  # download URLs given by delta, born expired
    truncate: int = 0
    corrupt: int = 0


DOWNLOAD_FAULTS: WeakKeyDictionary[FakeState, DownloadFaults] = WeakKeyDictionary()


def download_faults(state: FakeState) -> DownloadFaults:
    with state.lock:
        return DOWNLOAD_FAULTS.setdefault(state, DownloadFaults())


def _take(state: FakeState, switch: str) -> bool:
    with state.lock:
        faults = DOWNLOAD_FAULTS.get(state)
        if faults is None or getattr(faults, switch) <= 0:
            return False
        setattr(faults, switch, getattr(faults, switch) - 1)
        return True


class CutResponse(Response):
    """Headers for the whole body, half of it, then the connection dropped."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send(
            {
                "type": "http.response.body",
                "body": self.body[: len(self.body) // 2],
                "more_body": True,
            }
        )
        _abort_connection(receive)


# Rounds kept per drive: a client re-asking an old page of a long-gone round gets a 410.
KEPT_ROUNDS = 8


class ResyncRequired(Exception):
    """A delta or next link from before the drive's delta state was reset; the query options
    it froze (`$select`, `$top`) carry over into the fresh enumeration the 410 points at."""

    def __init__(self, select: list[str] | None, top: int) -> None:
        super().__init__("resync required")
        self.select, self.top = select, top


def _drive_by_owner(state: FakeState, caller: Caller, key: str) -> Drive:
    user = state.tenants[caller.tenant_id].find_user(key)
    if user is None:
        raise NotFound("Request_ResourceNotFound", f"Resource '{key}' does not exist.")
    if user.id not in state.drives:
        raise NotFound("ResourceNotFound", "User's mysite not found.")
    return state.drives[user.id]


def _drive(state: FakeState, caller: Caller, drive_id: str) -> Drive:
    tenant_users = state.tenants[caller.tenant_id].users
    drive = next((d for d in state.drives.values() if d.id == drive_id), None)
    if drive is None or drive.owner_id not in tenant_users:
        raise NotFound("itemNotFound", "The resource could not be found.")
    return drive


@graph_route(*READ_FILES)
async def user_drive(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    try:
        with state.lock:
            drive = _drive_by_owner(state, caller, request.path_params["user"])
            owner = state.tenants[caller.tenant_id].users[drive.owner_id]
            used = drive.folder_size(drive.root.id)
    except NotFound as exc:
        return refusal_response(exc, state)
    return JSONResponse(
        {
            "id": drive.id,
            "driveType": "business",
            "name": "OneDrive",
            "owner": {"user": {"id": owner.id, "displayName": owner.display_name}},
            "quota": {
                "total": 1 << 40,
                "used": used,
                "remaining": (1 << 40) - used,
                "state": "normal",
            },
        }
    )


def other_origin(request: Request) -> str:
    """The fake's own server under another host name: a client that sends its Graph token only
    to the Graph URL treats it as the separate host the real download and upload URLs are on
    (`*.sharepoint.com`, not `graph.microsoft.com`)."""
    url = request.base_url
    host = "localhost" if url.hostname != "localhost" else "127.0.0.1"
    return str(url.replace(hostname=host)).rstrip("/")


def download_url(
    state: FakeState, request: Request, drive: Drive, item_id: str, *, listed: bool = False
) -> str:
    expires = state.now_ts() + state.download_url_lifetime_seconds
    if listed and _take(state, "expire"):
        expires = state.now_ts()  # as if the run reached it after the URL's lifetime
    tempauth = paging.seal(
        state.token_key,
        {
            "kind": "tempauth",
            "drive": drive.id,
            "item": item_id,
            "exp": expires,
            # The app the URL was given to: its (app, tenant) resource units pay the download.
            "app": request.scope.get(APP_SCOPE_KEY, ""),
        },
    )
    return f"{other_origin(request)}/_download/{item_id}?" + urlencode({"tempauth": tempauth})


def _entry(
    state: FakeState,
    request: Request,
    drive: Drive,
    entry_id: str,
    select: list[str] | None,
    *,
    listed: bool = False,
) -> dict[str, Any]:
    if entry_id not in drive.items:
        return drive.tombstone_json(entry_id)
    item = drive.items[entry_id]
    full = item.to_json(drive)
    wants_url = select is None or "content.downloadUrl" in select
    if not item.is_folder and wants_url:
        full[DOWNLOAD_URL] = download_url(state, request, drive, item.id, listed=listed)
    if select is None:
        return full
    names = {"id", *select, DOWNLOAD_URL}
    return {k: v for k, v in full.items() if k in names}


def _parse_select(raw: str | None) -> list[str] | None:
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    for name in names:
        if name not in ITEM_PROPERTIES:
            raise BadQuery("invalidRequest", f"Invalid $select property '{name}'.")
    return names


def _start(state: FakeState, drive: Drive, params: Any) -> dict[str, Any]:
    """A round's first position: from nothing, from `token=latest`, or from a delta link."""
    token = params.get("token")
    if token is None or token == "latest":
        select = _parse_select(params.get("$select"))
        top = parse_top(params.get("$top"), 200, 1000)
        if token == "latest":
            ids: list[str] = []
        else:
            ids = sorted(drive.items, key=drive.depth)
        return _new_round(state, drive, ids, select, top)
    try:
        sealed = paging.unseal(state.token_key, token)
    except paging.BadSkipToken as exc:
        raise BadQuery("invalidRequest", "Invalid delta token.") from exc
    if sealed.get("drive") != drive.id or sealed.get("kind") not in ("page", "delta"):
        raise BadQuery("invalidRequest", "Invalid delta token.")
    if sealed.get("generation") != drive.generation:
        raise ResyncRequired(sealed.get("select"), int(sealed.get("top", 200)))
    if sealed["kind"] == "page":
        return sealed
    latest: dict[str, int] = {}
    for sequence, changed in drive.changes:
        if sequence > sealed["upto"]:
            latest[changed] = sequence
    return _new_round(
        state, drive, sorted(latest, key=latest.__getitem__), sealed["select"], sealed["top"]
    )


def _new_round(
    state: FakeState, drive: Drive, ids: list[str], select: list[str] | None, top: int
) -> dict[str, Any]:
    mine = [r for r, (drive_id, _, _) in state.delta_rounds.items() if drive_id == drive.id]
    for old in mine[: max(0, len(mine) - KEPT_ROUNDS + 1)]:
        del state.delta_rounds[old]
    round_id = str(uuid.uuid4())
    state.delta_rounds[round_id] = (drive.id, 0, ids)
    return {
        "generation": drive.generation,
        "kind": "page",
        "drive": drive.id,
        "round": round_id,
        "offset": 0,
        "select": select,
        "top": top,
        "upto": drive.sequence,
    }


@graph_route(*READ_FILES)
async def drive_delta(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    params = request.query_params
    try:
        refuse_options(params.keys(), {"$select", "$top"})
        with state.lock:
            drive = _drive(state, caller, request.path_params["drive"])
            position = _start(state, drive, params)
            if position["round"] not in state.delta_rounds:
                raise ResyncRequired(position["select"], position["top"])
            if position["round"] in drive.resync_rounds and position["offset"] == 0:
                drive.resyncs_followed += 1
            ids = state.delta_rounds[position["round"]][2]
            offset, top = position["offset"], position["top"]
            value = [
                _entry(state, request, drive, i, position["select"], listed=True)
                for i in ids[offset : offset + top]
            ]
    except (NotFound, BadQuery) as exc:
        return refusal_response(exc, state)
    except ResyncRequired as exc:
        with state.lock:
            return _resync(request, state, drive, exc)
    link = str(request.url.replace(query=""))
    metadata = f"{str(request.base_url).rstrip('/')}/v1.0/$metadata"
    body: dict[str, Any] = {"@odata.context": f"{metadata}#Collection(driveItem)"}
    if offset + top < len(ids):
        token = paging.seal(state.token_key, position | {"offset": offset + top})
        body["@odata.nextLink"] = f"{link}?" + urlencode({"token": token})
    else:
        sealed = {
            "kind": "delta",
            "drive": drive.id,
            "generation": drive.generation,
            "upto": position["upto"],
            "select": position["select"],
            "top": top,
        }
        body["@odata.deltaLink"] = f"{link}?" + urlencode(
            {"token": paging.seal(state.token_key, sealed)}
        )
    body["value"] = value
    return JSONResponse(body)


def _resync(request: Request, state: FakeState, drive: Drive, exc: ResyncRequired) -> Response:
    """410 Gone with the drive's resync code and a `Location` holding "a new nextLink that
    starts a fresh delta enumeration from scratch" (driveItem delta doc): a new full round
    with the stale link's `$select` and `$top`, to be compared with local state by id."""
    ids = sorted(drive.items, key=drive.depth)
    position = _new_round(state, drive, ids, exc.select, exc.top)
    drive.resync_rounds.add(position["round"])
    link = str(request.url.replace(query=""))
    upload = drive.resync_code == "resyncChangesUploadDifferences"
    return graph_error(
        410,
        "resyncRequired",
        "Resync required. "
        + (
            "Upload any local items the service did not return."
            if upload
            else "Replace any local items with the server's version."
        ),
        state.clock.now(),
        {"Location": f"{link}?" + urlencode({"token": paging.seal(state.token_key, position)})},
        inner_code=drive.resync_code,
    )


@graph_route(*READ_FILES)
async def get_item(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    try:
        refuse_options(request.query_params.keys(), {"$select"})
        select = _parse_select(request.query_params.get("$select"))
        with state.lock:
            drive = _drive(state, caller, request.path_params["drive"])
            if request.path_params["item"] not in drive.items:
                raise NotFound("itemNotFound", "The resource could not be found.")
            body = _entry(state, request, drive, request.path_params["item"], select)
    except (NotFound, BadQuery) as exc:
        return refusal_response(exc, state)
    return JSONResponse(body)


@graph_route(*READ_FILES)
async def item_content(request: Request, caller: Caller) -> Response:
    """`/content` answers 302 to the pre-authenticated download URL (graph.md §1.4)."""
    state = fake_of(request)
    try:
        with state.lock:
            drive = _drive(state, caller, request.path_params["drive"])
            item = drive.items.get(request.path_params["item"])
            if item is None or item.is_folder:
                raise NotFound("itemNotFound", "The resource could not be found.")
            location = download_url(state, request, drive, item.id)
    except NotFound as exc:
        return refusal_response(exc, state)
    return RedirectResponse(location, status_code=302)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) for one satisfiable range, None for the whole file, "unsatisfiable"."""
    if header is None:
        return None
    match = RANGE.match(header.strip())
    if match is None or match.group(0) == "bytes=-":
        return None  # a form the server may ignore: it answers 200 with everything
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


async def download(request: Request) -> Response:
    """The download host: no bearer token, only the URL's `tempauth`."""
    state = fake_of(request)
    now = state.clock.now()
    try:
        sealed = paging.unseal(state.token_key, request.query_params.get("tempauth", ""))
    except (paging.BadSkipToken, ValueError):
        return graph_error(401, "unauthenticated", "Invalid tempauth token.", now)
    if sealed.get("kind") != "tempauth" or sealed.get("item") != request.path_params["item"]:
        return graph_error(401, "unauthenticated", "Invalid tempauth token.", now)
    if state.now_ts() >= int(sealed["exp"]):
        return graph_error(401, "unauthenticated", "The tempauth token has expired.", now)
    with state.lock:
        drive = next((d for d in state.drives.values() if d.id == sealed["drive"]), None)
        item = drive.items.get(sealed["item"]) if drive else None
        content = item.content if item else None
    if content is None:
        return graph_error(404, "itemNotFound", "The resource could not be found.", now)
    wanted = _byte_range(request.headers.get("range"), len(content))
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={"Content-Range": f"bytes */{len(content)}"})
    if content and _take(state, "corrupt"):
        content = bytes([content[0] ^ 0xFF]) + content[1:]
    answer = CutResponse if len(content) > 1 and _take(state, "truncate") else Response
    if wanted is None:
        return answer(
            content, media_type="application/octet-stream", headers={"Accept-Ranges": "bytes"}
        )
    assert isinstance(wanted, tuple)
    start, end = wanted
    return answer(
        content[start : end + 1],
        status_code=206,
        media_type="application/octet-stream",
        headers={"Content-Range": f"bytes {start}-{end}/{len(content)}", "Accept-Ranges": "bytes"},
    )
