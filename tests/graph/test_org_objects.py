"""The organization cache: users listed with their mailbox type and OneDrive, vendor ids (hybrid
users carry their on-premises GUID), wildcard and location filters, groups with members, teams,
sites; the directory read in requests linear in its size; Sync in the background with its state;
the periodic sync."""

from __future__ import annotations

import base64
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from keepstone.clock import ManualClock
from keepstone.domain.jobs import BackupType
from keepstone.domain.scope import ScopeUser, resolve_scope
from keepstone.scheduler import Scheduler
from keepstone.services import catalog, m365_directory, m365_settings
from keepstone.sources.graph import directory
from keepstone.sources.graph.directory import ZERO_GUID
from tests.conftest import ADMIN_PASSWORD, login
from tests.graph.org_fixtures import (
    DOMAIN,
    SECRET,
    OrgEnv,
    _org_fake,
    _org_server,
    org_body,
    org_env,
    populate_directory,
    tenant_with_users,
)
from tests.graph_fake.state import Tenant

__all__ = ["_org_fake", "_org_server", "org_env"]


def _create(env: OrgEnv, tenant: Tenant) -> dict[str, Any]:
    app = env.fake.state.add_app(tenant, secret=SECRET)
    answer = env.api.post("/v8/Organizations", org_body(app))
    assert answer.status_code == 201, answer.text
    org: dict[str, Any] = answer.json()
    return org


def _names(env: OrgEnv, path: str) -> list[str]:
    return [row.get("name") or row.get("displayName") for row in env.api.rows(path)]


def test_users_carry_their_mailbox_type_drive_and_vendor_id(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 2)
    state = org_env.fake.state
    shared = state.add_user(tenant, "shared", "Front Desk")
    state.add_mailbox(shared).purpose = "shared"
    no_mail = state.add_user(tenant, "nomail", "No Mail")  # neither mailbox nor OneDrive
    guid = uuid.uuid4()
    no_mail.on_premises_sync_enabled = True
    no_mail.on_premises_immutable_id = base64.b64encode(guid.bytes_le).decode()
    no_mail.on_premises_sid = "S-1-5-21-1-2-3-500"
    org = _create(org_env, tenant)
    base = f"/v8/Organizations/{org['id']}/Users"
    users = {u["name"]: u for u in org_env.api.rows(f"{base}?limit=100")}
    assert users[f"shared@{DOMAIN}"]["type"] == "Shared"
    hybrid = users[f"nomail@{DOMAIN}"]
    assert hybrid["id"] == f"{no_mail.id}{guid}" and hybrid["locationType"] == "Hybrid"
    assert hybrid["onPremisesSid"] == "S-1-5-21-1-2-3-500"
    assert (
        users[f"user000@{DOMAIN}"]["id"] == f"{tenant.find_user('user000@' + DOMAIN).id}{ZERO_GUID}"
    )  # type: ignore[union-attr]
    row = catalog.get_organization(org_env.ctx, org["id"])
    by_name = {u.name: u for u in m365_settings.graph_users(org_env.ctx, row)}
    assert not by_name[f"nomail@{DOMAIN}"].has_mailbox
    assert not by_name[f"nomail@{DOMAIN}"].has_onedrive
    assert by_name[f"shared@{DOMAIN}"].kind == "Shared"
    assert org_env.api.rows(f"{base}/{hybrid['id']}/OneDrives") == []
    drives = org_env.api.rows(f"{base}/{users[f'user000@{DOMAIN}']['id']}/OneDrives")
    assert drives[0]["id"] == org_env.fake.state.drives[tenant.find_user("user000@" + DOMAIN).id].id  # type: ignore[union-attr]
    # the vendor id, the bare Entra id and the name all find the user
    for key in (hybrid["id"], no_mail.id, f"NoMail@{DOMAIN}"):
        assert org_env.api.get(f"{base}/{key}").json()["id"] == hybrid["id"]
    assert org_env.api.get(f"{base}/{uuid.uuid4()}").status_code == 404
    # jobs select users from the same list, naming them by the listed id
    listed = catalog.organization_users(org_env.ctx, org["id"])
    assert [u.name for u in listed] == sorted(users)
    ids = m365_directory.vendor_user_ids(org_env.ctx, org["id"])
    assert ids == {name: user["id"] for name, user in users.items()}
    scope = resolve_scope(
        BackupType.SELECTED_ITEMS,
        [{"type": "User", "user": {"id": hybrid["id"]}, "mailbox": True}],
        [],
        [ScopeUser(name, ids[name]) for name in ids],
    )
    assert list(scope) == [f"nomail@{DOMAIN}"]


def test_user_filters_wildcards_and_locations(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 12)
    synced = tenant.find_user(f"user011@{DOMAIN}")
    assert synced is not None
    synced.on_premises_sync_enabled = True
    org = _create(org_env, tenant)
    base = f"/v8/Organizations/{org['id']}/Users?limit=100"
    assert len(_names(org_env, f"{base}&userName=user01?@*")) == 2
    assert _names(org_env, f"{base}&displayName=User 00*")[:2] == [
        f"user000@{DOMAIN}",
        f"user001@{DOMAIN}",
    ]
    assert len(_names(org_env, f"{base}&displayName=*0?")) == 10
    assert _names(org_env, f"{base}&userName=USER005") == [f"user005@{DOMAIN}"]
    assert _names(org_env, f"{base}&locationFilter=Hybrid") == [f"user011@{DOMAIN}"]
    assert len(_names(org_env, f"{base}&locationFilter=Cloud")) == 11
    assert len(_names(org_env, f"{base}&locationFilter=CloudOrHybrid")) == 12
    assert _names(org_env, f"{base}&locationFilter=OnPremises") == []
    bad = org_env.api.get(f"{base}&locationFilter=Moon")
    assert bad.status_code == 400 and bad.json()["message"].startswith("locationFilter: ")
    page = org_env.api.get(f"/v8/Organizations/{org['id']}/Users?limit=5&offset=10").json()
    assert len(page["results"]) == 2 and page["offset"] == 10


def test_groups_members_teams_and_sites(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 3)
    populate_directory(org_env.fake, tenant)
    org = _create(org_env, tenant)
    base = f"/v8/Organizations/{org['id']}"
    groups = {g["displayName"]: g for g in org_env.api.rows(f"{base}/Groups")}
    assert {n: g["type"] for n, g in groups.items()} == {
        "All Staff": "Security",
        "News": "Distribution",
        "Sales Team": "Office365",
    }
    assert groups["All Staff"]["locationType"] == "Hybrid"
    staff = org_env.api.rows(f"{base}/Groups/{groups['All Staff']['id']}/Members")
    assert sorted((m["type"], m["name"]) for m in staff) == [
        ("Group", "Sales Team"),
        ("User", "User 000"),
    ]
    assert sorted(g["displayName"] for g in org_env.api.rows(f"{base}/Groups?displayName=S*")) == [
        "Sales Team"
    ]
    assert [g["displayName"] for g in org_env.api.rows(f"{base}/Groups?groupName=news*")] == [
        "News"
    ]
    teams = org_env.api.rows(f"{base}/Teams")
    assert [(t["displayName"], t["mail"]) for t in teams] == [("Sales Team", f"sales@{DOMAIN}")]
    assert org_env.api.get(f"{base}/Teams/{teams[0]['id']}").json()["id"] == teams[0]["id"]
    sites = org_env.api.rows(f"{base}/Sites")
    assert sorted(s["title"] for s in sites) == ["Communication site", "Sales Team"]
    everything = org_env.api.rows(f"{base}/Sites?includePersonalSites=true")
    assert [s["title"] for s in everything if s["isPersonal"]] == ["user000"]
    site = org_env.api.get(f"{base}/Sites/{sites[0]['id']}").json()
    assert site["url"] == sites[0]["url"]


class Counting(httpx.HTTPTransport):
    def __init__(self, counts: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counts = counts

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.counts.append(request.url.path)
        return super().handle_request(request)


def _sync_requests(env: OrgEnv, org_id: str) -> m365_directory.SyncResult:
    row = catalog.get_organization(env.ctx, org_id)
    result = m365_directory.sync(env.ctx, org_id, m365_settings.access_of(env.ctx, row))
    assert result.errors == []
    return result


@pytest.mark.parametrize("scale", [1, 4])
def test_a_sync_reads_the_directory_in_requests_linear_in_its_size(
    org_env: OrgEnv, scale: int
) -> None:
    """N users: one page of 999 + N/10 batches (mailbox settings and drive of 10 users each);
    4N users: four times the batches, never a request per user."""
    users = 60 * scale
    tenant = tenant_with_users(org_env.fake, users)
    org = _create(org_env, tenant)
    result = _sync_requests(org_env, org["id"])
    assert result.counter.by_kind == {
        "users": 1,
        "batch": users // 10,
        "groups": 1,
        "sites": 1,
    }
    assert len(m365_directory.cached_users(org_env.ctx, org["id"])) == users


def test_users_are_paged_and_members_read_per_group(
    org_env: OrgEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directory, "USERS_PAGE", 50)  # the fake pages as Graph does: by $top
    tenant = tenant_with_users(org_env.fake, 101)  # three pages: 50, 50 and 1
    populate_directory(org_env.fake, tenant)
    org = _create(org_env, tenant)
    result = _sync_requests(org_env, org["id"])
    assert result.counter.by_kind == {
        "users": 3,
        "batch": 11,  # 5 + 5 + 1: a batch never spans two pages
        "groups": 1,
        "members": 3,  # one page per group
        "sites": 1,
    }


def _wait_for_sync(env: OrgEnv, org_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state: dict[str, Any] = env.api.get(f"/v8/Organizations/{org_id}/SyncState").json()
        if "currentSyncState" not in state:
            return state
        time.sleep(0.02)
    raise AssertionError("the sync did not end")


def test_sync_runs_in_the_background_and_reports_its_state(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 2)
    org = _create(org_env, tenant)
    first = org_env.api.get(f"/v8/Organizations/{org['id']}/SyncState").json()
    assert first["lastSyncState"]["result"] == "Success"
    org_env.fake.state.add_user(tenant, "newcomer")
    answer = org_env.api.post(f"/v8/Organizations/{org['id']}/Sync", {"type": "Incremental"})
    assert answer.status_code == 204
    state = _wait_for_sync(org_env, org["id"])
    assert state["lastSyncState"]["result"] == "Success"
    assert f"newcomer@{DOMAIN}" in _names(org_env, f"/v8/Organizations/{org['id']}/Users")
    assert org_env.api.post(f"/v7/Organizations/{org['id']}/Sync", {}).status_code == 200
    _wait_for_sync(org_env, org["id"])
    v7 = org_env.api.get(f"/v7/Organizations/{org['id']}/SyncState").json()
    assert (v7["status"], v7["type"], v7["error"]) == ("Success", "Full", None)
    states = org_env.api.get("/v8/Organizations/SyncState").json()
    assert [s["organizationId"] for s in states] == [org["id"]]
    bad = org_env.api.post(f"/v8/Organizations/{org['id']}/Sync", {"type": "Sideways"})
    assert bad.status_code == 400


def test_a_sync_graph_refuses_keeps_the_cache_and_says_why(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 2)
    org = _create(org_env, tenant)
    for app in org_env.fake.state.apps.values():
        app.secrets.clear()  # the secret was revoked in Entra
    assert org_env.api.post(f"/v8/Organizations/{org['id']}/Sync", {}).status_code == 204
    state = _wait_for_sync(org_env, org["id"])
    assert state["lastSyncState"]["result"] == "Error"
    assert "invalid_client" in state["lastSyncState"]["error"]
    assert len(org_env.api.rows(f"/v8/Organizations/{org['id']}/Users")) == 2


def test_the_scheduler_syncs_caches_older_than_the_interval(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    org = _create(org_env, tenant)
    clock = org_env.ctx.clock
    assert isinstance(clock, ManualClock)
    assert [o.id for o in m365_directory.due_for_sync(org_env.ctx)] == []
    org_env.fake.state.add_user(tenant, "later")
    clock.advance(m365_directory.SYNC_INTERVAL + timedelta(seconds=1))
    try:
        Scheduler(org_env.ctx).tick()
        assert m365_directory.SYNCS.wait(30)
        names = [u.name for u in m365_directory.cached_users(org_env.ctx, org["id"])]
        assert f"later@{DOMAIN}" in names
        assert m365_directory.sync_state(org_env.ctx, org["id"]).last_end == clock.now()
        assert m365_directory.due_for_sync(org_env.ctx) == []
    finally:  # the module's API token expired with the hour
        org_env.api.token = login(org_env.api.client, "admin", ADMIN_PASSWORD)


def test_a_local_organization_has_no_directory_to_sync(org_env: OrgEnv, tmp_path: Any) -> None:
    org = org_env.api.post(
        "/v8/Organizations",
        {"type": "Local", "name": "disk", "localSettings": {"path": str(tmp_path)}},
    ).json()
    assert org_env.api.rows(f"/v8/Organizations/{org['id']}/Groups") == []
    answer = org_env.api.post(f"/v8/Organizations/{org['id']}/Sync", {})
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("organizationId: ")
