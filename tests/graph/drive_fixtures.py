"""What the OneDrive tests share: a tenant with users and drives in the fake, a real GraphClient
trusting the fake's CA whose requests are counted, and the fake's view of a drive to compare a
backup or a restore with."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.domain.throttle import Backoff
from keepstone.engine import Item, Repository
from keepstone.proxy.backup import Backup
from keepstone.proxy.executor import Outcome, RunContext
from keepstone.proxy.worker import ProxyWorker
from keepstone.server import bootstrap, open_context
from keepstone.services import catalog, restore_points, vault
from keepstone.services.context import Context
from keepstone.sources.connector import Part, PreviousPoint, SkipHandler, SourceItem
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.auth import AppCredentials, MsalHttpClient, TokenSource
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.drive_backup import DriveBackup
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.graph.tls import graph_tls_context
from tests.conftest import ADMIN_PASSWORD, BASE_URL, START, Api, login
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


@dataclass
class DrivesOnly:
    """The smallest connector around DriveBackup: users with a drive and nothing else."""

    client: GraphClient
    graph_users: list[GraphUser]
    on_skip: SkipHandler
    previous: PreviousPoint = field(default_factory=PreviousPoint)
    backups: list[DriveBackup] = field(default_factory=list)

    def users(self) -> Sequence[GraphUser]:
        return self.graph_users

    def start(self, plan: Sequence[tuple[str, Sequence[Part]]], previous: PreviousPoint) -> None:
        self.previous = previous

    def items(self, user: str, part: Part) -> Iterator[SourceItem]:
        if part != "onedrive":
            return iter(())
        graph_user = next(u for u in self.graph_users if u.name == user)
        backup = DriveBackup(self.client, graph_user, self.previous.of_user(user), self.on_skip)
        self.backups.append(backup)
        return backup.items()

    def close(self) -> None:
        pass


@dataclass
class Runs:
    ctx: Context
    api: Api
    job: dict[str, Any]
    repo: dict[str, Any]
    tenancy: Tenancy
    users: list[GraphUser] = field(default_factory=list)
    last: DrivesOnly | None = None

    def run(self) -> dict[str, Any]:
        clock = self.ctx.clock
        assert isinstance(clock, ManualClock)
        clock.advance(timedelta(minutes=1))  # restore points in order
        local = next(p for p in catalog.list_proxies(self.ctx) if p.is_local)
        catalog.heartbeat(self.ctx, local.id)
        with self.tenancy.client() as client:

            def execute(run: RunContext) -> Outcome:
                def connect(on_skip: SkipHandler) -> DrivesOnly:
                    self.last = DrivesOnly(client, self.users, on_skip)
                    return self.last

                return Backup(run, connect).execute()

            proxy = ProxyWorker(self.ctx, local.id, execute, renew_every=0)
            started = self.api.post(f"/v2/Jobs/{self.job['id']}/Action", {"start": None})
            assert started.status_code == 200, started.text
            assert proxy.run_one()
        session: dict[str, Any] = self.api.get(f"/v2/Jobs/{self.job['id']}/JobSessions").json()[0]
        return session

    def log(self, session: dict[str, Any]) -> list[str]:
        items = self.api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()
        return [item["title"] for item in items]

    def repository(self) -> Repository:
        return vault.open_repository(self.ctx, self.repo["id"], self.repo["path"])

    def stored(self) -> dict[str, tuple[Item, bytes]]:
        repo = self.repository()
        mine = [s for s in repo.snapshots() if s.tags.get(restore_points.TAG_JOB) == self.job["id"]]
        last = mine[-1].id
        return {i.key: (i, b"".join(repo.read(i))) for i in repo.items(last)}

    def files(self, user: GraphUser) -> dict[str, tuple[str, bytes]]:
        """Stored files of ``user``: item id -> (path, bytes)."""
        return {
            item.meta["item_id"]: (item.path, content)
            for item, content in self.stored().values()
            if item.user == user.name and item.kind == "file"
        }

    @property
    def counts(self) -> Any:
        assert self.tenancy.transport is not None
        return self.tenancy.transport.counts


@dataclass
class Server:
    ctx: Context
    api: Api
    repo: dict[str, Any]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One Keepstone (catalog, repository, API) per module: its setup is the slow part."""
    data_dir = tmp_path_factory.mktemp("drive-backup") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEEPSTONE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        patch.delenv("KEEPSTONE_ADMIN_USER", raising=False)
        ctx = open_context(data_dir, ManualClock(START))
        bootstrap(ctx, data_dir)
    with TestClient(create_app(ctx), base_url=BASE_URL) as client:
        api = Api(client, login(client, "admin", ADMIN_PASSWORD))
        yield Server(ctx, api, api.get("/v2/BackupRepositories").json()[0])
    ctx.db.dispose()


@pytest.fixture
def runs(server: Server, tenancy: Tenancy, tmp_path: Path) -> Runs:
    """A job of its own (on a placeholder Local organization: the connector is the test's)."""
    api = server.api
    org = api.post(
        "/v2/Organizations",
        {"type": "Local", "name": tmp_path.name, "localSettings": {"path": str(tmp_path)}},
    )
    assert org.status_code == 200, org.text
    job = api.post(
        f"/v2/Organizations/{org.json()['id']}/Jobs",
        {
            "name": tmp_path.name,
            "backupType": "EntireOrganization",
            "repositoryId": server.repo["id"],
        },
    )
    assert job.status_code == 200, job.text
    return Runs(server.ctx, api, job.json(), server.repo, tenancy)


def add_user(runs: Runs, name: str) -> tuple[GraphUser, Drive]:
    user, drive = runs.tenancy.add_user(name)
    assert drive is not None
    user = GraphUser(user.name, user.graph_id, name, has_mailbox=False)
    runs.users.append(user)
    return user, drive


def fill(drive: Drive, runs: Runs, files: int) -> None:
    now = runs.tenancy.now()
    with runs.tenancy.fake.state.lock:
        docs = drive.add("Documents", now)
        deep = drive.add("Été 2024", now, parent=drive.add("Projects", now, parent=docs))
        for n in range(files):
            parent = (None, docs, deep)[n % 3]
            drive.add(f"file {n}.bin", now, bytes([n % 251]) * (n * 37 % 5000), parent)


def expected(drive: Drive) -> dict[str, tuple[str, bytes]]:
    return drive_files(drive)
