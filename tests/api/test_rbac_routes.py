"""Every route of the app, called by a restore operator of one organization with another
organization's ids: a 403 or a 404, and never that organization's data. The routes are read
from the app itself (both dialects, every version's newest form of each route), so a route added
later is called too: until ``services.access.OPERATIONS`` lists it, it is a 403."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.api.deferred import install_all
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import access
from keepstone.services.context import Context
from tests.conftest import Api
from tests.contract.openapi import served_routes
from tests.local_org import backup_proxy
from tests.rbac_world import OPERATOR_PASSWORD, World, give_role, operator, world

__all__ = ["backup_proxy"]

# Routes outside the user gate: logging in and out, Swagger, the remote proxies' own API. They
# are still called (all but logout, which would end the operator's login) and must leak nothing.
UNGUARDED = re.compile(
    r"^(/v\d+/Token|/api/sessionMngr/|/api/$|/api/logonSessions|/_proxy/|/swagger|/login$"
    r"|/healthz$|/readyz$|/v\d+/Health$|/metrics$)"
)
SKIPPED = {("POST", "/v8/Token/logout"), ("POST", "/v7/Token/logout"), ("POST", "/logout")}
# The web console's pages (a browser's cookie session, not a bearer token or an EM session).
CONSOLE = re.compile(r"^/(?!v\d+/|api/|api$|_proxy/|swagger)")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
NONE = "00000000-0000-0000-0000-000000000000"


def newest_routes(client: TestClient) -> dict[tuple[str, str], str]:
    """(method, template without /vN) -> the newest version's path of that route."""
    found: dict[tuple[str, str], tuple[int, str]] = {}
    install_all(client.app)  # type: ignore[attr-defined]  # the deferred parts' routes too
    for method, path in served_routes(client.app.routes):  # type: ignore[attr-defined]
        version = re.match(r"^/v(\d+)/", path)
        number = int(version.group(1)) if version else 0
        key = access.operation_of(method, path)
        if number >= found.get(key, (-1, ""))[0]:
            found[key] = (number, path)
    return {key: path for key, (_, path) in found.items()}


def filled(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: values.get(m.group(1), NONE), template)


def calls(
    routes: dict[tuple[str, str], str], values: dict[str, str]
) -> Iterator[tuple[str, str, str]]:
    for (method, _), template in sorted(routes.items()):
        if (method, template) not in SKIPPED:
            yield method, template, filled(template, values)


@pytest.fixture
def two(api: Api, backup_proxy: ProxyWorker, tmp_path: Path, repo: dict[str, Any]) -> World:
    return world(api, backup_proxy, tmp_path, repo)


def _em_headers(client: TestClient) -> dict[str, str]:
    basic = base64.b64encode(f"operator:{OPERATOR_PASSWORD}".encode()).decode()
    logon = client.post("/api/sessionMngr/?v=latest", headers={"Authorization": f"Basic {basic}"})
    assert logon.status_code == 201, logon.text
    return {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}


def _console_login(client: TestClient) -> tuple[TestClient, str]:
    """A browser of the console logged in as the operator, and its session's CSRF token (the
    console sends the operator from the dashboard to the Restore pages, the only ones its
    organization roles open; the token is read from there)."""
    browser = TestClient(client.app, base_url=str(client.base_url))
    form = browser.get("/login")
    token = CSRF.search(form.text)
    assert token, form.text[:300]
    fields = {"csrf": token.group(1), "username": "operator", "password": OPERATOR_PASSWORD}
    answer = browser.post("/login", data={**fields, "next": "/"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text[:300]
    landing = browser.get("/", follow_redirects=False)
    assert landing.headers["location"] == "/restore", landing.text[:300]
    assert browser.get("/jobs").status_code == 403  # no global role: no other console page
    found = CSRF.search(browser.get("/restore").text)
    assert found
    return browser, found.group(1)


def test_a_restore_operator_gets_403_or_404_on_every_route_for_another_organization(
    two: World, client: TestClient, ctx: Context
) -> None:
    admin, acme, globex = two.admin, two.acme, two.globex
    op = operator(client, ctx)
    give_role(admin, acme, ["operator"], selected=["alice"])
    other_role = give_role(admin, globex, [], name="globex desk")
    carol = globex.owners["carol"]
    (carol_mail,) = admin.rows(
        f"/v8/RestoreSessions/{globex.session}/Organization/Mailboxes/{carol}/Items"
    )
    values = {
        "org_id": globex.id,
        "job_id": globex.job["id"],
        "point_id": globex.point,
        "session_id": globex.session,
        "owner_id": carol,
        "item": carol_mail["id"],
        "user_id": globex.users["carol"],
        "role_id": other_role["id"],
        "task_id": "task-999999",  # a task it did not start (services.tasks.get): a 404
    }
    # What must never reach the operator: globex's names and ids (an id is only allowed back in
    # the refusal of a request that sent it).
    secrets = ["globex", "carol", globex.id, globex.job["id"], globex.point, globex.session]
    secrets += [carol, carol_mail["id"], other_role["id"]]
    for path in ("/v8/RestorePoints", "/v8/Organizations", "/v8/RestoreSessions"):
        assert globex.id in admin.get(path).text  # the check below can fail
    routes = newest_routes(client)
    assert len(routes) > 200  # both dialects, every route
    em = _em_headers(client)
    bearer = {"Authorization": f"Bearer {op.token}"}
    browser, csrf = _console_login(client)
    checked = 0
    for method, template, path in calls(routes, values):
        if CONSOLE.match(template):
            form = {"csrf": csrf} if method == "POST" else None
            response = browser.request(method, path, data=form, follow_redirects=False)
        else:
            headers = em if path.startswith("/api") else bearer
            body = {} if method in ("POST", "PUT") else None
            response = client.request(method, path, json=body, headers=headers)
        leaked = [s for s in secrets if s in response.text and s not in path]
        assert not leaked, (method, path, response.status_code, leaked, response.text[:300])
        if UNGUARDED.match(template):
            continue
        if "{" in template:
            assert response.status_code in (403, 404), (method, path, response.text[:300])
        elif template == "/":  # the console's dashboard sends an operator to the Restore pages
            assert response.status_code == 303, (method, path, response.text[:300])
        else:  # a console form posted empty is a 400 naming the missing field
            expected = (200, 400, 403) if CONSOLE.match(template) else (200, 403)
            assert response.status_code in expected, (method, path, response.text[:300])
        checked += 1
    assert checked > 200


def test_items_outside_the_scope_are_404_on_every_route_of_a_restore_session(
    two: World, client: TestClient, ctx: Context
) -> None:
    """The operator's own organization and session, and a user (bob) its role leaves out."""
    admin, acme = two.admin, two.acme
    op = operator(client, ctx)
    give_role(admin, acme, ["operator"], selected=["alice"])
    session = op.post(f"/v8/Organizations/{acme.id}/explore", {}).json()["id"]
    bob = acme.owners["bob"]
    (bob_mail,) = admin.rows(f"/v8/RestoreSessions/{session}/Organization/Mailboxes/{bob}/Items")
    values = {"session_id": session, "owner_id": bob, "item": bob_mail["id"]}
    routes = [call for call in calls(newest_routes(client), values) if "{owner_id}" in call[1]]
    owner_routes = [call for call in routes if not CONSOLE.match(call[1])]
    # every browse (a folder by id too), save and put-back route of both kinds, and (v5) their
    # /Action forms: on the owner, its items, one item and a folder
    assert len(owner_routes) == 30 + 8
    console_routes = [call for call in routes if CONSOLE.match(call[1])]
    assert len(console_routes) == 5  # the console's folder, preview, save, zip and put-back
    browser, csrf = _console_login(client)
    for method, _template, path in console_routes:
        form = {"csrf": csrf, "ids": bob_mail["id"], "kind": "mail"} if method == "POST" else None
        response = browser.request(method, path, data=form, follow_redirects=False)
        assert response.status_code == 404, (method, path, response.text[:300])
        assert b"secret report" not in response.content and b"notes" not in response.content
    for method, _template, path in owner_routes:
        body = {"ids": [bob_mail["id"]], "userName": "alice"} if method == "POST" else None
        response = op.client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {op.token}"}
        )
        assert response.status_code == 404, (method, path, response.text[:300])
        assert b"secret report" not in response.content and b"notes" not in response.content
