"""Every operation of an Office365 organization (the organization, its users, OneDrives, groups,
members, sites, teams, sync and sync state) answered on real data from the fake Graph and
checked against the vendor's v6, v7 and v8 specs. The contract suite's scenario runs on a Local
organization; it leaves these operations to this test (``OFFICE365_OPERATIONS``)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.contract.openapi import implemented_operations, spec
from tests.graph.org_fixtures import (
    SECRET,
    OrgEnv,
    _org_fake,
    _org_server,
    org_body,
    org_env,
    populate_directory,
    tenant_with_users,
)

__all__ = ["_org_fake", "_org_server", "org_env"]

_OBJECTS = (
    "/Organizations/{organizationId}/Groups",
    "/Organizations/{organizationId}/Groups/{groupId}",
    "/Organizations/{organizationId}/Groups/{groupId}/Members",
    "/Organizations/{organizationId}/Sites",
    "/Organizations/{organizationId}/Sites/{siteId}",
    "/Organizations/{organizationId}/Teams",
    "/Organizations/{organizationId}/Teams/{teamId}",
    "/Organizations/{organizationId}/Users/{userId}/OneDrives",
)
_SYNC = (
    ("POST", "/Organizations/{organizationId}/Sync"),
    ("GET", "/Organizations/{organizationId}/SyncState"),
)
# The operations only an Office365 organization exercises, by version.
OFFICE365_OPERATIONS: dict[int, set[tuple[str, str]]] = {
    version: {("GET", f"/v{version}{path}") for path in _OBJECTS}
    | ({(m, f"/v{version}{p}") for m, p in _SYNC} if version >= 7 else set())
    | ({("GET", "/v8/Organizations/SyncState")} if version == 8 else set())
    for version in (6, 7, 8)
}
# GET routes (the app's own templates) only an Office365 organization's data reaches.
OFFICE365_ONLY_GETS = {
    "/Organizations/{org_id}/Groups/{group_id}",
    "/Organizations/{org_id}/Groups/{group_id}/Members",
    "/Organizations/{org_id}/Sites/{site_id}",
    "/Organizations/{org_id}/Teams/{team_id}",
}


class Checked:
    def __init__(self, env: OrgEnv, version: int) -> None:
        self.env, self.version, self.spec = env, version, spec(version)
        self.exercised: set[tuple[str, str]] = set()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        full = f"/v{self.version}{path}"
        kwargs = {"body": body} if method == "post" else {}
        response = getattr(self.env.api, method)(full, **kwargs)
        assert response.status_code < 300, f"{method} {full}: {response.text}"
        content_type = response.headers.get("content-type", "")
        self.spec.check_response(method, full, response.status_code, content_type, response.content)
        template = self.spec.match(method, full)
        assert template is not None
        self.exercised.add((method.upper(), template))
        return response.json() if response.content else None

    def rows(self, path: str) -> list[Any]:
        found = self.call("get", path)
        rows: list[Any] = found["results"] if isinstance(found, dict) else found
        assert rows, f"{path} listed nothing"
        return rows


def _wait_for_sync(env: OrgEnv, org_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state: dict[str, Any] = env.api.get(f"/v8/Organizations/{org_id}/SyncState").json()
        if "currentSyncState" not in state:
            return state
        time.sleep(0.05)
    raise AssertionError("the sync did not end")


@pytest.mark.parametrize("version", [6, 7, 8])
def test_every_office365_operation_conforms(org_env: OrgEnv, version: int) -> None:
    tenant = tenant_with_users(org_env.fake, 3)
    populate_directory(org_env.fake, tenant)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    v = Checked(org_env, version)
    org = v.call("post", "/Organizations", org_body(app))
    for path in (f"/Organizations/{org['id']}", "/Organizations"):
        v.call("get", path)
    users = v.rows(f"/Organizations/{org['id']}/Users")
    v.call("get", f"/Organizations/{org['id']}/Users/{users[0]['id']}")
    v.rows(f"/Organizations/{org['id']}/Users/{users[0]['id']}/OneDrives")
    groups = v.rows(f"/Organizations/{org['id']}/Groups")
    assert {g["type"] for g in groups} == {"Office365", "Security", "Distribution"}
    for group in groups:
        v.call("get", f"/Organizations/{org['id']}/Groups/{group['id']}")
        v.rows(f"/Organizations/{org['id']}/Groups/{group['id']}/Members")
    sites = v.rows(f"/Organizations/{org['id']}/Sites?includePersonalSites=true")
    v.call("get", f"/Organizations/{org['id']}/Sites/{sites[0]['id']}")
    teams = v.rows(f"/Organizations/{org['id']}/Teams")
    v.call("get", f"/Organizations/{org['id']}/Teams/{teams[0]['id']}")
    if version >= 7:
        v.call("post", f"/Organizations/{org['id']}/Sync", {"type": "Full"})
        _wait_for_sync(org_env, org["id"])
        v.call("get", f"/Organizations/{org['id']}/SyncState")
    if version == 8:
        v.call("get", "/Organizations/SyncState")
    served = implemented_operations(org_env.api.client.app, version)
    assert OFFICE365_OPERATIONS[version] <= served
    assert OFFICE365_OPERATIONS[version] <= v.exercised
