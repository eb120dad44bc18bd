"""What the OneDrive tests share: a tenant with users and drives in the fake, a real GraphClient
trusting the fake's CA whose requests are counted, and the fake's view of a drive to compare a
backup or a restore with."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

from keepstone.clock import ManualClock
from keepstone.domain.throttle import Backoff
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.auth import AppCredentials, MsalHttpClient, TokenSource
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.graph.tls import graph_tls_context
from tests.graph_fake.drive import Drive, DriveItem
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import Tenant, User

DOMAIN = "contoso.onmicrosoft.com"
SECRET = "s3cret"


class CountingTransport(httpx.HTTPTransport):
    """Counts requests by (method, first path segments), so tests can count work."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counts: Counter[str] = Counter()
        self.headers: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        kind = (
            "download"
            if path.startswith("/_download/")
            else "upload"
            if path.startswith("/_upload/")
            else "graph"
        )
        with self._lock:
            self.counts[kind] += 1
            self.counts[f"{request.method} {kind}"] += 1
            self.headers.append((request.method, path, dict(request.headers)))
        return super().handle_request(request)

    def total(self) -> int:
        return self.counts["graph"] + self.counts["download"] + self.counts["upload"]

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.headers.clear()


@dataclass
class Tenancy:
    fake: FakeGraph
    tenant: Tenant
    credentials: AppCredentials
    transport: CountingTransport | None = None
    users: dict[str, User] = field(default_factory=dict)

    def add_user(self, name: str, *, drive: bool = True) -> tuple[GraphUser, Drive | None]:
        user = self.fake.state.add_user(self.tenant, name)
        self.users[name] = user
        made = self.fake.state.add_drive(user) if drive else None
        return GraphUser(user.user_principal_name.lower(), user.id, name), made

    @contextmanager
    def client(self) -> Iterator[GraphClient]:
        endpoints = GraphEndpoints(self.fake.graph_url, self.fake.login_url)
        tls = graph_tls_context({"SSL_CERT_FILE": str(self.fake.ca_pem)})
        token = TokenSource(endpoints, self.credentials, MsalHttpClient(tls))
        self.transport = CountingTransport(verify=tls)
        graph = GraphClient(
            endpoints,
            token,
            tls,
            transport=self.transport,
            backoff=Backoff(base=0.01, cap=0.05, attempts=6),
        )
        try:
            yield graph
        finally:  # open keep-alive connections would hold the fake's shutdown
            graph.close()
            token.close()

    def advance(self, seconds: float) -> None:
        clock = self.fake.state.clock
        assert isinstance(clock, ManualClock)
        clock.advance(timedelta(seconds=seconds))

    def now(self) -> Any:
        return self.fake.state.clock.now()


@pytest.fixture
def tenancy(graph_fake: FakeGraph) -> Tenancy:
    state = graph_fake.state
    tenant = state.add_tenant(DOMAIN)
    app = state.add_app(tenant, secret=SECRET)
    return Tenancy(graph_fake, tenant, AppCredentials(DOMAIN, app.client_id, secret=SECRET))


def drive_path(drive: Drive, item: DriveItem) -> str:
    """An item's path in the fake's drive (names as they are, joined by "/")."""
    names: list[str] = []
    current: DriveItem | None = item
    while current is not None and current.parent_id is not None:
        names.append(current.name)
        current = drive.items.get(current.parent_id)
    return "/".join(reversed(names))


def drive_files(drive: Drive) -> dict[str, tuple[str, bytes]]:
    """Every file of the fake's drive: id -> (path, bytes)."""
    return {
        i.id: (drive_path(drive, i), i.content) for i in drive.items.values() if not i.is_folder
    }
