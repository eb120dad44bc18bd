"""Shared fixtures: a real catalog (SQLite, and PostgreSQL started by the tests), an injected
clock, the app, logged-in clients.

Every test that uses a catalog (the ``ctx`` fixture, or ``catalog_url``) runs twice: on the data
directory's SQLite file and on a PostgreSQL database of its own (``[sqlite]``/``[postgresql]`` in
its id). A test about SQLite itself says so with ``@pytest.mark.sqlite_catalog``, one about
PostgreSQL alone with ``@pytest.mark.postgresql_catalog``.
``KEEPSTONE_TEST_CATALOGS=sqlite`` (or ``postgresql``) runs one kind only, for a quick local run.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from argon2 import PasswordHasher, Type
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import select

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from keepstone.server import DATABASE_FILE, bootstrap, open_context
from keepstone.services import auth, credential_cache
from keepstone.services.context import Context
from keepstone.store.db import Database, database_url
from keepstone.store.tables import Base
from tests import postgres_server
from tests.postgres_server import DatabasePool, PostgresServer

# structlog's default console form, with plain tracebacks: the default (rich) renders every
# frame's local variables, seconds per logged exception. (The server formats exceptions as text
# before rendering, so it never prints locals: tests/test_logs.py.)
_plain = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
structlog.configure(processors=[*structlog.get_config()["processors"][:-1], _plain])

ADMIN_PASSWORD = "correct horse battery"
READER_PASSWORD = "reader password"
BASE_URL = "https://backup.example.test:4443"
# Wednesday 10 June 2026, 10:00 UTC: a fixed "now" for every test unless it moves the clock.
START = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)

# Password hashing as the server does it (Argon2id), at the lowest cost argon2 allows. The
# production cost (RFC 9106 low memory: 64 MiB, 3 passes, 4 lanes) takes 0.1-0.7 s of CPU per hash
# and verification, and nearly every test hashes the administrator's password once (bootstrap) and
# verifies it once (login): that was the biggest single cost of the suite. Only what the cost
# itself buys is lost, and tests that need it say so with ``production_password_hashing``
# (``keepstone serve`` processes started by tests always use the production cost).
CHEAP_HASHER = PasswordHasher(
    time_cost=1, memory_cost=8, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
CHEAP_DUMMY_HASH = CHEAP_HASHER.hash("no such user")


@pytest.fixture(autouse=True)
def _cheap_password_hashing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.get_closest_marker("production_password_hashing") is None:
        monkeypatch.setattr(auth, "_hasher", CHEAP_HASHER)
        monkeypatch.setattr(auth, "_DUMMY_HASH", CHEAP_DUMMY_HASH)


@pytest.fixture(autouse=True)
def _credentials_remembered_for_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the catalog answered for a token is remembered until a revocation of this process
    forgets it (services/credential_cache.py), not for a second of real time: whether a request
    reads the catalog again must not depend on how loaded the machine is (tests count
    statements). Tests of the trust period set their own."""
    monkeypatch.setattr(credential_cache, "TRUST_SECONDS", 3600.0)


def finished_task(api: Api, path: str, deadline_s: float = 120) -> dict[str, Any]:
    """The JSON dialect's task at ``path`` once ``Finished`` (polled as a client does)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        task: dict[str, Any] = api.get(path).json()
        if task["state"] == "Finished":
            return task
        time.sleep(0.02)
    raise AssertionError(f"{path} did not finish within {deadline_s} s")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


CATALOG_KINDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each catalog-touching test once per catalog kind."""
    if "catalog_kind" not in metafunc.fixturenames:
        return
    wanted = os.environ.get("KEEPSTONE_TEST_CATALOGS", ",".join(CATALOG_KINDS)).split(",")
    if metafunc.definition.get_closest_marker("sqlite_catalog"):
        wanted = ["sqlite"]
    if metafunc.definition.get_closest_marker("postgresql_catalog"):
        wanted = ["postgresql"]  # about PostgreSQL's concurrency: SQLite has a single writer
    kinds = [kind for kind in CATALOG_KINDS if kind in wanted] or ["sqlite"]
    metafunc.parametrize("catalog_kind", kinds, scope="function")


# The files that take longest (real servers, proxies, leases running out, hypothesis), by their
# summed durations in a run of the whole suite (2026-12-05, `--durations=0`): collected first, so
# the workers start them first and the suite's last minutes are not one worker finishing a long
# file while the others idle. pytest-xdist hands out whole files in collection order only with
# `--no-loadscope-reorder` (scripts/test): by default it orders files by their number of tests.
LONGEST_FIRST = (
    "tests/test_server_process.py",
    "tests/api/test_fuzz_writes.py",
    "tests/contract/test_schemathesis.py",
    "tests/test_per_item_work.py",
    "tests/api/test_rbac.py",
    "tests/contract/test_served_reads.py",
    "tests/scheduler/test_dispatch.py",
    "tests/test_s3_repository.py",
    "tests/test_listings_work.py",
    "tests/test_admin_cli.py",
    "tests/test_remote_proxy_process.py",
    "tests/test_failure_matrix.py",
    "tests/test_console_browser.py",
    "tests/em/test_em_query_service.py",
    "tests/contract/test_em_contract.py",
    "tests/contract/test_conformance.py",
    "tests/domain/test_schedule.py",
    "tests/test_notifications.py",
    "tests/test_console.py",
    "tests/scheduler/test_execution.py",
    "tests/api/test_prefix_routing.py",
    "tests/em/test_em_collections.py",
    "tests/backup/test_confinement.py",
    "tests/api/test_credential_cache.py",
    "tests/test_s3_reports.py",
    "tests/api/test_versions.py",
    "tests/api/test_no_500.py",
    "tests/test_remote_proxy_link.py",
    "tests/api/test_job_validation.py",
    "tests/api/test_next_run.py",
    "tests/em/test_em_hostile_input.py",
    "tests/imap/test_backup.py",
    "tests/test_cluster_servers.py",
    "tests/graph/test_e2e_faults.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within each file, and of the rest, is kept


@pytest.fixture
def catalog_kind() -> str:
    return "sqlite"  # replaced by pytest_generate_tests' parameter


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """This worker's PostgreSQL cluster, started when a test first needs it."""
    with postgres_server.running() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_databases(postgres: PostgresServer) -> Iterator[DatabasePool]:
    """Databases migrated to the newest schema: copies of one migrated template."""
    template = postgres.create_database()
    db = Database(database_url(postgres.url(template)))
    db.migrate()
    db.dispose()
    pool = DatabasePool(postgres, template)
    yield pool
    pool.close()


@pytest.fixture
def catalog_url(catalog_kind: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The test's catalog as a SQLAlchemy URL, or None for the data directory's SQLite file."""
    if catalog_kind == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    pool: DatabasePool = request.getfixturevalue("postgres_databases")
    name = pool.take()
    yield database_url(server.url(name))
    pool.give_back(name)


@pytest.fixture(scope="session")
def migrated_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty catalog migrated to the newest schema, made once per session (per worker):
    running every migration costs ~0.1 s of CPU, and nearly every test opens a new catalog.
    The migrations themselves are tested in ``tests/store`` and by every server start."""
    data = tmp_path_factory.mktemp("migrated") / "data"
    open_context(data).db.dispose()
    return data / DATABASE_FILE


@pytest.fixture
def ctx(
    data_dir: Path,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    migrated_catalog: Path,
    catalog_url: str | None,
) -> Iterator[Context]:
    monkeypatch.setenv("KEEPSTONE_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.delenv("KEEPSTONE_ADMIN_USER", raising=False)
    # the CLI commands and servers a test starts on this data directory find its catalog
    if catalog_url is None:
        monkeypatch.delenv("KEEPSTONE_DATABASE", raising=False)
    else:
        monkeypatch.setenv("KEEPSTONE_DATABASE", catalog_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    if catalog_url is None and not (data_dir / DATABASE_FILE).exists():
        # a copy of a fresh catalog: open_context below finds it at the newest schema
        shutil.copyfile(migrated_catalog, data_dir / DATABASE_FILE)
    context = open_context(data_dir, clock, database=catalog_url)
    bootstrap(context, data_dir)
    yield context
    context.db.dispose()


def catalog_text(ctx: Context, data_dir: Path) -> str:
    """Everything the catalog holds, as text: the SQLite file and its WAL byte for byte, or every
    row of every table of the PostgreSQL database. For tests that a secret is never stored."""
    if ctx.db.dialect == "sqlite":
        files = sorted(data_dir.glob(f"{DATABASE_FILE}*"))
        return "".join(path.read_bytes().decode("latin-1") for path in files)
    with ctx.db.read() as s:
        tables = Base.metadata.sorted_tables
        return "\n".join(str(row) for table in tables for row in s.execute(select(table)))


@pytest.fixture
def worker(ctx: Context) -> ProxyWorker:
    """The local proxy, driven step by step by the test (``proxy.run_one()``)."""
    from keepstone.services import catalog

    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    catalog.heartbeat(ctx, local.id)
    return ProxyWorker(ctx, local.id)


class Api:
    """A client of the JSON dialect with a bearer token, speaking to the real app."""

    def __init__(self, client: TestClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return headers | (extra or {})

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.post(
            path, json=body, headers=self._headers(kw.pop("headers", None)), **kw
        )

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.client.put(
            path, json=body, headers=self._headers(kw.pop("headers", None)), **kw
        )

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def rows(self, path: str) -> list[Any]:
        """The items of a list, whether the version answers a bare array or a page."""
        response = self.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        found: list[Any] = body["results"] if isinstance(body, dict) else body
        return found


class LongLivedApi(Api):
    """An API client for tests that move the clock by days: it logs in again when its token
    expires, as a real client does with its refresh token."""

    def _send(self, method: str, path: str, **kw: Any) -> Any:
        response = getattr(super(), method)(path, **kw)
        if response.status_code == 401:
            self.token = login(self.client, "admin", ADMIN_PASSWORD)
            response = getattr(super(), method)(path, **kw)
        return response

    def get(self, path: str, **kw: Any) -> Any:
        return self._send("get", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self._send("post", path, body=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self._send("put", path, body=body, **kw)


def login(client: TestClient, user: str, password: str) -> str:
    response = client.post(
        "/v2/Token", data={"grant_type": "password", "username": user, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


class SharedApp:
    """One application per session (per worker) that each test's ``client`` gets with that test's
    own state. FastAPI builds an application's route table lazily, on its first requests: for the
    hundreds of versioned routes that is ~0.5-1 s of CPU, paid again by every test that made a
    new application. The routes and middleware that ``create_app`` builds are the same for every
    test; only ``app.state`` (the context, login guard, page sets...) differs, so each test still
    calls ``create_app(ctx)`` and the shared application adopts that new state whole."""

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    def adopt(self, fresh: FastAPI) -> FastAPI:
        if self.app is None:
            self.app = fresh
        self.app.state = fresh.state
        return self.app


@pytest.fixture(scope="session")
def shared_app() -> SharedApp:
    return SharedApp()


@pytest.fixture
def client(ctx: Context, shared_app: SharedApp) -> Iterator[TestClient]:
    with TestClient(shared_app.adopt(create_app(ctx)), base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client, login(client, "admin", ADMIN_PASSWORD))


@pytest.fixture
def reader(client: TestClient, ctx: Context) -> Api:
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    return Api(client, login(client, "reader", READER_PASSWORD))


@pytest.fixture
def org_dir(tmp_path: Path) -> Path:
    root = tmp_path / "org"
    (root / "alice" / "Mail").mkdir(parents=True)
    return root


@pytest.fixture
def org(api: Api, org_dir: Path) -> dict[str, Any]:
    response = api.post(
        "/v2/Organizations",
        {"type": "Local", "name": "example.test", "localSettings": {"path": str(org_dir)}},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def repo(api: Api) -> dict[str, Any]:
    repos = api.get("/v2/BackupRepositories").json()
    assert len(repos) == 1
    body: dict[str, Any] = repos[0]
    return body


@pytest.fixture
def job(api: Api, org: dict[str, Any], repo: dict[str, Any]) -> dict[str, Any]:
    response = api.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        {"name": "test_job", "backupType": "EntireOrganization", "repositoryId": repo["id"]},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# CI runs a fixed set of examples so a green build stays green; developers' runs explore new ones.
if os.environ.get("CI"):
    settings.register_profile("ci", derandomize=True, deadline=None)
    settings.load_profile("ci")
