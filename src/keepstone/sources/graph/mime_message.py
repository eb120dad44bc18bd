"""A backed-up message (its MIME and its state) as the JSON Graph creates a message from.

Graph's MIME create always makes a draft whose flags cannot be changed afterwards (graph.md §0
#5), so a restore creates messages from JSON, as Corso does (§1.5, §3.1): the MIME's headers and
body become the message's properties, its parts file attachments, and three MAPI properties that
Graph has no JSON property for are set as single-value extended properties on create (Exchange
reads them only then):

- ``Integer 0x0E07`` PR_MESSAGE_FLAGS without MSGFLAG_UNSENT (0x8): the message is not a draft.
  The value is MSGFLAG_READ (1) or 0. Corso sends 4 (MSGFLAG_SUBMIT); only the unsent bit
  decides the draft state, and the read bit agrees with ``isRead``. A backed-up draft gets no
  0x0E07 and stays a draft.
- ``SystemTime 0x0E06`` PR_MESSAGE_DELIVERY_TIME: ``receivedDateTime``.
- ``SystemTime 0x0039`` PR_CLIENT_SUBMIT_TIME: the Date header (else ``sentDateTime``), which
  Exchange renders back as the Date header.

Flag status, importance, categories and read state are JSON properties of the message (``flag``,
``importance``, ``categories``, ``isRead``), so 0x1090 (PR_FLAG_STATUS) is not needed.

Headers. From, To, Cc, Bcc, Reply-To, Subject and Message-ID are JSON properties; Date is
0x0039 above. The threading headers and the rest go in MAPI properties Exchange converts to and
from MIME headers (MS-OXCMAIL), set on create as well:

- ``String 0x1042`` PR_IN_REPLY_TO_ID: In-Reply-To;
- ``String 0x1039`` PR_INTERNET_REFERENCES: References;
- ``String 0x007D`` PR_TRANSPORT_MESSAGE_HEADERS: the original header block, whole (Received,
  Authentication-Results, List-*...), what Outlook shows as the message's headers and Graph as
  ``internetMessageHeaders``; a block over ``MAX_TRANSPORT_HEADERS`` is left out (never cut).

Custom ``X-`` headers also go in ``internetMessageHeaders`` (Graph takes at most 5, named
``x-…``). The MIME create would carry every header itself, but it always makes a draft in
Drafts whose flags cannot be changed (graph.md §0 #5), so JSON with these properties is the most
faithful create Graph offers (docs/security.md, "Mail restore fidelity").
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

MSGFLAG_READ = 0x1
MAX_CUSTOM_HEADERS = 5  # Graph's limit on internetMessageHeaders in one create
MAX_TRANSPORT_HEADERS = 64 * 1024  # a header block larger than this is not restored
IN_REPLY_TO = "String 0x1042"
REFERENCES = "String 0x1039"
TRANSPORT_HEADERS = "String 0x007D"
RESERVED_HEADERS = ("x-ms-exchange-", "x-microsoft-exchange-", "x-ms-has-attach")
FLAG_STATUSES = ("notFlagged", "flagged", "complete")
IMPORTANCES = ("low", "normal", "high")


@dataclass(frozen=True, slots=True)
class MailState:
    """What a message's MIME does not carry: read, flagged, draft, its dates and labels."""

    read: bool = False
    flag_status: str = "notFlagged"
    draft: bool = False
    received: datetime | None = None
    sent: datetime | None = None
    importance: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        """A ``fileAttachment`` carrying its bytes (for a create or ``POST …/attachments``)."""
        return self.header_json("#microsoft.graph.fileAttachment") | {
            "contentBytes": base64.b64encode(self.data).decode("ascii")
        }

    def header_json(self, odata_type: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "contentType": self.content_type}
        if odata_type:
            body["@odata.type"] = odata_type
        if self.inline:
            body["isInline"] = True
        if self.content_id:
            body["contentId"] = self.content_id
        return body

    @property
    def encoded_size(self) -> int:
        """Bytes it adds to a JSON request: base64 plus its properties (generously)."""
        return (len(self.data) + 2) // 3 * 4 + len(self.name) * 6 + 512


@dataclass
class GraphMessage:
    """The create body (without attachments) and the attachments to add."""

    body: dict[str, Any]
    attachments: list[Attachment] = field(default_factory=list)
    message_id: str = ""


def _utc(instant: datetime) -> str:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _addresses(message: EmailMessage, header: str) -> list[dict[str, Any]]:
    """A header's addresses as Graph recipients; an unparseable header gives none."""
    try:
        value = message[header]
        found = getattr(value, "addresses", ()) if value is not None else ()
    except (ValueError, TypeError, IndexError):
        return []
    recipients = []
    for address in found:
        if address.addr_spec and "@" in address.addr_spec:
            email: dict[str, str] = {"address": address.addr_spec}
            if address.display_name:
                email["name"] = address.display_name
            recipients.append({"emailAddress": email})
    return recipients


def _header_text(message: EmailMessage, header: str) -> str:
    try:
        value = message[header]
    except (ValueError, TypeError, IndexError):
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _custom_headers(message: EmailMessage) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for name in message:
        lowered = name.lower()
        if not lowered.startswith("x-") or lowered.startswith(RESERVED_HEADERS):
            continue
        value = _header_text(message, name)
        if value and len(found) < MAX_CUSTOM_HEADERS:
            found.append({"name": name, "value": value})
    return found


def _body(message: EmailMessage) -> tuple[dict[str, str], EmailMessage | None]:
    part = message.get_body(preferencelist=("html", "plain"))
    if part is None or not isinstance(part, EmailMessage):
        return {"contentType": "text", "content": ""}, None
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: the bytes as Latin-1 text
        payload = part.get_payload(decode=True)
        content = payload.decode("latin-1") if isinstance(payload, bytes) else ""
    kind = "html" if part.get_content_subtype() == "html" else "text"
    return {"contentType": kind, "content": str(content)}, part


def _is_attachment(part: EmailMessage, body: EmailMessage | None) -> bool:
    if part is body or part.is_multipart():
        return False
    if part.get_content_disposition() == "attachment" or part.get_filename():
        return True
    # a text part without a name is the body's alternative; anything else is content
    return part.get_content_maintype() != "text" or part.get("Content-ID") is not None


def _payload(part: EmailMessage) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload(0) if part.is_multipart() else part.get_payload()
        return inner.as_bytes() if hasattr(inner, "as_bytes") else str(inner).encode()
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _attachments(message: EmailMessage, body: EmailMessage | None) -> list[Attachment]:
    found = []
    for number, part in enumerate(p for p in message.walk() if isinstance(p, EmailMessage)):
        if not _is_attachment(part, body):
            continue
        content_type = part.get_content_type()
        name = part.get_filename() or (
            f"attachment-{number}{mimetypes.guess_extension(content_type) or '.bin'}"
        )
        cid = str(part.get("Content-ID") or "").strip().strip("<>") or None
        inline = part.get_content_disposition() == "inline" and cid is not None
        found.append(Attachment(name, content_type, _payload(part), inline, cid))
    return found


def _date_header(message: EmailMessage) -> datetime | None:
    try:
        return parsedate_to_datetime(_header_text(message, "Date"))
    except (TypeError, ValueError, IndexError):
        return None


def _extended(state: MailState, sent: datetime | None) -> list[dict[str, str]]:
    properties = []
    if not state.draft:
        flags = MSGFLAG_READ if state.read else 0
        properties.append({"id": "Integer 0x0E07", "value": str(flags)})
    if state.received is not None:
        properties.append({"id": "SystemTime 0x0E06", "value": _utc(state.received)})
    if sent is not None:
        properties.append({"id": "SystemTime 0x0039", "value": _utc(sent)})
    return properties


def _header_block(mime: bytes) -> str:
    """The message's own header block as text (up to the first empty line), or "" when it is
    too large to carry."""
    end = len(mime)
    for separator in (b"\r\n\r\n", b"\n\n"):
        found = mime.find(separator)
        if found != -1:
            end = min(end, found)
    if end > MAX_TRANSPORT_HEADERS:
        return ""
    text = mime[:end].decode("utf-8", "replace").replace("\r\n", "\n")
    return text.replace("\n", "\r\n") + "\r\n" if text.strip() else ""


def _threading(message: EmailMessage, mime: bytes) -> list[dict[str, str]]:
    properties = []
    for header, property_id in (("In-Reply-To", IN_REPLY_TO), ("References", REFERENCES)):
        value = _header_text(message, header)
        if value:
            properties.append({"id": property_id, "value": value})
    block = _header_block(mime)
    if block:
        properties.append({"id": TRANSPORT_HEADERS, "value": block})
    return properties


def to_graph(mime: bytes, state: MailState) -> GraphMessage:
    """The Graph create for a message; never raises on a malformed MIME (it restores what
    can be read)."""
    message = message_from_bytes(mime, policy=policy.default)
    assert isinstance(message, EmailMessage)
    content, body_part = _body(message)
    # the Date header is the submit time as the sender wrote it (Exchange derives sentDateTime
    # from it); the backed-up sentDateTime only stands in when the header is unreadable
    sent = _date_header(message) or state.sent
    body: dict[str, Any] = {"subject": _header_text(message, "Subject"), "body": content}
    senders = _addresses(message, "From")
    if senders:
        body["from"] = senders[0]
    for header, name in (
        ("To", "toRecipients"),
        ("Cc", "ccRecipients"),
        ("Bcc", "bccRecipients"),
        ("Reply-To", "replyTo"),
    ):
        recipients = _addresses(message, header)
        if recipients:
            body[name] = recipients
    message_id = _header_text(message, "Message-ID")
    if message_id:
        body["internetMessageId"] = message_id
    headers = _custom_headers(message)
    if headers:
        body["internetMessageHeaders"] = headers
    body["isRead"] = state.read
    body["flag"] = {"flagStatus": state.flag_status}
    if state.importance:
        body["importance"] = state.importance
    if state.categories:
        body["categories"] = list(state.categories)
    body["singleValueExtendedProperties"] = _extended(state, sent) + _threading(message, mime)
    return GraphMessage(body, _attachments(message, body_part), message_id)
