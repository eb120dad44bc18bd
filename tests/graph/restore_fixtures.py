"""Helpers for the mail restore tests: a tenant in the fake, a Graph client that counts its
requests and sleeps on the fake's clock, backed-up-shaped items, and the semantic comparison of
two messages (graph.md §6.3 G9)."""

from __future__ import annotations

import hashlib
import io
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, BinaryIO

import httpx

from keepstone.clock import ManualClock
from keepstone.engine import Item
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.auth import AppCredentials, MsalHttpClient, TokenSource
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.mail_restore import put_back_mail
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.graph.tls import graph_tls_context
from keepstone.sources.targets import Outcome, Placement
from tests.graph_fake.mailbox import Mailbox, MailFolder, Message
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import RegisteredApp, Tenant

DOMAIN = "contoso.onmicrosoft.com"
SECRET = "s3cret"
WHEN = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)


class Counting(httpx.BaseTransport):
    """The client's transport, recording every request (method, path, had a token)."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.inner = httpx.HTTPTransport(verify=tls)
        self.seen: list[tuple[str, str, bool]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, request.url.path, "authorization" in request.headers))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def count(self, method: str, path_part: str = "") -> int:
        return sum(1 for m, p, _ in self.seen if m == method and path_part in p)


@dataclass
class Org:
    """A tenant with an app and users with mailboxes, in the fake."""

    fake: FakeGraph
    tenant: Tenant
    app: RegisteredApp
    users: dict[str, GraphUser] = field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)

    def add(self, name: str, mailbox: bool = True) -> GraphUser:
        user = self.fake.state.add_user(self.tenant, name)
        if mailbox:
            self.mailboxes[name] = self.fake.state.add_mailbox(user)
        graph_user = GraphUser(user.user_principal_name.lower(), user.id, has_mailbox=mailbox)
        self.users[name] = graph_user
        return graph_user

    @property
    def credentials(self) -> AppCredentials:
        return AppCredentials(DOMAIN, self.app.client_id, secret=SECRET)

    def advance(self, seconds: float) -> None:
        clock = self.fake.state.clock
        assert isinstance(clock, ManualClock)
        clock.advance(timedelta(seconds=seconds))


def new_org(fake: FakeGraph, *names: str) -> Org:
    tenant = fake.state.add_tenant(DOMAIN)
    org = Org(fake, tenant, fake.state.add_app(tenant, secret=SECRET))
    for name in names:
        org.add(name)
    return org


@dataclass
class Connected:
    client: GraphClient
    transport: Counting
    slept: list[float]


@contextmanager
def connect(org: Org) -> Iterator[Connected]:
    """A client on the fake whose sleeps move the fake's clock (no test waits for real)."""
    endpoints = GraphEndpoints(org.fake.graph_url, org.fake.login_url)
    tls = graph_tls_context({"SSL_CERT_FILE": str(org.fake.ca_pem)})
    tokens = TokenSource(endpoints, org.credentials, MsalHttpClient(tls))
    transport = Counting(tls)
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds
        org.advance(seconds)

    client = GraphClient(
        endpoints, tokens, tls, clock=lambda: now[0], sleep=sleep, transport=transport
    )
    try:
        yield Connected(client, transport, slept)
    finally:
        client.close()
        tokens.close()


def run(
    connected: Connected, org: Org, items: list[Item], contents: Contents, where: Placement
) -> list[Outcome]:
    """Put ``items`` back into ``where.user``'s mailbox, all outcomes gathered."""
    user = org.users[where.user]
    return list(put_back_mail(connected.client, user, items, contents, where))


# ----- backed-up-shaped items -----


def mime(
    n: int,
    *,
    attachments: tuple[tuple[str, bytes], ...] = (),
    html: bool = True,
    date: datetime = WHEN,
) -> bytes:
    message = EmailMessage()
    message["From"] = '"Alex W" <alex@example.com>'
    message["To"] = "adele@contoso.onmicrosoft.com, Bob <bob@example.com>"
    message["Cc"] = "carol@example.com"
    message["Subject"] = f"Report {n} — Grüße"
    message["Date"] = format_datetime(date)
    message["Message-ID"] = f"<m{n}.restore@example.com>"
    message["X-Mailer"] = "keepstone-test"
    message.set_content(f"plain body {n}\n")
    if html:
        message.add_alternative(f"<p>html body {n}</p>", subtype="html")
    for name, data in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


def graph_item(
    user: str,
    n: int,
    content: bytes,
    *,
    folder: tuple[str, ...] = ("Inbox",),
    role: str | None = "inbox",
    **meta: Any,
) -> Item:
    """A message as mail backup writes it (docs/repository-format.md, source `graph`)."""
    received = WHEN + timedelta(minutes=5)
    base = {
        "source": "graph",
        "mailbox": "primary",
        "graph_id": f"AAMk{n}",
        "folder_id": "AAMkfld",
        "folder_names": list(folder),
        "role": role,
        "message_id": f"<m{n}.restore@example.com>",
        "subject": f"Report {n}",
        "received": received.isoformat().replace("+00:00", "Z"),
        "sent": WHEN.isoformat().replace("+00:00", "Z"),
        "is_read": False,
        "is_draft": False,
        "flag_status": "notFlagged",
        "importance": "normal",
        "categories": [],
        "flags": "",
    } | meta
    return Item(
        key=f"{user}/graph-mail/primary/AAMk{n}",
        user=user,
        kind="mail",
        path="/".join(folder),
        size=len(content),
        mtime=received.timestamp(),
        mode=0o600,
        meta=base,
    )


class Contents:
    """The reader a restore is given: item key -> MIME bytes."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def add(self, item: Item, content: bytes) -> Item:
        self.data[item.key] = content
        return item

    def __call__(self, item: Item) -> BinaryIO:
        return io.BytesIO(self.data[item.key])


# ----- what landed -----


def semantic(raw: bytes) -> dict[str, Any]:
    """A message as G9 compares it: the headers that matter, decoded text, attachment hashes."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    headers = {
        name: sorted(a.addr_spec for a in message[name].addresses) if message[name] else []
        for name in ("From", "To", "Cc")
    }
    body = message.get_body(preferencelist=("html", "plain"))
    attachments = sorted(
        (
            part.get_filename() or "",
            hashlib.sha256(part.get_payload(decode=True) or b"").hexdigest(),
        )
        for part in message.iter_attachments()
    )
    return headers | {
        "Subject": str(message["Subject"]),
        "Date": message["Date"].datetime if message["Date"] else None,
        "Message-ID": str(message["Message-ID"]),
        "body": body.get_content().strip() if body is not None else "",
        "attachments": attachments,
    }


def tree(mailbox: Mailbox) -> dict[str, list[Message]]:
    """Messages by folder path (display names from the top)."""

    def path(folder: MailFolder) -> str:
        names = []
        while folder.id != mailbox.root.id:
            names.append(folder.display_name)
            folder = mailbox.folders[folder.parent_id]
        return "/".join(reversed(names))

    found: dict[str, list[Message]] = {}
    for message in mailbox.messages.values():
        found.setdefault(path(mailbox.folders[message.folder_id]), []).append(message)
    return found
