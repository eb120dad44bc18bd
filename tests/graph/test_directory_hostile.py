"""A tenant's directory is data from a source, and hostile: on every catalog, a user, group or site
whose key Keepstone cannot keep as it is (an id or sign-in name longer than its column, which
PostgreSQL refuses; or holding a lone surrogate, which neither catalog encodes, or NUL, which
SQLite keeps and PostgreSQL cannot) is skipped and named in the sync's state; text that is only
shown (display names, descriptions, offices) is kept with such characters replaced by U+FFFD; an
optional property longer than its column is dropped. Everything else is cached, and backed up.
Before, one such value failed the whole sync ("sync failed: DataError" on PostgreSQL,
"UnicodeEncodeError" on SQLite), and the organization's next run backed up no one and ended
Success."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.api.app import create_app
from keepstone.services import catalog, m365_directory, m365_settings
from keepstone.services.context import Context
from keepstone.sources.graph.settings import GraphEndpoints
from tests.conftest import ADMIN_PASSWORD, BASE_URL, Api, login
from tests.graph.fake_mail import mime_of
from tests.graph.org_fixtures import DOMAIN, SECRET, org_body
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.groups import Group
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.sites import Site
from tests.graph_fake.state import Tenant

LONG_UPN = "l" * 300  # Entra allows 113 characters; the catalog keeps 255
SURROGATE = "\ud800"  # valid in JSON ("\ud800"), not encodable as UTF-8


@dataclass
class Directory:
    api: Api
    ctx: Context
    org_id: str


@pytest.fixture
def directory(
    ctx: Context, graph_fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Directory]:
    """A hostile tenant's organization created through the API, on the test's catalog."""
    monkeypatch.setenv("SSL_CERT_FILE", str(graph_fake.ca_pem))
    ctx.graph = GraphEndpoints(graph_fake.graph_url, graph_fake.login_url)
    tenant = hostile_tenant(graph_fake)
    app = graph_fake.state.add_app(tenant, secret=SECRET)
    with TestClient(create_app(ctx), base_url=BASE_URL) as client:
        api = Api(client, login(client, "admin", ADMIN_PASSWORD))
        created = api.post("/v8/Organizations", org_body(app))
        assert created.status_code == 201, created.text
        m365_directory.SYNCS.wait(30)
        yield Directory(api, ctx, created.json()["id"])


def hostile_tenant(fake: FakeGraph) -> Tenant:
    state = fake.state
    tenant = state.add_tenant(DOMAIN)
    adele = state.add_user(tenant, "adele", "Adele Vance")
    odd = state.add_user(tenant, "odd", "Odd\x00One")
    state.add_user(tenant, "ghost", f"Ghost{SURROGATE}")  # neither mailbox nor OneDrive
    odd.office_location = "Floor\x00 2"
    odd.mail = "m" * 400 + "@" + DOMAIN  # longer than any address: dropped, the user kept
    odd.on_premises_sid = "S-1-5-" + "9" * 300
    state.add_user(tenant, LONG_UPN, "Too Long")
    state.add_user(tenant, "nul\x00user", "Nul User")
    state.add_user(tenant, f"lone{SURROGATE}", "Lone Surrogate")
    for user in (adele, odd):
        state.add_mailbox(user)
        state.add_drive(user)
    kept = Group(str(uuid.uuid4()), "Sales\x00Team", "sales", description=f"d{SURROGATE}")
    skipped = Group("g" * 100, "Long Id", "long")  # an id longer than a Graph id
    kept.members = [adele.id, odd.id, skipped.id]
    with state.lock:
        tenant.groups[kept.id] = kept
        tenant.groups[skipped.id] = skipped
        host = "contoso.sharepoint.com"
        tenant.sites.extend(
            [
                Site(host, "/sites/sales", "Sales\x00Site"),
                Site(host, "/sites/long", "Long", collection_id="c" * 300),
            ]
        )
    return tenant


def synced(d: Directory) -> m365_directory.SyncResult:
    row = catalog.get_organization(d.ctx, d.org_id)
    return m365_directory.sync(d.ctx, d.org_id, m365_settings.access_of(d.ctx, row))


def test_a_hostile_directory_is_cached_but_for_what_cannot_be_kept(directory: Directory) -> None:
    result = synced(directory)
    why = "longer than the catalog keeps, or holding NUL or a lone surrogate"
    assert result.errors == [
        f"users: 3 skipped: an id or sign-in name {why}",
        f"groups: 1 skipped, members: 1 skipped: an id {why}",
        f"sites: 1 skipped: an id or URL {why}",
    ]
    users = {u.name: u for u in m365_directory.cached_users(directory.ctx, directory.org_id)}
    assert sorted(users) == [f"adele@{DOMAIN}", f"ghost@{DOMAIN}", f"odd@{DOMAIN}"]
    assert users[f"ghost@{DOMAIN}"].display_name == "Ghost\ufffd"
    odd = users[f"odd@{DOMAIN}"]
    assert odd.display_name == "Odd\ufffdOne"
    assert odd.office == "Floor\ufffd 2"
    assert odd.mail is None and odd.onprem_sid is None
    (group,) = m365_directory.cached_groups(directory.ctx, directory.org_id)
    assert (group.display_name, group.description) == ("Sales\ufffdTeam", "d\ufffd")
    members = m365_directory.cached_members(directory.ctx, directory.org_id, group.graph_id)
    assert len(members) == 2
    (site,) = m365_directory.cached_sites(directory.ctx, directory.org_id)
    assert site.title == "Sales\ufffdSite"

    state = directory.api.get(f"/v8/Organizations/{directory.org_id}/SyncState").json()
    assert state["lastSyncState"]["result"] == "Error"
    assert "users: 3 skipped" in state["lastSyncState"]["error"]
    listed = directory.api.rows(f"/v8/Organizations/{directory.org_id}/Users")
    assert sorted(u["displayName"] for u in listed) == [
        "Adele Vance",
        "Ghost\ufffd",
        "Odd\ufffdOne",
    ]


def test_the_users_kept_from_a_hostile_directory_are_backed_up(
    directory: Directory, graph_fake: FakeGraph, worker: Any
) -> None:
    """The run backs up the users the cache holds (the two with a mailbox or OneDrive, and
    the one with neither), not zero; a folder that cannot be read, whose name holds NUL, is
    one warning quoting the name with U+FFFD on both catalogs (SQLite kept the NUL itself)."""
    state = graph_fake.state
    (tenant,) = state.tenants.values()
    adele = next(u for u in tenant.users.values() if u.user_principal_name.startswith("adele"))
    mailbox = state.mailboxes[adele.id]
    folder = mailbox.add_folder("Bad\x00Folder", mailbox.folder("msgfolderroot"))
    mailbox.add_message(folder, mime_of(1), state.clock.now())
    state.faults.add(FaultRule(re.escape(folder.id) + "/messages", 400))
    repository = directory.api.get("/v8/BackupRepositories").json()["results"][0]
    job = directory.api.post(
        "/v8/Jobs",
        {
            "name": "hostile",
            "organizationId": directory.org_id,
            "repositoryId": repository["id"],
            "backupType": "EntireOrganization",
            "schedulePolicy": {"type": "ManualOnly"},
        },
    )
    assert job.status_code == 201, job.text
    session = directory.api.post(f"/v8/Jobs/{job.json()['id']}/start").json()
    assert worker.run_one()
    ended = directory.api.get(f"/v8/JobSessions/{session['id']}").json()
    assert ended["status"] == "Warning", ended
    logged = [r["message"] for r in directory.api.rows(f"/v8/JobSessions/{session['id']}/LogItems")]
    assert any(m.startswith("Backup finished: 3 users") for m in logged), logged
    (warning,) = [m for m in logged if "Folder" in m]
    assert "Bad\ufffdFolder" in warning, warning
