"""A real ``keepstone serve`` process with ``--graph-url``/``--login-url`` at the fake Graph and
its CA in ``SSL_CERT_FILE``: an Office365 organization created through the socket with a
certificate and its users listed; the secret nowhere but the vault file, nor in the server's
output."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from keepstone.clock import ManualClock
from tests.graph.org_fixtures import (
    DOMAIN,
    PFX_PASSWORD,
    catalog_bytes,
    org_body,
    pfx_of,
    tenant_with_users,
)
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import FakeState
from tests.process_helpers import ServerProcess, process_env, start_server

ADMIN = "serve-admin-password"


@pytest.fixture
def server(graph_fake: FakeGraph, tmp_path: Path) -> Iterator[ServerProcess]:
    graph_fake.reset(FakeState(clock=ManualClock(datetime.now(UTC).replace(microsecond=0))))
    env = process_env(
        tmp_path / "home", SSL_CERT_FILE=str(graph_fake.ca_pem), KEEPSTONE_ADMIN_PASSWORD=ADMIN
    )
    process = start_server(
        tmp_path / "logs",
        tmp_path / "data",
        "--graph-url",
        graph_fake.graph_url,
        "--login-url",
        graph_fake.login_url,
        env=env,
    )
    yield process
    process.stop()


def test_a_served_organization_with_a_certificate_lists_its_users(
    server: ServerProcess, graph_fake: FakeGraph
) -> None:
    tenant = tenant_with_users(graph_fake, 3)
    app = graph_fake.state.add_app(tenant)
    _, pfx = pfx_of(app)
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        token = http.post(
            "/v8/Token", data={"grant_type": "password", "username": "admin", "password": ADMIN}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        body = org_body(
            app, applicationCertificate=pfx, applicationCertificatePassword=PFX_PASSWORD
        )
        created = http.post("/v8/Organizations", json=body, headers=headers)
        assert created.status_code == 201, created.text
        org_id = created.json()["id"]
        users = http.get(f"/v8/Organizations/{org_id}/Users", headers=headers).json()
    assert sorted(u["name"] for u in users["results"]) == [f"user{n:03}@{DOMAIN}" for n in range(3)]
    assert graph_fake.state.tokens_issued >= 1  # the server logged in to the fake, over HTTPS
    data_dir = server.data_dir
    assert data_dir is not None
    for secret in (PFX_PASSWORD, pfx[:64]):
        assert secret.encode() not in catalog_bytes(data_dir)
        assert secret not in server.output
    assert PFX_PASSWORD.encode() in (data_dir / "secrets" / f"organization-{org_id}").read_bytes()
