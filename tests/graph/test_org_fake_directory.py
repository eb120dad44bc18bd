"""The fake's organization-cache routes are as strict as Graph: `/groups` with the Teams
`$filter` only and `$count` only with `ConsistencyLevel: eventual`, members with `@odata.type`,
`/sites/getAllSites` paged; unknown options, properties and permissions refused."""

from __future__ import annotations

import httpx
import pytest

from tests.graph.fake_client import bearer, client, graph_code
from tests.graph.org_fixtures import populate_directory, tenant_with_users
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import RegisteredApp

SECRET = "s3cret"


@pytest.fixture
def app(graph_fake: FakeGraph) -> RegisteredApp:
    tenant = tenant_with_users(graph_fake, 3)
    populate_directory(graph_fake, tenant)
    return graph_fake.state.add_app(tenant, secret=SECRET)


def _get(fake: FakeGraph, app: RegisteredApp, path: str, **headers: str) -> httpx.Response:
    with client(fake) as http:
        return http.get(
            f"{fake.graph_url}/v1.0/{path}", headers=bearer(http, fake, app, SECRET) | headers
        )


def test_groups_the_teams_filter_and_count(graph_fake: FakeGraph, app: RegisteredApp) -> None:
    everything = _get(graph_fake, app, "groups?$select=id,displayName").json()
    assert sorted(g["displayName"] for g in everything["value"]) == [
        "All Staff",
        "News",
        "Sales Team",
    ]
    teams = _get(
        graph_fake, app, "groups?$filter=resourceProvisioningOptions/Any(x:x eq 'Team')"
    ).json()
    assert [g["displayName"] for g in teams["value"]] == ["Sales Team"]
    counted = _get(graph_fake, app, "groups?$count=true", ConsistencyLevel="eventual").json()
    assert counted["@odata.count"] == 3
    paged = _get(graph_fake, app, "groups?$top=2").json()
    assert len(paged["value"]) == 2 and "skiptoken" in paged["@odata.nextLink"]


@pytest.mark.parametrize(
    "query",
    [
        "groups?$count=true",  # without ConsistencyLevel
        "groups?$filter=displayName eq 'News'",
        "groups?$select=nonsense",
        "groups?$orderby=displayName",
        "groups?$top=1000",
        "sites/getAllSites?$expand=drive",
    ],
)
def test_unsupported_queries_are_refused(
    graph_fake: FakeGraph, app: RegisteredApp, query: str
) -> None:
    assert graph_code(_get(graph_fake, app, query))[0] == 400


def test_members_carry_their_type_and_sites_page(graph_fake: FakeGraph, app: RegisteredApp) -> None:
    groups = _get(graph_fake, app, "groups").json()["value"]
    staff = next(g for g in groups if g["displayName"] == "All Staff")
    members = _get(
        graph_fake, app, f"groups/{staff['id']}/members?$select=id,displayName&$top=1"
    ).json()
    assert members["value"][0]["@odata.type"] in ("#microsoft.graph.user", "#microsoft.graph.group")
    assert set(members["value"][0]) == {"@odata.type", "id", "displayName"}
    assert "@odata.nextLink" in members
    unknown = _get(graph_fake, app, "groups/00000000-0000-0000-0000-000000000001/members")
    assert graph_code(unknown) == (404, "Request_ResourceNotFound")
    sites = _get(graph_fake, app, "sites/getAllSites?$select=id,webUrl,isPersonalSite").json()
    assert sum(1 for s in sites["value"] if s["isPersonalSite"]) == 1
    assert all(s["id"].count(",") == 2 for s in sites["value"])


def test_without_the_permission_groups_and_sites_are_403(graph_fake: FakeGraph) -> None:
    tenant = tenant_with_users(graph_fake, 1, "fabrikam.onmicrosoft.com")
    app = graph_fake.state.add_app(tenant, secret=SECRET, roles=frozenset({"User.Read.All"}))
    for path in ("groups", "sites/getAllSites"):
        assert graph_code(_get(graph_fake, app, path)) == (403, "Authorization_RequestDenied")
