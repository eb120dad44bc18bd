"""Fixtures of the Office365 organization tests: the API (the app's test client, as the other API
tests use it) on a server whose Graph endpoints are the fake's, trusting the fake's CA through
``SSL_CERT_FILE``, and helpers to build a tenant, its application and the vendor's body."""

from __future__ import annotations

import base64
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from fastapi.testclient import TestClient

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.server import bootstrap, open_context
from keepstone.services import catalog, m365_directory
from keepstone.services.context import Context
from keepstone.sources.graph.settings import GraphEndpoints
from tests.conftest import ADMIN_PASSWORD, BASE_URL, START, Api, login
from tests.graph_fake.credentials import make_app_certificate
from tests.graph_fake.groups import Group
from tests.graph_fake.server import FakeGraph, start_fake
from tests.graph_fake.sites import Site
from tests.graph_fake.state import FakeState, RegisteredApp, Tenant

DOMAIN = "contoso.onmicrosoft.com"
SECRET = "app-secret-Zq8~not-in-any-file"
PFX_PASSWORD = "pfx-pass-Kk3-not-in-any-file"


@dataclass
class OrgEnv:
    api: Api
    ctx: Context
    data_dir: Path
    fake: FakeGraph


@pytest.fixture(scope="session")
def _org_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGraph]:
    fake = start_fake(FakeState(), tmp_path_factory.mktemp("m365-org-fake-tls"))
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def _org_server(_org_fake: FakeGraph, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrgEnv]:
    """One fake, data directory and app for every organization test (a server starts in
    seconds; the tests do not): each test starts with no organization and a fresh fake."""
    data_dir = tmp_path_factory.mktemp("m365-org") / "data"
    with pytest.MonkeyPatch.context() as patch:
        # SSL_CERT_FILE is set per test (org_env): set here it would outlive this module and
        # make every later test's Graph client trust this fake's CA instead of its own.
        patch.setenv("KEEPSTONE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        patch.delenv("KEEPSTONE_ADMIN_USER", raising=False)
        endpoints = GraphEndpoints(_org_fake.graph_url, _org_fake.login_url)
        ctx = open_context(data_dir, ManualClock(START), graph=endpoints)
        bootstrap(ctx, data_dir)
        with TestClient(create_app(ctx), base_url=BASE_URL) as client:
            api = Api(client, login(client, "admin", ADMIN_PASSWORD))
            yield OrgEnv(api, ctx, data_dir, _org_fake)
        ctx.db.dispose()


@pytest.fixture
def org_env(_org_server: OrgEnv, monkeypatch: pytest.MonkeyPatch) -> OrgEnv:
    """The module's server with no organization, and a fresh fake whose clock is the wall
    clock's (MSAL signs certificate assertions with it)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(_org_server.fake.ca_pem))
    m365_directory.SYNCS.wait(30)
    for org in catalog.list_organizations(_org_server.ctx):
        catalog.delete_organization(_org_server.ctx, org.id)
    _org_server.fake.reset(FakeState(clock=ManualClock(datetime.now(UTC).replace(microsecond=0))))
    return _org_server


def tenant_with_users(fake: FakeGraph, count: int, domain: str = DOMAIN) -> Tenant:
    tenant = fake.state.add_tenant(domain)
    for n in range(count):
        user = fake.state.add_user(tenant, f"user{n:03}", f"User {n:03}")
        fake.state.add_mailbox(user)
        fake.state.add_drive(user)
    return tenant


def pfx_of(app: RegisteredApp | None = None, password: str = PFX_PASSWORD) -> tuple[Any, str]:
    """A new certificate (registered on ``app`` if given) and its base64 PFX."""
    key, certificate = make_app_certificate()
    if app is not None:
        app.certificates.append(certificate)
    data = pkcs12.serialize_key_and_certificates(
        b"app", key, certificate, None, serialization.BestAvailableEncryption(password.encode())
    )
    return certificate, base64.b64encode(data).decode()


def settings(app: RegisteredApp, domain: str = DOMAIN, **credential: Any) -> dict[str, Any]:
    return {
        "useApplicationOnlyAuth": True,
        "officeOrganizationName": domain,
        "applicationId": app.client_id,
    } | (credential or {"applicationSecret": SECRET})


def org_body(app: RegisteredApp, domain: str = DOMAIN, **credential: Any) -> dict[str, Any]:
    return {
        "type": "Office365",
        "region": "Worldwide",
        "isExchangeOnline": True,
        "isSharePointOnline": True,
        "exchangeOnlineSettings": settings(app, domain, **credential),
        "sharePointOnlineSettings": settings(app, domain, **credential),
    }


def catalog_bytes(data_dir: Path) -> bytes:
    """The catalog database, its WAL and shared memory, after a checkpoint attempt."""
    found = b""
    for path in sorted(data_dir.glob("*.db*")) + sorted(data_dir.glob("*.sqlite*")):
        found += path.read_bytes()
    return found


def sqlite_text(data_dir: Path) -> str:
    """Every text value of every table, as SQLite hands it out."""
    path = next(data_dir.glob("*.db"), None) or next(data_dir.glob("*.sqlite"))
    connection = sqlite3.connect(path)
    try:
        texts = []
        for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                texts.extend(str(v) for v in row if v is not None)
        return "\n".join(texts)
    finally:
        connection.close()


def populate_directory(fake: FakeGraph, tenant: Tenant) -> None:
    """Groups (a Team, a security group nesting it, a distribution list), members, and sites
    (one personal) in ``tenant``, whose users ``tenant_with_users`` made."""
    users = list(tenant.users.values())
    team = Group(
        str(uuid.uuid4()),
        "Sales Team",
        "sales",
        f"sales@{tenant.domain}",
        "Selling things",
        group_types=["Unified"],
        mail_enabled=True,
        security_enabled=False,
        resource_provisioning_options=["Team"],
        members=[u.id for u in users[:2]],
    )
    security = Group(
        str(uuid.uuid4()),
        "All Staff",
        "staff",
        members=[users[0].id, team.id],
        on_premises_sync_enabled=True,
        on_premises_sid="S-1-5-21-1-2-3-1001",
    )
    dl = Group(
        str(uuid.uuid4()),
        "News",
        "news",
        f"news@{tenant.domain}",
        mail_enabled=True,
        security_enabled=False,
        members=[u.id for u in users],
    )
    with fake.state.lock:
        for group in (team, security, dl):
            tenant.groups[group.id] = group
        host = tenant.domain.split(".")[0] + ".sharepoint.com"
        tenant.sites.extend(
            [
                Site(host, "/", "Communication site"),
                Site(host, "/sites/sales", "Sales Team"),
                Site(host.replace(".", "-my.", 1), "/personal/user000", "user000", True),
            ]
        )
