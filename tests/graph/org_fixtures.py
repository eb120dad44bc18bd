"""Fixtures of the Office365 organization tests: the API (the app's test client, as the other API
tests use it) on a server whose Graph endpoints are the fake's, trusting the fake's CA through
``SSL_CERT_FILE``, and helpers to build a tenant, its application and the vendor's body."""

from __future__ import annotations

import base64
import sqlite3
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
from keepstone.services.context import Context
from keepstone.sources.graph.settings import GraphEndpoints
from tests.conftest import ADMIN_PASSWORD, BASE_URL, START, Api, login
from tests.graph_fake.credentials import make_app_certificate
from tests.graph_fake.server import FakeGraph
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


@pytest.fixture
def org_env(
    graph_fake: FakeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OrgEnv]:
    # The fake's clock at the real time: MSAL signs certificate assertions with the wall clock.
    graph_fake.reset(FakeState(clock=ManualClock(datetime.now(UTC).replace(microsecond=0))))
    monkeypatch.setenv("SSL_CERT_FILE", str(graph_fake.ca_pem))
    monkeypatch.setenv("KEEPSTONE_ADMIN_PASSWORD", ADMIN_PASSWORD)
    monkeypatch.delenv("KEEPSTONE_ADMIN_USER", raising=False)
    data_dir = tmp_path / "data"
    endpoints = GraphEndpoints(graph_fake.graph_url, graph_fake.login_url)
    ctx = open_context(data_dir, ManualClock(START), graph=endpoints)
    bootstrap(ctx, data_dir)
    with TestClient(create_app(ctx), base_url=BASE_URL) as client:
        yield OrgEnv(Api(client, login(client, "admin", ADMIN_PASSWORD)), ctx, data_dir, graph_fake)
    ctx.db.dispose()


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
