"""Creating messages: MIME (base64 `text/plain`) and JSON, with Exchange's draft rule.

- a MIME POST to `/users/{id}/messages` always makes a draft in Drafts (graph.md §0 #5);
  bad base64 is `400 ErrorMimeContentInvalidBase64String`;
- a JSON POST makes a draft unless it carries `PR_MESSAGE_FLAGS` (`Integer 0x0E07`) without
  the unsent bit (0x8); `SystemTime 0x0E06` sets the received time (Corso's recipe, §1.5);
- any request body over 4 MB is `413` (graph.md §0 #5).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.errors import graph_error
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.mail import NotFound, folder_of, mailbox_of, refusal_response
from tests.graph_fake.mailbox import Mailbox, MailFolder, Message
from tests.graph_fake.state import FakeState

MAX_BODY = 4 * 1024 * 1024
MESSAGE_FLAGS = "integer 0x0e07"
DELIVERY_TIME = "systemtime 0x0e06"
MSGFLAG_UNSENT = 0x8


class BadBody(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


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
        found[prop["id"].lower()] = str(prop.get("value", ""))
    return found


def _json_to_mime(body: dict[str, Any], when: datetime) -> bytes:
    """The MIME Exchange would render for a JSON message (headers and the one body part)."""
    mime = EmailMessage()
    mime["Subject"] = str(body.get("subject", ""))
    sender = body.get("from", {}).get("emailAddress", {}).get("address")
    if sender:
        mime["From"] = sender
    recipients = [
        r.get("emailAddress", {}).get("address", "") for r in body.get("toRecipients", [])
    ]
    if recipients:
        mime["To"] = ", ".join(recipients)
    mime["Date"] = format_datetime(when)
    content = body.get("body", {})
    subtype = "html" if str(content.get("contentType", "")).lower() == "html" else "plain"
    mime.set_content(str(content.get("content", "")), subtype=subtype)
    return mime.as_bytes()


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadBody(400, "RequestBodyRead", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise BadBody(400, "RequestBodyRead", "The request body must be a JSON object.")
    return body


def _create_from_json(
    state: FakeState, mailbox: Mailbox, folder: MailFolder, raw: bytes
) -> Message:
    body = _parse_json(raw)
    extended = _extended(body)
    now = state.clock.now()
    received = now
    if DELIVERY_TIME in extended:
        try:
            received = datetime.fromisoformat(extended[DELIVERY_TIME].replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadBody(
                400, "ErrorInvalidExtendedPropertyValue", "Bad SystemTime value."
            ) from exc
    is_draft = True
    if MESSAGE_FLAGS in extended:
        try:
            is_draft = bool(int(extended[MESSAGE_FLAGS]) & MSGFLAG_UNSENT)
        except ValueError as exc:
            raise BadBody(400, "ErrorInvalidExtendedPropertyValue", "Bad Integer value.") from exc
    message = mailbox.add_message(folder, _json_to_mime(body, received), received)
    message.is_draft = is_draft
    message.is_read = bool(body.get("isRead", False))
    return message


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
