"""Transport defaults in both dialects, on the real app: links never follow the ``Host`` header
(they use ``--public-url`` or the address the request arrived on), every answer carries the
protective headers, token and logon answers are never cached, HSTS and the cookie's ``Secure``
over HTTPS only. (The TLS floor and the same rules over a real socket: test_server_process.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from keepstone.api.app import create_app
from keepstone.services.context import Context
from tests.conftest import ADMIN_PASSWORD, BASE_URL, Api, login
from tests.em.conftest import basic

EVIL = {"Host": "evil.example"}
PUBLIC = "https://backup.public.example/keepstone"
HREF = re.compile(r"""(?:href|Href)["']?\s*[:=]\s*["']([^"']+)""")


def hrefs(text: str) -> list[str]:
    return HREF.findall(text)


def only_links_to(base: str, response: Any) -> None:
    found = [*hrefs(response.text), response.headers.get("location", "")]
    found = [h for h in found if h]
    assert found, response.text
    assert all(h.startswith(base + "/") for h in found), found
    assert "evil.example" not in response.text + str(response.headers)


def em_logon(client: TestClient, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD) | (headers or {})
    )


@pytest.fixture
def public_client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx, public=PUBLIC), base_url=BASE_URL) as client:
        yield client


def test_json_links_ignore_the_host_header(api: Api, job: dict[str, Any]) -> None:
    only_links_to(BASE_URL, api.get(f"/v2/Jobs/{job['id']}", headers=EVIL))
    # from v6, paths: the vendor's own, and a client joins them to the base URL it knows
    only_links_to("/v8", api.get("/v8/Jobs", headers=EVIL))  # the page's _links
    only_links_to("/v6", api.get(f"/v6/Jobs/{job['id']}", headers=EVIL))
    started = api.post(f"/v8/Jobs/{job['id']}/start", headers=EVIL | {"Prefer": "respond-async"})
    assert started.status_code == 202, started.text
    assert started.headers["location"].startswith(f"{BASE_URL}/v8/jobsessions/")


def test_from_v6_links_are_paths_a_client_joins_to_the_base_url_it_knows(
    api: Api, org: dict[str, Any], job: dict[str, Any]
) -> None:
    """As the vendor's server writes them from v6; v2-v5 keep the references' absolute URLs."""
    for version in range(2, 9):
        body = api.get(f"/v{version}/Jobs/{job['id']}").json()
        organization = body["_links"]["organization"]["href"]
        if version < 6:
            assert organization.startswith(f"{BASE_URL}/v{version}/"), organization
            continue
        assert organization.startswith(f"/v{version}/"), organization
        # joined to the base URL (a PRTG sensor's ``$apiUrl$href``) it is the organization
        assert api.get(organization).json()["id"] == org["id"]
        # the version cut off and put back (shapedthought/vbo_job_backup: ``href[3:]``)
        assert api.get(f"/v{version}" + body["_links"]["self"]["href"][3:]).json() == body


def test_em_links_and_location_ignore_the_host_header(client: TestClient, job: Any) -> None:
    logon = em_logon(client, EVIL)
    assert logon.status_code == 201
    only_links_to(f"{BASE_URL}/api", logon)
    token = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
    only_links_to(f"{BASE_URL}/api", client.get("/api/jobs", headers=EVIL | token))
    server = client.get("/api/backupServers", headers=EVIL | token)
    only_links_to(f"{BASE_URL}/api", server)


def test_links_follow_the_configured_public_url(public_client: TestClient, job: Any) -> None:
    token = login(public_client, "admin", ADMIN_PASSWORD)
    json_answer = public_client.get(
        f"/v2/Jobs/{job['id']}", headers=EVIL | {"Authorization": f"Bearer {token}"}
    )
    only_links_to(PUBLIC + "/v2", json_answer)
    only_links_to(PUBLIC + "/api", em_logon(public_client, EVIL))


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/v8/Jobs"), ("GET", "/v2/no-such-route"), ("GET", "/api/"), ("GET", "/swagger")],
)
def test_every_answer_carries_the_protective_headers(api: Api, method: str, path: str) -> None:
    response = api.client.request(method, path, headers=api._headers(None))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    if path != "/swagger":
        assert policy == "default-src 'none'; frame-ancestors 'none'"


def test_token_and_logon_answers_are_never_cached(client: TestClient) -> None:
    form = {"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD}
    for response in (client.post("/v2/Token", data=form), client.post("/v8/Token", data=form)):
        assert response.status_code in (200, 201)
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"
    logon = em_logon(client)
    assert logon.status_code == 201
    assert logon.headers["cache-control"] == "no-store"
    assert logon.headers["pragma"] == "no-cache"


def test_hsts_and_a_secure_cookie_over_https_only(ctx: Context) -> None:
    for base, secure in ((BASE_URL, True), ("http://127.0.0.1:4443", False)):
        with TestClient(create_app(ctx), base_url=base) as client:
            logon = em_logon(client)
            cookie = logon.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert ("; Secure" in cookie) is secure, cookie
            assert ("strict-transport-security" in logon.headers) is secure
            assert ("strict-transport-security" in client.get("/api/").headers) is secure


def test_the_swagger_page_policy_allows_its_own_assets_and_inline_script(
    client: TestClient,
) -> None:
    page = client.get("/swagger")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "unsafe-eval" not in policy
    sources = re.findall(r"""<script src=["']([^"']+)""", page.text)
    assert sources and all(s.startswith("/") for s in sources)  # 'self'
    document = etree.fromstring(page.content, etree.HTMLParser())
    assert len(document.findall(".//script")) == len(sources) + 1  # one inline script, hashed
    static = client.get(sources[0])
    assert static.status_code == 200 and "cache-control" not in static.headers
