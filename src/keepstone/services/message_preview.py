"""A backed-up message as a person previews it: a few headers and the body as plain text.

A preview never carries the message's markup: an HTML-only body is reduced to its text here
(scripts, styles and the head dropped, tags removed, entities decoded), so what a page shows is
text it escapes, and no remote image, stylesheet or script of a mail can reach a browser. Only
the first ``PREVIEW_BYTES`` of a message are read; attachments are named, never shown.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from html.parser import HTMLParser

PREVIEW_BYTES = 1 << 20
PREVIEW_CHARS = 100_000  # of the body's text shown at most
_SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript", "svg"})
_BREAKS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table"})


@dataclass(frozen=True, slots=True)
class Preview:
    subject: str
    sender: str
    to: str
    date: str
    text: str
    attachments: tuple[str, ...]
    from_html: bool  # the text was taken out of an HTML body
    truncated: bool  # the message is longer than what was read, or its text than shown


class _Text(HTMLParser):
    """The text of an HTML document, as a reader would see it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag in _BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The text of ``markup`` with no tag left: runs of blanks and blank lines folded."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    text = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def preview(raw: bytes, truncated: bool = False) -> Preview:
    """The preview of a message's first bytes (``truncated``: there were more)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # the default policy's message class
    body = message.get_body(preferencelist=("plain", "html"))
    from_html = body is not None and body.get_content_type() == "text/html"
    text = _content(body) if body is not None else ""
    if from_html:
        text = html_text(text)
    shown = text[:PREVIEW_CHARS]
    names = tuple(
        str(part.get_filename() or part.get_content_type()) for part in message.iter_attachments()
    )
    return Preview(
        subject=_header(message, "subject"),
        sender=_header(message, "from"),
        to=_header(message, "to"),
        date=_header(message, "date"),
        text=shown,
        attachments=names,
        from_html=from_html,
        truncated=truncated or len(shown) < len(text),
    )


def _header(message: Message, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except (ValueError, TypeError, IndexError):  # a header the parser cannot make sense of
        return ""


def _content(part: Message) -> str:
    """A text part's content, decoded with its charset; undecodable bytes become U+FFFD."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        return content if isinstance(content, str) else ""
    except (LookupError, UnicodeError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
