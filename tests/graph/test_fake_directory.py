"""Directory routes of the fake: paging by `@odata.nextLink`, `$select`, `$top` limits."""

from __future__ import annotations

import httpx
import pytest

from tests.graph.fake_client import bearer, client, graph_code
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import RegisteredApp

SECRET = "s3cret"


@pytest.fixture
def app(graph_fake: FakeGraph) -> RegisteredApp:
    tenant = graph_fake.state.add_tenant("contoso.onmicrosoft.com")
    for n in range(250):
        graph_fake.state.add_user(tenant, f"user{n:03}")
    return graph_fake.state.add_app(tenant, secret=SECRET)


def _all_pages(http: httpx.Client, url: str, headers: dict[str, str]) -> list[dict[str, object]]:
    pages = []
    while url:
        answer = http.get(url, headers=headers)
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
        url = answer.json().get("@odata.nextLink", "")
    return pages


def test_users_page_by_default_100_and_by_top(graph_fake: FakeGraph, app: RegisteredApp) -> None:
    base = f"{graph_fake.graph_url}/v1.0/users"
    with client(graph_fake) as http:
        headers = bearer(http, graph_fake, app, SECRET)
        pages = _all_pages(http, base, headers)
        assert [len(p["value"]) for p in pages] == [100, 100, 50]  # type: ignore[arg-type]
        ids = [u["id"] for p in pages for u in p["value"]]  # type: ignore[attr-defined]
        assert len(ids) == len(set(ids)) == 250
        pages = _all_pages(http, f"{base}?$top=999&$select=id,displayName", headers)
        assert len(pages) == 1
        assert set(pages[0]["value"][0]) == {"id", "displayName"}  # type: ignore[index]
        paged = _all_pages(http, f"{base}?$top=7&$select=userPrincipalName", headers)
        assert len(paged) == 36  # ceil(250 / 7): the link carries $top and $select
        assert all(set(u) == {"userPrincipalName"} for p in paged for u in p["value"])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "query",
    [
        "$top=1000",
        "$top=0",
        "$top=x",
        "$select=id,nonsense",
        "$skip=10",
        "$skiptoken=forged",
        "$orderby=displayName",
    ],
)
def test_users_refuse_bad_query_options(
    graph_fake: FakeGraph, app: RegisteredApp, query: str
) -> None:
    with client(graph_fake) as http:
        headers = bearer(http, graph_fake, app, SECRET)
        answer = http.get(f"{graph_fake.graph_url}/v1.0/users?{query}", headers=headers)
        assert graph_code(answer) == (400, "Request_BadRequest")


def test_a_tampered_next_link_is_refused(graph_fake: FakeGraph, app: RegisteredApp) -> None:
    with client(graph_fake) as http:
        headers = bearer(http, graph_fake, app, SECRET)
        first = http.get(f"{graph_fake.graph_url}/v1.0/users", headers=headers).json()
        link = first["@odata.nextLink"]
        tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        assert graph_code(http.get(tampered, headers=headers)) == (400, "Request_BadRequest")


def test_user_by_id_or_upn_and_unknown_segment(graph_fake: FakeGraph, app: RegisteredApp) -> None:
    with client(graph_fake) as http:
        headers = bearer(http, graph_fake, app, SECRET)
        by_upn = http.get(
            f"{graph_fake.graph_url}/v1.0/users/user007@contoso.onmicrosoft.com?$select=id",
            headers=headers,
        )
        user_id = by_upn.json()["id"]
        by_id = http.get(f"{graph_fake.graph_url}/v1.0/users/{user_id}", headers=headers)
        assert by_id.json()["displayName"] == "user007"
        unknown = http.get(f"{graph_fake.graph_url}/v1.0/nonsense", headers=headers)
        assert graph_code(unknown) == (400, "BadRequest")
