"""Helpers for the mail backup and connector tests: a tenant in the fake with an application,
users with mailboxes, a Graph client whose time is the fake's clock (a Retry-After is waited for
by moving the clock, never by sleeping), a count of every request the client sends, and a
stand-in for the executor's carrying (``as_previous``) for the fast MailboxBackup tests."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import count
from typing import Any

import httpx
import pytest

from keepstone.clock import ManualClock
from keepstone.domain.throttle import Backoff
from keepstone.engine import Item
from keepstone.sources.connector import Skipped, SourceItem
from keepstone.sources.graph.access import GraphAccess, GraphUser
from keepstone.sources.graph.auth import AppCredentials, MsalHttpClient, TokenSource
from keepstone.sources.graph.client import CONNECTION_LIMITS, GraphClient
from keepstone.sources.graph.mail_backup import MailboxBackup, MailboxKind, is_carried
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.graph.tls import graph_tls_context
from tests.graph_fake.mailbox import Mailbox, MailFolder
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import RegisteredApp, Tenant

DOMAIN = "contoso.onmicrosoft.com"
SECRET = "s3cret-value"
_serial = count(1)


def mime(subject: str, size: int = 0) -> bytes:
    n = next(_serial)
    when = format_datetime(datetime(2026, 6, 1, 9, n % 60, tzinfo=UTC))
    return (
        f"From: Sender {n} <s{n}@example.test>\r\nTo: adele@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Date: {when}\r\nMessage-ID: <m{n}@example.test>\r\nMIME-Version: 1.0\r\n\r\n"
        f"Body {n}\r\n" + "x" * size + "\r\n"
    ).encode()


class Counted(httpx.BaseTransport):
    """The client's transport, counting what it sends: requests per path kind and the most
    requests in flight at once per mailbox (the user segment of the path)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.kinds: Counter[str] = Counter()
        self.per_user: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.most_in_flight: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        # Retry-After: per mailbox, the instant before which no request may be sent, and the
        # requests sent before it all the same (measured on the fake's clock)
        self.closed_until: dict[str, float] = {}
        self.premature = 0
        self.now: Callable[[], float] = lambda: 0.0
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        user = path.split("/users/")[1].split("/")[0] if "/users/" in path else ""
        with self.lock:
            self.kinds[_kind(path)] += 1
            self.per_user[user] += 1
            self.in_flight[user] += 1
            self.most_in_flight[user] = max(self.most_in_flight[user], self.in_flight[user])
            self.premature += self.now() < self.closed_until.get(user, float("-inf"))
        try:
            response = self.inner.handle_request(request)
        finally:
            with self.lock:
                self.in_flight[user] -= 1
        retry_after = response.headers.get("Retry-After")
        with self.lock:
            self.statuses[response.status_code] += 1
            if retry_after is not None and response.status_code in (429, 503, 504):
                until = self.now() + float(retry_after)
                self.closed_until[user] = max(self.closed_until.get(user, until), until)
        return response

    def total(self) -> int:
        return sum(self.kinds.values())

    def reset(self) -> None:
        with self.lock:
            self.kinds.clear()
            self.per_user.clear()
            self.most_in_flight.clear()

    def close(self) -> None:
        self.inner.close()


def _kind(path: str) -> str:
    for suffix in ("/$value", "/messages/delta", "/childFolders", "/mailFolders", "/$batch"):
        if path.endswith(suffix):
            return suffix.strip("/")
    if "/settings/exchange" in path:
        return "settings"
    return "other"


@dataclass
class Org:
    """A tenant of the fake with one application and its Graph access."""

    fake: FakeGraph
    tenant: Tenant
    app: RegisteredApp
    access: GraphAccess
    counted: list[Counted] = field(default_factory=list)

    @property
    def clock(self) -> ManualClock:
        clock = self.fake.state.clock
        assert isinstance(clock, ManualClock)
        return clock

    def add_user(self, name: str, *, archive: bool = False) -> tuple[GraphUser, Mailbox]:
        state = self.fake.state
        user = state.add_user(self.tenant, name)
        mailbox = state.add_mailbox(user)
        if archive:
            with state.lock:
                mailbox.add_archive(self.tenant.id)
        graph_user = GraphUser(
            user.user_principal_name.lower(), user.id, name, has_archive=archive, has_onedrive=False
        )
        return graph_user, mailbox

    def add_messages(
        self, mailbox: Mailbox, folder: MailFolder | str, n: int, size: int = 0
    ) -> list[str]:
        state = self.fake.state
        with state.lock:
            target = mailbox.folder(folder) if isinstance(folder, str) else folder
            assert target is not None
            now = state.clock.now()
            return [
                mailbox.add_message(target, mime(f"{target.display_name} {i}", size), now).id
                for i in range(n)
            ]

    @contextmanager
    def client(self, **options: Any) -> Iterator[GraphClient]:
        """A client as GraphAccess makes one, with the fake's clock as its time."""
        tls = graph_tls_context({"SSL_CERT_FILE": str(self.fake.ca_pem)})
        endpoints = self.access.endpoints
        tokens = TokenSource(endpoints, self.access.credentials, MsalHttpClient(tls))
        counted = Counted(httpx.HTTPTransport(verify=tls, limits=CONNECTION_LIMITS))
        self.counted.append(counted)
        clock = self.clock
        counted.now = lambda: clock.now().timestamp()
        client = GraphClient(
            endpoints,
            tokens,
            tls=tls,
            clock=lambda: clock.now().timestamp(),
            sleep=lambda seconds: clock.advance(timedelta(seconds=seconds)),
            backoff=Backoff(base=0.5, cap=4.0, attempts=6),
            transport=counted,
            **options,
        )
        try:
            yield client
        finally:
            client.close()
            tokens.close()

    @property
    def requests(self) -> Counted:
        return self.counted[-1]


def make_org(fake: FakeGraph) -> Org:
    state = fake.state
    tenant = state.add_tenant(DOMAIN)
    app = state.add_app(tenant, secret=SECRET)
    access = GraphAccess(
        GraphEndpoints(fake.graph_url, fake.login_url),
        AppCredentials(DOMAIN, app.client_id, secret=SECRET),
    )
    return Org(fake, tenant, app, access)


@pytest.fixture
def org(graph_fake: FakeGraph) -> Org:
    return make_org(graph_fake)


# ----- MailboxBackup alone, with the executor's carrying imitated -----


@dataclass
class Run:
    items: list[SourceItem]
    skipped: list[Skipped]
    requests: int
    contents: dict[str, bytes]

    def mail(self) -> dict[str, SourceItem]:
        return {i.key: i for i in self.items if i.kind == "mail"}

    def folders(self) -> dict[str, SourceItem]:
        return {i.key: i for i in self.items if i.kind == "folder"}


def read_mailbox(
    org: Org,
    user: GraphUser,
    previous: list[Item],
    mailbox: MailboxKind = "primary",
    page_size: int = 500,
    fetchers: int = 4,
) -> Run:
    """One MailboxBackup pass; the content of every item given with content is read."""
    skipped: list[Skipped] = []
    with org.client() as client:
        backup = MailboxBackup(
            client, user, mailbox, previous, skipped.append, page_size=page_size, fetchers=fetchers
        )
        items = list(backup.items())
        requests = org.requests.total()
    contents = {}
    for item in items:
        if item.kind == "mail" and not is_carried(item):
            with item.open() as stream:
                contents[item.key] = stream.read()
    return Run(items, skipped, requests, contents)


def as_previous(run: Run) -> list[Item]:
    """The restore point the executor would write: a carried item keeps its stored content
    (here: nothing to keep, chunks are not modelled) and takes the new metadata."""
    return [
        Item(
            key=i.key,
            user=i.user,
            kind=i.kind,
            path=i.path,
            size=i.size,
            mtime=i.mtime,
            mode=i.mode,
            meta={**i.meta, "change_token": i.change_token},
        )
        for i in run.items
    ]
