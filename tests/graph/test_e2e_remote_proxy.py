"""An Office365 organization backed up by a remote proxy: a real ``keepstone serve`` pointed at
the fake Graph, a real ``keepstone proxy`` (trusting the fake's CA) to which the server sends the
application's credentials in the work package; the proxy reads the tenant through Graph itself and
the mailbox is saved back byte for byte; a hostile folder name is quoted in the proxy's warning."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from keepstone.clock import SystemClock
from tests.conftest import ADMIN_PASSWORD
from tests.graph.fake_mail import mime_of
from tests.graph.org_fixtures import SECRET, org_body
from tests.graph.test_e2e_org import back_up_and_save, edge_tenant, run_org_job
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import Tenant
from tests.process_helpers import process_env, start_server
from tests.proxy_process import registration_token, start_proxy


@dataclass
class FarOrganization:
    http: httpx.Client  # the server's API, logged in as the administrator
    org_id: str
    repository_id: str  # a repository of the remote proxy "far-1"
    output: list[str]  # the server's and the proxy's output, once they stopped


@contextmanager
def far_organization(
    graph_fake: FakeGraph, tenant: Tenant, tmp_path: Path
) -> Iterator[FarOrganization]:
    """``tenant``'s organization on a real server whose remote proxy "far-1" holds the
    repository; both processes are stopped on the way out."""
    app = graph_fake.state.add_app(tenant, secret=SECRET)
    graph_fake.state.clock = SystemClock()  # MSAL, the server and the proxy read real time
    trust = str(graph_fake.ca_pem)
    env = process_env(KEEPSTONE_ADMIN_PASSWORD=ADMIN_PASSWORD, SSL_CERT_FILE=trust)
    urls = ("--graph-url", graph_fake.graph_url, "--login-url", graph_fake.login_url)
    server = start_server(tmp_path / "logs", tmp_path / "data", *urls, env=env)
    output: list[str] = []
    try:
        token = registration_token(tmp_path / "data", env)
        proxy = start_proxy(
            tmp_path / "logs",
            server.base_url,
            "far-1",
            token,
            tmp_path / "state",
            env=process_env(SSL_CERT_FILE=trust),
        )
        try:
            with httpx.Client(base_url=server.base_url, timeout=60) as http:
                login = {"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD}
                bearer = http.post("/v8/Token", data=login).json()["access_token"]
                http.headers["Authorization"] = f"Bearer {bearer}"
                created = http.post("/v8/Organizations", json=org_body(app))
                assert created.status_code == 201, created.text
                proxies = http.get("/v8/Proxies").json()["results"]
                far = next(p for p in proxies if p["hostName"] == "far-1")
                repository = http.post(
                    "/v8/BackupRepositories",
                    json={"name": "far", "path": str(tmp_path / "far"), "proxyId": far["id"]},
                )
                assert repository.status_code == 201, repository.text
                yield FarOrganization(http, created.json()["id"], repository.json()["id"], output)
        finally:
            proxy.stop()
            output.append(proxy.output)
    finally:
        server.stop()
        output.append(server.output)


def test_a_remote_proxy_backs_up_an_office365_organization(
    graph_fake: FakeGraph, tmp_path: Path
) -> None:
    tenant = edge_tenant(graph_fake)
    with far_organization(graph_fake, tenant, tmp_path) as far:
        saved = back_up_and_save(far.http, far.org_id, far.repository_id)
        sessions = far.http.get("/v8/JobSessions").json()["results"]
        logs = far.http.get(f"/v2/JobSessions/{sessions[0]['id']}/LogItems").json()
        assert any("on proxy far-1" in item["title"] for item in logs), logs
    assert len(far.output) == 2 and all(SECRET not in said for said in far.output)
    with graph_fake.state.lock:
        adele = next(u for u in tenant.users.values() if u.user_principal_name.startswith("ad"))
        held = sorted(m.mime for m in graph_fake.state.mailboxes[adele.id].messages.values())
    assert saved == held


def test_a_remote_proxy_quotes_a_hostile_folder_name_in_its_warning(
    graph_fake: FakeGraph, tmp_path: Path
) -> None:
    """A mail folder named with NUL whose read Graph refuses is one warning on a remote proxy
    too, the name quoted with U+FFFD as the built-in proxy quotes it (before ``names.display``
    replaced NUL, the proxy sent it and the server's SQLite catalog kept it)."""
    tenant = edge_tenant(graph_fake)
    adele = next(u for u in tenant.users.values() if u.user_principal_name.startswith("ad"))
    mailbox = graph_fake.state.mailboxes[adele.id]
    folder = mailbox.add_folder("Bad\x00Folder", mailbox.folder("msgfolderroot"))
    mailbox.add_message(
        folder, mime_of(9), graph_fake.state.clock.now()
    )  # an empty one is not read
    graph_fake.state.faults.add(FaultRule(re.escape(folder.id) + "/messages", 400))
    with far_organization(graph_fake, tenant, tmp_path) as far:
        session = run_org_job(far.http, far.org_id, far.repository_id)
        assert session["status"] == "Warning", session
        logs = far.http.get(f"/v8/JobSessions/{session['id']}/LogItems").json()["results"]
        (warning,) = [item["message"] for item in logs if "Folder" in item["message"]]
        assert "Bad\ufffdFolder: folder cannot be read" in warning, warning
