"""End to end through the API, the organization half: an edge tenant (a shared mailbox, a user
without a mailbox, one without a OneDrive) created and listed; credential failures (wrong secret,
unknown application, missing permission: 400 on create, nothing stored; a secret revoked after
create: the sync ends in error, cleanly, the cache kept); and a real `keepstone serve` process
with `--graph-url/--login-url` and `SSL_CERT_FILE`: the organization created, a job run by the
server's own proxy, the mailbox saved back byte for byte."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from keepstone.clock import SystemClock
from keepstone.services import catalog, m365_settings
from tests.conftest import ADMIN_PASSWORD
from tests.graph.fake_client import advance
from tests.graph.fake_mail import mime_of
from tests.graph.org_fixtures import (
    DOMAIN,
    SECRET,
    OrgEnv,
    _org_fake,
    _org_server,
    org_body,
    org_env,
    sqlite_text,
)
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import RegisteredApp, Tenant
from tests.process_helpers import process_env, start_server

__all__ = ["_org_fake", "_org_server", "org_env"]
WAIT_SECONDS = 60.0


def edge_tenant(fake: FakeGraph) -> Tenant:
    """adele (mailbox, OneDrive), helpdesk (shared mailbox, no OneDrive), nomail (no mailbox)."""
    state = fake.state
    tenant = state.add_tenant(DOMAIN)
    adele = state.add_user(tenant, "adele", "Adele Vance")
    inbox = state.add_mailbox(adele).folder("inbox")
    assert inbox is not None
    for n in range(3):
        state.mailboxes[adele.id].add_message(inbox, mime_of(n), state.clock.now())
    state.add_drive(adele)
    helpdesk = state.add_user(tenant, "helpdesk", "Help Desk")
    state.add_mailbox(helpdesk).purpose = "shared"
    state.add_drive(state.add_user(tenant, "nomail", "No Mail"))
    return tenant


def test_an_edge_tenant_is_created_and_listed(org_env: OrgEnv) -> None:
    tenant = edge_tenant(org_env.fake)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    created = org_env.api.post("/v8/Organizations", org_body(app))
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    users = {
        u["name"].split("@")[0]: u for u in org_env.api.rows(f"/v8/Organizations/{org_id}/Users")
    }
    assert sorted(users) == ["adele", "helpdesk", "nomail"]
    assert users["helpdesk"]["type"] == "Shared" and users["adele"]["type"] == "User"
    row = catalog.get_organization(org_env.ctx, org_id)
    found = {u.name.split("@")[0]: u for u in m365_settings.graph_users(org_env.ctx, row)}
    assert (found["adele"].has_mailbox, found["adele"].has_onedrive) == (True, True)
    assert (found["helpdesk"].has_mailbox, found["helpdesk"].has_onedrive) == (True, False)
    assert found["nomail"].has_mailbox is False and found["nomail"].has_onedrive is True
    drives = org_env.api.rows(f"/v8/Organizations/{org_id}/Users/{users['adele']['id']}/OneDrives")
    assert len(drives) == 1
    assert SECRET not in sqlite_text(org_env.data_dir)


def _refused(org_env: OrgEnv, body: dict[str, Any]) -> str:
    answer = org_env.api.post("/v8/Organizations", body)
    assert answer.status_code == 400, answer.text
    assert org_env.api.rows("/v8/Organizations") == []  # a refused request changes nothing
    assert SECRET not in answer.text and "wrong-secret" not in answer.text
    return answer.text


def test_bad_credentials_are_a_400_and_store_nothing(org_env: OrgEnv) -> None:
    tenant = edge_tenant(org_env.fake)
    state = org_env.fake.state
    app = state.add_app(tenant, secret=SECRET)
    wrong = org_body(app)
    unknown = org_body(app)
    for part in ("exchangeOnlineSettings", "sharePointOnlineSettings"):
        wrong[part]["applicationSecret"] = "wrong-secret"
        unknown[part]["applicationId"] = "00000000-1111-2222-3333-444444444444"
    powerless = org_body(state.add_app(tenant, secret=SECRET, roles=frozenset({"Mail.Read"})))
    said = [_refused(org_env, body) for body in (wrong, unknown, powerless)]
    assert all(said)  # the vendor's error body, naming what failed
    assert len(set(said)) == 3


def _sync_state(org_env: OrgEnv, org_id: str, result: str) -> dict[str, Any]:
    """The last sync's state once it has ended with ``result`` (the server's clock stands still)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        state = org_env.api.get(f"/v8/Organizations/{org_id}/SyncState").json()
        last = state.get("lastSyncState") or {}
        if last.get("result") == result and not state.get("currentSyncState"):
            return dict(last)
        assert time.monotonic() < deadline, f"no sync ended {result}: {state}"
        time.sleep(0.05)


def test_a_secret_revoked_after_create_fails_the_sync_cleanly(org_env: OrgEnv) -> None:
    tenant = edge_tenant(org_env.fake)
    app: RegisteredApp = org_env.fake.state.add_app(tenant, secret=SECRET)
    created = org_env.api.post("/v8/Organizations", org_body(app))
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    _sync_state(org_env, org_id, "Success")
    with org_env.fake.state.lock:
        app.secrets.clear()  # revoked in Entra
    # The server may hold a token still valid: the fake refuses it once it has expired.
    advance(org_env.fake, 3600)
    assert org_env.api.post(f"/v8/Organizations/{org_id}/Sync").status_code == 204
    failed = _sync_state(org_env, org_id, "Error")
    assert "refused" in failed["error"]
    assert SECRET not in failed["error"]
    names = sorted(u["name"] for u in org_env.api.rows(f"/v8/Organizations/{org_id}/Users"))
    assert len(names) == 3  # the cache is kept
    assert SECRET not in sqlite_text(org_env.data_dir)


def test_a_real_server_process_reaches_the_configured_graph(
    graph_fake: FakeGraph, tmp_path: Path, catalog_url: str | None
) -> None:
    """On both catalogs: PostgreSQL enforces its columns' lengths, and an Office 365 user's id
    (72 characters) once failed every run there at its first user (migration 0035)."""
    tenant = edge_tenant(graph_fake)
    app = graph_fake.state.add_app(tenant, secret=SECRET)
    graph_fake.state.clock = SystemClock()  # MSAL and the server read real time
    catalog = {} if catalog_url is None else {"KEEPSTONE_DATABASE": catalog_url}
    env = process_env(
        KEEPSTONE_ADMIN_PASSWORD=ADMIN_PASSWORD, SSL_CERT_FILE=str(graph_fake.ca_pem), **catalog
    )
    server = start_server(
        tmp_path / "logs",
        tmp_path / "data",
        "--graph-url",
        graph_fake.graph_url,
        "--login-url",
        graph_fake.login_url,
        env=env,
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            token = http.post(
                "/v8/Token",
                data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
            ).json()["access_token"]
            http.headers["Authorization"] = f"Bearer {token}"
            created = http.post("/v8/Organizations", json=org_body(app))
            assert created.status_code == 201, created.text + server.describe()
            users = http.get(f"/v8/Organizations/{created.json()['id']}/Users").json()["results"]
            assert sorted(u["name"] for u in users) == [
                f"{n}@{DOMAIN}" for n in ("adele", "helpdesk", "nomail")
            ]
            wrong = org_body(app)
            wrong["exchangeOnlineSettings"]["applicationSecret"] = "wrong-secret"
            wrong["sharePointOnlineSettings"]["applicationSecret"] = "wrong-secret"
            assert http.post("/v8/Organizations", json=wrong).status_code == 400
            backed_up = back_up_and_save(http, created.json()["id"])
    finally:
        server.stop()
    if catalog_url is not None:  # the server's catalog was this one: its users' tasks are there
        engine = create_engine(catalog_url)
        with engine.connect() as connection:
            ids = connection.execute(text("SELECT object_id FROM task_sessions")).scalars().all()
        engine.dispose()
        assert ids and all(len(i) == 72 for i in ids), ids
    assert SECRET not in server.output and "wrong-secret" not in server.output
    with graph_fake.state.lock:
        adele = next(u for u in tenant.users.values() if u.user_principal_name.startswith("ad"))
        held = sorted(m.mime for m in graph_fake.state.mailboxes[adele.id].messages.values())
    assert backed_up == held


def back_up_and_save(
    http: httpx.Client, org_id: str, repository_id: str | None = None
) -> list[bytes]:
    """A job over the organization into ``repository_id`` (else the first repository, the
    server's own proxy's), then adele's mail saved."""
    session = run_org_job(http, org_id, repository_id)
    assert session["status"] == "Success", session
    explored = http.post(f"/v8/Organizations/{org_id}/explore", json={}).json()["id"]
    base = f"/v8/RestoreSessions/{explored}/Organization/Mailboxes"
    owner = next(m for m in http.get(base).json()["results"] if m["name"].startswith("adele"))
    items = http.get(f"{base}/{owner['id']}/Items").json()["results"]
    saved = http.post(f"{base}/{owner['id']}/Items/save", json={"ids": [i["id"] for i in items]})
    assert saved.status_code == 200, saved.text
    with zipfile.ZipFile(io.BytesIO(saved.content)) as archive:
        return sorted(archive.read(name) for name in archive.namelist())


def run_org_job(
    http: httpx.Client, org_id: str, repository_id: str | None = None
) -> dict[str, Any]:
    """A job over the organization into ``repository_id`` (else the first repository, the
    server's own proxy's), started and waited for: its session as it ended."""
    repository = (
        {"id": repository_id}
        if repository_id is not None
        else http.get("/v8/BackupRepositories").json()["results"][0]
    )
    job = http.post(
        "/v8/Jobs",
        json={
            "name": "m365",
            "organizationId": org_id,
            "repositoryId": repository["id"],
            "backupType": "EntireOrganization",
            "schedulePolicy": {"type": "ManualOnly"},
        },
    )
    assert job.status_code in (200, 201), job.text
    session = http.post(f"/v8/Jobs/{job.json()['id']}/start").json()
    deadline = time.monotonic() + WAIT_SECONDS
    while session["status"] in ("Queued", "Running"):
        assert time.monotonic() < deadline, session
        time.sleep(0.1)
        session = http.get(f"/v8/JobSessions/{session['id']}").json()
    return dict(session)
