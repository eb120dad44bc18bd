"""Creating messages: MIME (base64 `text/plain`) and JSON, with Exchange's draft rule; the
`internetMessageId` lookup a restore's collision check makes, and deleting a message.

- a MIME POST to `/users/{id}/messages` always makes a draft in Drafts (graph.md §0 #5);
  bad base64 is `400 ErrorMimeContentInvalidBase64String`;
- a JSON POST makes a draft unless it carries `PR_MESSAGE_FLAGS` (`Integer 0x0E07`) without
  the unsent bit (0x8); `SystemTime 0x0E06` sets the received time and `SystemTime 0x0039` the
  sent time (Corso's recipe, §1.5); the read bit of 0x0E07 or `isRead` marks it read;
- a property the message type does not have is a 400, custom headers must start with `x-` and
  are at most 5 (Graph's `InvalidInternetMessageHeader(Collection)`);
- inline `attachments` (file attachments with `contentBytes`) become MIME parts;
- any request body over 4 MB is `413` (graph.md §0 #5).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.directory import graph_base
from tests.graph_fake.errors import graph_error
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.mail import NotFound, folder_of, mailbox_of, refusal_response
from tests.graph_fake.mailbox import MESSAGE_PROPERTIES, Mailbox, MailFolder, Message
from tests.graph_fake.query import BadQuery, parse_select, project, refuse_options
from tests.graph_fake.state import FakeState

MAX_BODY = 4 * 1024 * 1024
MESSAGE_FLAGS = "integer 0x0e07"
DELIVERY_TIME = "systemtime 0x0e06"
SUBMIT_TIME = "systemtime 0x0039"
RENDERED_HEADERS = (("In-Reply-To", "string 0x1042"), ("References", "string 0x1039"))
TRANSPORT_HEADERS = "string 0x007d"
MSGFLAG_READ = 0x1
MSGFLAG_UNSENT = 0x8
MAX_CUSTOM_HEADERS = 5
# What a create may carry (message resource, writable or ignored); anything else is a 400.
MESSAGE_INPUT = frozenset(
    {
        "subject",
        "body",
        "from",
        "sender",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "internetMessageId",
        "internetMessageHeaders",
        "isRead",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
        "importance",
        "flag",
        "categories",
        "attachments",
        "singleValueExtendedProperties",
        "multiValueExtendedProperties",
        "inferenceClassification",
        "receivedDateTime",  # read-only: Exchange ignores it (hence 0x0E06)
        "sentDateTime",  # read-only: Exchange ignores it (hence 0x0039)
        "@odata.type",
    }
)
FLAG_STATUSES = ("notFlagged", "flagged", "complete")
IMPORTANCES = ("low", "normal", "high")
FILTER = re.compile(r"^\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*$")
# Graph's documented filter on an extended property's value (singlevaluelegacyextendedproperty)
PROPERTY_FILTER = re.compile(
    r"^\s*singleValueExtendedProperties/Any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'"
    r"\s+and\s+\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)\s*$"
)


class BadBody(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class FileAttachment:
    id: str
    name: str
    content_type: str
    data: bytes
    is_inline: bool = False
    content_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "id": self.id,
            "name": self.name,
            "contentType": self.content_type,
            "size": len(self.data),
            "isInline": self.is_inline,
            "contentId": self.content_id,
        }


@dataclass
class CreatedMessage(Message):
    """A message made from JSON: its MIME is rendered from what it was given, again whenever an
    attachment is added (Exchange renders MIME from the item's properties too)."""

    source: dict[str, Any] = field(default_factory=dict)
    sent: datetime | None = None
    importance: str = "normal"
    message_id: str = ""
    attachments: list[FileAttachment] = field(default_factory=list)

    @property
    def transport_headers(self) -> str:
        """PR_TRANSPORT_MESSAGE_HEADERS as the create set it ("" when it set none)."""
        return _extended(self.source).get(TRANSPORT_HEADERS, "")

    def render(self) -> None:
        self.mime = _render(self)

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        body["sentDateTime"] = (self.sent or self.received).strftime("%Y-%m-%dT%H:%M:%SZ")
        body["importance"] = self.importance
        body["hasAttachments"] = bool(self.attachments)
        return body


def _decode_mime(raw: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadBody(
            400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
        ) from exc


def _extended(body: dict[str, Any]) -> dict[str, str]:
    properties = body.get("singleValueExtendedProperties", [])
    if not isinstance(properties, list):
        raise BadBody(400, "RequestBodyRead", "singleValueExtendedProperties must be an array.")
    found: dict[str, str] = {}
    for prop in properties:
        if not isinstance(prop, dict) or not isinstance(prop.get("id"), str):
            raise BadBody(400, "RequestBodyRead", "An extended property needs an 'id'.")
        found[" ".join(prop["id"].lower().split())] = str(prop.get("value", ""))
    return found


def _system_time(extended: dict[str, str], key: str) -> datetime | None:
    if key not in extended:
        return None
    try:
        return datetime.fromisoformat(extended[key].replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadBody(400, "ErrorInvalidExtendedPropertyValue", "Bad SystemTime value.") from exc


def _address(value: Any, name: str) -> str:
    """`{"emailAddress": {"name", "address"}}` as a header value."""
    email = value.get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(email, dict) or not isinstance(email.get("address"), str):
        raise BadBody(400, "ErrorInvalidRecipients", f"A recipient in '{name}' has no address.")
    shown = email.get("name")
    return f'"{shown}" <{email["address"]}>' if shown else str(email["address"])


def _recipients(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list):
        raise BadBody(400, "RequestBodyRead", f"'{name}' must be an array.")
    return [_address(v, name) for v in value]


def _custom_headers(body: dict[str, Any]) -> list[tuple[str, str]]:
    headers = body.get("internetMessageHeaders", [])
    if not isinstance(headers, list):
        raise BadBody(400, "RequestBodyRead", "'internetMessageHeaders' must be an array.")
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise BadBody(
            400,
            "InvalidInternetMessageHeaderCollection",
            "Maximum number of headers in one message should be less than or equal to 5.",
        )
    found = []
    for header in headers:
        name = header.get("name") if isinstance(header, dict) else None
        if not isinstance(name, str) or not name.lower().startswith("x-"):
            raise BadBody(
                400,
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )
        found.append((name, str(header.get("value", ""))))
    return found


def _render(message: CreatedMessage) -> bytes:
    """The MIME Exchange would render for a JSON message: headers, body, attachments."""
    body = message.source
    mime = EmailMessage()
    mime["Subject"] = str(body.get("subject", ""))
    if body.get("from"):
        mime["From"] = _address(body["from"], "from")
    for header, name in (("To", "toRecipients"), ("Cc", "ccRecipients"), ("Bcc", "bccRecipients")):
        found = _recipients(body, name)
        if found:
            mime[header] = ", ".join(found)
    mime["Date"] = format_datetime(message.sent or message.received)
    mime["Message-ID"] = message.message_id
    extended = _extended(body)
    for header, key in RENDERED_HEADERS:
        if extended.get(key):
            mime[header] = extended[key]
    for name, value in _custom_headers(body):
        mime[name] = value
    if message.importance != "normal":
        mime["Importance"] = message.importance
    content = body.get("body") or {}
    subtype = "html" if str(content.get("contentType", "")).lower() == "html" else "plain"
    mime.set_content(str(content.get("content", "")), subtype=subtype)
    for attachment in message.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if maintype == "message" or not subtype:  # the fake keeps embedded items as bytes
            maintype, subtype = "application", "octet-stream"
        mime.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.name,
            disposition="inline" if attachment.is_inline else "attachment",
            cid=f"<{attachment.content_id}>" if attachment.content_id else None,
        )
    return mime.as_bytes()


def file_attachment(value: Any, new_id: str) -> FileAttachment:
    """An attachment from a create's `attachments` or a POST to `/attachments`."""
    if not isinstance(value, dict):
        raise BadBody(400, "RequestBodyRead", "An attachment must be a JSON object.")
    if value.get("@odata.type") != "#microsoft.graph.fileAttachment":
        raise BadBody(
            400, "ErrorInvalidAttachmentType", "Only file attachments can be created here."
        )
    name, raw = value.get("name"), value.get("contentBytes")
    if not isinstance(name, str) or not name:
        raise BadBody(400, "ErrorInvalidParameter", "An attachment needs a 'name'.")
    if not isinstance(raw, str):
        raise BadBody(400, "ErrorInvalidParameter", "A file attachment needs 'contentBytes'.")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadBody(400, "RequestBodyRead", "contentBytes is not base64.") from exc
    return FileAttachment(
        new_id,
        name,
        str(value.get("contentType") or "application/octet-stream"),
        data,
        bool(value.get("isInline", False)),
        value.get("contentId") if isinstance(value.get("contentId"), str) else None,
    )


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(name, default)
    if isinstance(value, dict):  # flag: {"flagStatus": ...}
        value = value.get("flagStatus", default)
    if value not in allowed:
        raise BadBody(400, "RequestBodyRead", f"'{value}' is not a valid value for '{name}'.")
    return str(value)


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadBody(400, "RequestBodyRead", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise BadBody(400, "RequestBodyRead", "The request body must be a JSON object.")
    for name in body:
        if name not in MESSAGE_INPUT:
            raise BadBody(
                400,
                "RequestBodyRead",
                f"The property '{name}' does not exist on type 'microsoft.graph.message'.",
            )
    return body


def _flags(extended: dict[str, str]) -> int | None:
    if MESSAGE_FLAGS not in extended:
        return None
    try:
        return int(extended[MESSAGE_FLAGS])
    except ValueError as exc:
        raise BadBody(400, "ErrorInvalidExtendedPropertyValue", "Bad Integer value.") from exc


def _create_from_json(
    state: FakeState, mailbox: Mailbox, folder: MailFolder, raw: bytes
) -> Message:
    body = _parse_json(raw)
    extended = _extended(body)
    received = _system_time(extended, DELIVERY_TIME) or state.clock.now()
    flags = _flags(extended)
    attachments = body.get("attachments", [])
    if not isinstance(attachments, list):
        raise BadBody(400, "RequestBodyRead", "'attachments' must be an array.")
    message_id = body.get("internetMessageId") or make_msgid(domain="fake.outlook.com")
    made = CreatedMessage(
        "",
        folder.id,
        b"",
        received,
        received,
        source=body,
        sent=_system_time(extended, SUBMIT_TIME),
        importance=_choice(body, "importance", IMPORTANCES, "normal"),
        message_id=str(message_id),
        attachments=[file_attachment(a, f"att{n}") for n, a in enumerate(attachments)],
    )
    made.render()  # refuses bad recipients or headers before anything is stored
    message = mailbox.add_message(folder, made.mime, received)
    made.id, made.change_key = message.id, message.change_key
    made.is_draft = flags is None or bool(flags & MSGFLAG_UNSENT)
    made.is_read = bool(body.get("isRead", False)) or bool((flags or 0) & MSGFLAG_READ)
    made.flag_status = _choice(body, "flag", FLAG_STATUSES, "notFlagged")
    categories = body.get("categories", [])
    made.categories = [str(c) for c in categories] if isinstance(categories, list) else []
    mailbox.messages[message.id] = made
    return made


async def _create(request: Request, caller: Caller, folder_key: str | None) -> Response:
    state = fake_of(request)
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if len(raw) > MAX_BODY:
            raise BadBody(413, "RequestEntityTooLarge", "The maximum request length is 4 MB.")
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            if content_type == "text/plain" and folder_key is None:
                drafts = folder_of(mailbox, "drafts")
                mime = _decode_mime(raw)
                message = mailbox.add_message(drafts, mime, state.clock.now())
                message.is_draft = True
            elif content_type == "application/json":
                folder = folder_of(mailbox, folder_key or "drafts")
                message = _create_from_json(state, mailbox, folder, raw)
            else:
                raise BadBody(
                    415,
                    "UnsupportedMediaType",
                    f"Content-Type '{content_type}' is not supported here.",
                )
            answer = message.to_json()
    except NotFound as exc:
        return refusal_response(exc, state)
    except BadBody as exc:
        return graph_error(exc.status, exc.code, exc.message, state.clock.now())
    return JSONResponse(answer, status_code=201)


@graph_route("Mail.ReadWrite")
async def create_message(request: Request, caller: Caller) -> Response:
    return await _create(request, caller, None)


@graph_route("Mail.ReadWrite")
async def create_in_folder(request: Request, caller: Caller) -> Response:
    return await _create(request, caller, request.path_params["folder"])


def _message_filter(raw: str | None) -> Callable[[Message], bool]:
    """`internetMessageId eq '...'` or `singleValueExtendedProperties/Any(ep: ep/id eq '...' and
    ep/value eq '...')` (quotes doubled inside); the fake supports no other filter here."""
    match = FILTER.match(raw or "")
    if match is not None:
        wanted = match.group(1).replace("''", "'")
        return lambda message: _internet_id(message) == wanted
    match = PROPERTY_FILTER.match(raw or "")
    if match is not None:
        key = " ".join(match.group(2).replace("''", "'").lower().split())
        value = match.group(3).replace("''", "'")
        return lambda message: (
            isinstance(message, CreatedMessage) and _extended(message.source).get(key) == value
        )
    raise BadQuery(
        "ErrorInvalidUrlQueryFilter",
        "The fake supports only $filter=internetMessageId eq '<id>' or an extended "
        "property's value here.",
    )


_ids: dict[str, tuple[int, str]] = {}  # message id -> (id of its MIME bytes, Message-ID)


def _internet_id(message: Message) -> str:
    """The Message-ID header, parsed once per MIME (a lookup must not re-parse the folder)."""
    if isinstance(message, CreatedMessage):
        return message.message_id
    cached = _ids.get(message.id)
    if cached is None or cached[0] != id(message.mime):
        headers = BytesHeaderParser(policy=policy.default).parsebytes(message.mime)
        cached = _ids[message.id] = (id(message.mime), str(headers.get("Message-ID", "")))
    return cached[1]


@graph_route("Mail.Read", "Mail.ReadWrite")
async def find_in_folder(request: Request, caller: Caller) -> Response:
    """`GET …/mailFolders/{id}/messages?$filter=internetMessageId eq '…'` (one page)."""
    state = fake_of(request)
    params = request.query_params
    try:
        refuse_options(params.keys(), {"$filter", "$select"})
        wanted = _message_filter(params.get("$filter"))
        select = parse_select(params.get("$select"), MESSAGE_PROPERTIES, "microsoft.graph.message")
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            folder = folder_of(mailbox, request.path_params["folder"])
            found = [
                project(m.to_json(), select)
                for m in mailbox.messages.values()
                if m.folder_id == folder.id and wanted(m)
            ]
    except (NotFound, BadQuery) as exc:
        return refusal_response(exc, state)
    context = f"{graph_base(request)}/$metadata#users('{request.path_params['user']}')/messages"
    return JSONResponse({"@odata.context": context, "value": found})


@graph_route("Mail.ReadWrite")
async def delete_message(request: Request, caller: Caller) -> Response:
    state = fake_of(request)
    try:
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            key = request.path_params["message"]
            if key not in mailbox.messages:
                raise NotFound(
                    "ErrorItemNotFound", "The specified object was not found in the store."
                )
            mailbox.delete_message(key)
    except NotFound as exc:
        return refusal_response(exc, state)
    return Response(status_code=204)
