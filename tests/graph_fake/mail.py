"""Mail routes: folders (top level, children, hidden ones on request, one by id or well-known
name), message delta, messages; the same under `/beta` for In-Place Archives, which only the
beta mail API reaches, addressed by the `inPlaceArchiveMailboxId` of
`/beta/users/{id}/settings/exchange`.

Each handler resolves the mailbox first: an unknown user is `ErrorInvalidUser`, a user without
a mailbox `MailboxNotEnabledForRESTAPI`, an unknown folder or message `ErrorItemNotFound`.
Message ids come in the form the request's `Prefer: IdType="ImmutableId"` asks for (mailbox.py).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.graph_fake import delta, paging
from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.directory import graph_base
from tests.graph_fake.errors import graph_error
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.mailbox import MESSAGE_PROPERTIES, Mailbox, MailFolder
from tests.graph_fake.query import BadQuery, parse_select, project, refuse_options
from tests.graph_fake.state import FakeState

READ_MAIL = ("Mail.Read", "Mail.ReadWrite", "Mail.ReadBasic.All")
MESSAGE_TYPE = "microsoft.graph.message"
FOLDER_PROPERTIES = frozenset(
    {
        "id",
        "displayName",
        "parentFolderId",
        "childFolderCount",
        "unreadItemCount",
        "totalItemCount",
        "isHidden",
    }
)
MAXPAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)
IMMUTABLE_ID = re.compile(r'IdType\s*=\s*"ImmutableId"', re.IGNORECASE)


class NotFound(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _archive_of(state: FakeState, key: str) -> Mailbox | None:
    """An In-Place Archive, or one of its auxiliary archives, by its mailbox id."""
    for mailbox in state.mailboxes.values():
        if mailbox.archive is None:
            continue
        if mailbox.archive_id == key:
            return mailbox.archive
        if key in mailbox.archive.auxiliaries:
            return mailbox.archive.auxiliaries[key]
    return None


class Redirect(Exception):
    """The folder or message lives in an auxiliary archive: 308 toward it."""

    def __init__(self, mailbox_id: str) -> None:
        super().__init__(mailbox_id)
        self.mailbox_id = mailbox_id


def redirect_response(request: Request, exc: Redirect) -> Response:
    """`308 Permanent Redirect`, no body, `Location` = the same request (path and query) on the
    auxiliary archive's mailbox id (the documented example keeps the folder id)."""
    url = str(request.url)
    head, _, rest = url.partition("/users/")
    tail = rest[rest.index("/") :] if "/" in rest else ""
    location = f"{head}/users/{quote(exc.mailbox_id, safe='')}{tail}"
    return Response(status_code=308, headers={"Location": location})


def expanded_check(mailbox: Mailbox, folder: MailFolder) -> None:
    if folder.id in mailbox.expanded:
        raise Redirect(mailbox.expanded[folder.id])


def mailbox_of(state: FakeState, caller: Caller, key: str) -> Mailbox:
    if key.startswith("MBX:") and (archive := _archive_of(state, key)) is not None:
        return archive
    user = state.tenants[caller.tenant_id].find_user(key)
    if user is None:
        raise NotFound("ErrorInvalidUser", f"The requested user '{key}' is invalid.")
    if user.id not in state.mailboxes:
        raise NotFound(
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    return state.mailboxes[user.id]


def folder_of(mailbox: Mailbox, key: str) -> MailFolder:
    folder = mailbox.folder(key)
    if folder is None:
        raise NotFound("ErrorItemNotFound", "The specified object was not found in the store.")
    return folder


def refusal_response(exc: Exception, state: FakeState) -> Response:
    if isinstance(exc, NotFound):
        return graph_error(404, exc.code, exc.message, state.clock.now())
    if isinstance(exc, BadQuery):
        return graph_error(400, exc.code, exc.message, state.clock.now())
    if isinstance(exc, delta.SyncStateNotFound):
        return graph_error(410, "SyncStateNotFound", str(exc), state.clock.now())
    if isinstance(exc, delta.SyncStateInvalid):
        return graph_error(400, "SyncStateInvalid", "The sync state is invalid.", state.clock.now())
    raise exc


def _folder_page(request: Request, caller: Caller, children_of: str | None) -> Response:
    state = fake_of(request)
    params = request.query_params
    try:
        refuse_options(params.keys(), {"$select", "$top", "$skiptoken"})
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            parent = folder_of(mailbox, children_of) if children_of else mailbox.root
            hidden = params.get("includeHiddenFolders", "").lower() == "true"
            folders = [f.to_json(mailbox) for f in mailbox.children(parent.id, hidden)]
        offset, top, frozen, raw = paging.page_of(state.token_key, params, 10, 1000)
        select = (
            frozen
            if "$skiptoken" in params
            else parse_select(raw, FOLDER_PROPERTIES, "microsoft.graph.mailFolder")
        )
    except paging.BadSkipToken:
        return graph_error(
            400, "ErrorInvalidUrlQuery", "The $skiptoken is invalid.", state.clock.now()
        )
    except (NotFound, BadQuery) as exc:
        return refusal_response(exc, state)
    if select is not None and "id" not in select:
        select = ["id", *select]
    link = str(request.url.replace(query=""))
    if hidden:
        link += "?includeHiddenFolders=true"
    body = paging.list_body(
        state.token_key,
        folders,
        offset,
        top,
        select,
        f"{graph_base(request)}/$metadata#users('{request.path_params['user']}')/mailFolders",
        link,
    )
    return JSONResponse(body)


@graph_route(*READ_MAIL)
async def list_folders(request: Request, caller: Caller) -> Response:
    return _folder_page(request, caller, None)


@graph_route(*READ_MAIL)
async def child_folders(request: Request, caller: Caller) -> Response:
    return _folder_page(request, caller, request.path_params["folder"])


def _page_size(request: Request) -> int:
    match = MAXPAGESIZE.search(request.headers.get("prefer", ""))
    if match is None:
        return delta.DEFAULT_PAGE_SIZE
    return max(1, min(int(match.group(1)), delta.MAX_PAGE_SIZE))


@graph_route(*READ_MAIL)
async def message_delta(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    params = request.query_params
    size = _page_size(request)
    try:
        refuse_options(params.keys(), {"$select", "$skiptoken", "$deltatoken"})
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            folder = folder_of(mailbox, request.path_params["folder"])
            expanded_check(mailbox, folder)
            if "$skiptoken" in params:
                position = delta.resume_page(state, mailbox, folder, params["$skiptoken"])
            elif "$deltatoken" in params:
                since, select = delta.resume_delta(state, mailbox, folder, params["$deltatoken"])
                position = delta.start_round(state, mailbox, folder, select, since)
            else:
                select = parse_select(params.get("$select"), MESSAGE_PROPERTIES, MESSAGE_TYPE)
                position = delta.start_round(state, mailbox, folder, select, None)
            link = str(request.url.replace(query=""))
            body = delta.page(state, mailbox, folder, position, size, link, _immutable(request))
    except (NotFound, BadQuery, delta.SyncStateNotFound, delta.SyncStateInvalid) as exc:
        return refusal_response(exc, state)
    except Redirect as exc:
        return redirect_response(request, exc)
    body = {"@odata.context": f"{graph_base(request)}/$metadata#Collection(message)"} | body
    headers = (
        {"Preference-Applied": f"odata.maxpagesize={size}"} if "prefer" in request.headers else {}
    )
    return JSONResponse(body, headers=headers)


def _immutable(request: Request) -> bool:
    return IMMUTABLE_ID.search(request.headers.get("prefer", "")) is not None


def _message(request: Request, caller: Caller) -> tuple[FakeState, Mailbox, str]:
    """The message the path names, by either id form; its immutable id."""
    state = fake_of(request)
    mailbox = mailbox_of(state, caller, request.path_params["user"])
    message = mailbox.find(request.path_params["message"])
    if message is None and (holder := mailbox.holder_of(request.path_params["message"])):
        raise Redirect(holder)
    if message is None:
        raise NotFound("ErrorItemNotFound", "The specified object was not found in the store.")
    return state, mailbox, message.id


@graph_route(*READ_MAIL)
async def get_message(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    try:
        refuse_options(request.query_params.keys(), {"$select"})
        with state.lock:
            _, mailbox, message_id = _message(request, caller)
            message = mailbox.messages[message_id]
            full = message.to_json() | {"id": message.id_for(_immutable(request))}
        select = parse_select(request.query_params.get("$select"), MESSAGE_PROPERTIES, MESSAGE_TYPE)
    except (NotFound, BadQuery) as exc:
        return refusal_response(exc, state)
    except Redirect as exc:
        return redirect_response(request, exc)
    if select is not None:
        full = {"@odata.etag": full["@odata.etag"]} | project(
            full, ["id", *[s for s in select if s != "id"]]
        )
    return JSONResponse(full)


@graph_route("Mail.Read", "Mail.ReadWrite")
async def message_mime(request: Request, caller: Caller) -> Response:
    """`$value`: the stored MIME, whole, as the doc example answers it (text/plain)."""
    state = fake_of(request)
    try:
        with state.lock:
            _, mailbox, message_id = _message(request, caller)
            mime = mailbox.messages[message_id].mime
    except NotFound as exc:
        return refusal_response(exc, state)
    except Redirect as exc:
        return redirect_response(request, exc)
    return Response(mime, media_type="text/plain")


@graph_route("MailboxSettings.Read", "MailboxSettings.ReadWrite")
async def mailbox_settings(request: Request, caller: Caller) -> Response:
    """`userPurpose` tells user from shared mailboxes; `archiveFolder` is the archive's id."""
    state = fake_of(request)
    try:
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            archive = folder_of(mailbox, "archive")
    except NotFound as exc:
        return refusal_response(exc, state)
    return JSONResponse(
        {
            "@odata.context": f"{graph_base(request)}/$metadata#users('{mailbox.owner_id}')/"
            "mailboxSettings",
            "archiveFolder": archive.id,
            "timeZone": "UTC",
            "userPurpose": mailbox.purpose,
        }
    )


@graph_route(*READ_MAIL)
async def get_folder(request: Request, caller: Caller) -> Response:
    """One folder by id or well-known name (how a client learns which folder is the Inbox)."""
    state = fake_of(request)
    try:
        refuse_options(request.query_params.keys(), {"$select"})
        select = parse_select(
            request.query_params.get("$select"), FOLDER_PROPERTIES, "microsoft.graph.mailFolder"
        )
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            found = folder_of(mailbox, request.path_params["folder"])
            expanded_check(mailbox, found)
            folder = found.to_json(mailbox)
    except (NotFound, BadQuery) as exc:
        return refusal_response(exc, state)
    except Redirect as exc:
        return redirect_response(request, exc)
    return JSONResponse(project(folder, None if select is None else ["id", *select]))


@graph_route("User.Read.All", "User.ReadWrite.All", "Directory.Read.All")
async def exchange_settings(request: Request, caller: Caller) -> Response:
    """beta `GET /users/{id}/settings/exchange`: the primary and In-Place Archive mailbox ids
    (the archive's is null when the user has none)."""
    state = fake_of(request)
    try:
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            tenant = caller.tenant_id
    except NotFound as exc:
        return refusal_response(exc, state)
    return JSONResponse(
        {
            "@odata.context": f"{graph_base(request)}/$metadata#users('{mailbox.owner_id}')/"
            "settings/exchange/$entity",
            "primaryMailboxId": f"MBX:{mailbox.owner_id.replace('-', '')}@{tenant}",
            "inPlaceArchiveMailboxId": mailbox.archive_id,
        }
    )
