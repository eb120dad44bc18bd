"""Message attachments: `GET …/messages/{id}/attachments` (their properties, `$select`
honoured), `POST …/messages/{id}/attachments` (a file attachment in one request under the 4 MB
cap) and large ones through `…/attachments/createUploadSession` (3 to 150 MB,
graph.md §1.5), uploaded to the session's URL on the Outlook upload host.

The upload host is another host name for the same server (`localhost` where Graph is
`127.0.0.1`), as Outlook's is another host than Graph's: it takes no Authorization header (a
request carrying one is refused), only the session's `authtoken`; fragments go in order, each
under 4 MB, with a `Content-Range` naming the size declared when the session was made.
"""

from __future__ import annotations

import json
import re
import secrets
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.directory import graph_base
from tests.graph_fake.errors import graph_error
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.mail import NotFound, mailbox_of, refusal_response
from tests.graph_fake.mail_create import MAX_BODY, BadBody, CreatedMessage, file_attachment
from tests.graph_fake.mailbox import Mailbox
from tests.graph_fake.query import BadQuery, parse_select, project, refuse_options
from tests.graph_fake.state import FakeState

MIN_SESSION = 3 * 1024 * 1024
MAX_SESSION = 150 * 1024 * 1024
MAX_FRAGMENT = 4 * 1024 * 1024
SESSION_LIFETIME = timedelta(hours=1)
CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+)$")


@dataclass
class UploadSession:
    mailbox: Mailbox
    message_id: str
    name: str
    size: int
    content_type: str
    is_inline: bool
    content_id: str | None
    token: str
    expires: datetime
    received: bytearray = field(default_factory=bytearray)


# Sessions per fake state (the state is swapped between tests; its sessions go with it).
_sessions: weakref.WeakKeyDictionary[FakeState, dict[str, UploadSession]] = (
    weakref.WeakKeyDictionary()
)


def sessions_of(state: FakeState) -> dict[str, UploadSession]:
    return _sessions.setdefault(state, {})


def _created(mailbox: Mailbox, message_id: str) -> CreatedMessage:
    message = mailbox.messages.get(message_id)
    if message is None:
        raise NotFound("ErrorItemNotFound", "The specified object was not found in the store.")
    if not isinstance(message, CreatedMessage):
        raise BadBody(
            400, "ErrorInvalidRequest", "The fake adds attachments to JSON-made messages only."
        )
    return message


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadBody(400, "RequestBodyRead", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise BadBody(400, "RequestBodyRead", "The request body must be a JSON object.")
    return body


def _attach(state: FakeState, mailbox: Mailbox, message: CreatedMessage, made: Any) -> None:
    message.attachments.append(made)
    message.render()
    mailbox.update_message(message.id, state.clock.now())


ATTACHMENT_PROPERTIES = ("id", "name", "contentType", "size", "isInline", "contentId")


def _attachment_select(request: Request) -> list[str] | None:
    params = request.query_params
    refuse_options(params.keys(), {"$select"})
    return parse_select(params.get("$select"), ATTACHMENT_PROPERTIES, "microsoft.graph.attachment")


@graph_route("Mail.Read", "Mail.ReadWrite")
async def list_attachments(request: Request, caller: Caller) -> Response:
    """`GET …/messages/{id}/attachments` (one page: a message holds few)."""
    state = fake_of(request)
    try:
        select = _attachment_select(request)
        with state.lock:
            message = _created(
                mailbox_of(state, caller, request.path_params["user"]),
                request.path_params["message"],
            )
            found = [project(a.to_json(), select) for a in message.attachments]
    except (NotFound, BadQuery) as exc:
        return refusal_response(exc, state)
    except BadBody as exc:
        return graph_error(exc.status, exc.code, exc.message, state.clock.now())
    return JSONResponse({"value": found})


@graph_route("Mail.ReadWrite")
async def add_attachment(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    raw = await request.body()
    try:
        if len(raw) > MAX_BODY:
            raise BadBody(413, "RequestEntityTooLarge", "The maximum request length is 4 MB.")
        body = _json(raw)
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            message = _created(mailbox, request.path_params["message"])
            made = file_attachment(body, f"att{len(message.attachments)}")
            _attach(state, mailbox, message, made)
    except NotFound as exc:
        return refusal_response(exc, state)
    except BadBody as exc:
        return graph_error(exc.status, exc.code, exc.message, state.clock.now())
    return JSONResponse(made.to_json(), status_code=201)


def _session_item(body: dict[str, Any]) -> dict[str, Any]:
    item = next((v for k, v in body.items() if k.lower() == "attachmentitem"), None)
    if not isinstance(item, dict):
        raise BadBody(400, "ErrorInvalidParameter", "The body needs an 'AttachmentItem'.")
    if item.get("attachmentType") != "file":
        raise BadBody(400, "ErrorInvalidParameter", "attachmentType must be 'file'.")
    if not isinstance(item.get("name"), str) or not item["name"]:
        raise BadBody(400, "ErrorInvalidParameter", "AttachmentItem needs a 'name'.")
    size = item.get("size")
    if not isinstance(size, int) or isinstance(size, bool):
        raise BadBody(400, "ErrorInvalidParameter", "AttachmentItem needs a 'size'.")
    if size < MIN_SESSION:
        raise BadBody(
            400,
            "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
            "Attachment size should not be less than 3 MB.",
        )
    if size > MAX_SESSION:
        raise BadBody(400, "ErrorAttachmentSizeTooLarge", "Attachment size exceeds 150 MB.")
    return item


def _upload_url(request: Request, session_id: str, token: str) -> str:
    host = "localhost" if request.url.hostname != "localhost" else "127.0.0.1"
    return f"https://{host}:{request.url.port}/_outlook/attachmentSessions/{session_id}?authtoken={token}"


@graph_route("Mail.ReadWrite")
async def create_upload_session(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    raw = await request.body()
    try:
        item = _session_item(_json(raw))
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            message = _created(mailbox, request.path_params["message"])
            session_id, token = secrets.token_urlsafe(16), secrets.token_urlsafe(24)
            expires = state.clock.now() + SESSION_LIFETIME
            sessions_of(state)[session_id] = UploadSession(
                mailbox,
                message.id,
                item["name"],
                item["size"],
                str(item.get("contentType") or "application/octet-stream"),
                bool(item.get("isInline", False)),
                item.get("contentId") if isinstance(item.get("contentId"), str) else None,
                token,
                expires,
            )
    except NotFound as exc:
        return refusal_response(exc, state)
    except BadBody as exc:
        return graph_error(exc.status, exc.code, exc.message, state.clock.now())
    answer = {
        "@odata.context": f"{graph_base(request)}/$metadata#microsoft.graph.uploadSession",
        "uploadUrl": _upload_url(request, session_id, token),
        "expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "nextExpectedRanges": ["0-"],
    }
    return JSONResponse(answer, status_code=201)


def _session(request: Request, state: FakeState) -> UploadSession:
    if "authorization" in request.headers:
        raise BadBody(
            401,
            "InvalidAuthenticationToken",
            "An upload URL is pre-authenticated: send no Authorization header.",
        )
    session = sessions_of(state).get(request.path_params["session"])
    token = request.query_params.get("authtoken", "")
    if session is None or not secrets.compare_digest(session.token, token):
        raise BadBody(404, "ErrorItemNotFound", "The upload session was not found.")
    if state.clock.now() >= session.expires:
        del sessions_of(state)[request.path_params["session"]]
        raise BadBody(404, "ErrorItemNotFound", "The upload session has expired.")
    return session


def _fragment(request: Request, session: UploadSession, data: bytes) -> tuple[int, int]:
    match = CONTENT_RANGE.match(request.headers.get("content-range", ""))
    if match is None:
        raise BadBody(400, "ErrorInvalidRequest", "Content-Range must be 'bytes a-b/total'.")
    start, end, total = (int(g) for g in match.groups())
    if total != session.size or end < start or end >= total:
        raise BadBody(400, "ErrorInvalidRequest", "Content-Range does not fit the session.")
    if len(data) != end - start + 1:
        raise BadBody(400, "ErrorInvalidRequest", "The body length differs from Content-Range.")
    if len(data) > MAX_FRAGMENT:
        raise BadBody(413, "RequestEntityTooLarge", "A fragment must be under 4 MB.")
    if start != len(session.received):
        raise BadBody(416, "ErrorInvalidRange", f"Expected the range {len(session.received)}-.")
    return start, end


async def upload_fragment(request: Request) -> Response:
    state = fake_of(request)
    data = await request.body()
    try:
        with state.lock:
            session = _session(request, state)
            _, end = _fragment(request, session, data)
            session.received += data
            if end + 1 < session.size:
                answer = {
                    "expirationDateTime": session.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "nextExpectedRanges": [f"{end + 1}-{session.size - 1}"],
                }
                return JSONResponse(answer)
            message = _created(session.mailbox, session.message_id)
            made = file_attachment(
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": session.name,
                    "contentType": session.content_type,
                    "contentBytes": "",
                    "isInline": session.is_inline,
                    "contentId": session.content_id,
                },
                f"att{len(message.attachments)}",
            )
            made.data = bytes(session.received)
            _attach(state, session.mailbox, message, made)
            del sessions_of(state)[request.path_params["session"]]
    except NotFound as exc:
        return refusal_response(exc, state)
    except BadBody as exc:
        return graph_error(exc.status, exc.code, exc.message, state.clock.now())
    location = (
        f"{str(request.base_url).rstrip('/')}/v1.0/users('{session.mailbox.owner_id}')/"
        f"messages('{message.id}')/attachments('{made.id}')"
    )
    return Response(status_code=201, headers={"Location": location})


async def cancel_upload(request: Request) -> Response:
    state = fake_of(request)
    try:
        with state.lock:
            _session(request, state)
            del sessions_of(state)[request.path_params["session"]]
    except BadBody as exc:
        return graph_error(exc.status, exc.code, exc.message, state.clock.now())
    return Response(status_code=204)
