"""Organization roles (issue 16.1): the vendor's RbacRoles API, and what a user without a global
role may do with them, in both dialects. The same catalog rules on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import keepstone.cli.main as main  # the module (the package also has a function `main`)
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import audit, auth
from keepstone.services.context import Context
from tests.conftest import READER_PASSWORD, Api, finished_task, login
from tests.local_org import backup_proxy
from tests.rbac_world import OPERATOR_PASSWORD, World, give_role, operator, world
from tests.work import catalog_work

__all__ = ["backup_proxy"]


@pytest.fixture
def two(api: Api, backup_proxy: ProxyWorker, tmp_path: Path, repo: dict[str, Any]) -> World:
    return world(api, backup_proxy, tmp_path, repo)


@pytest.fixture
def orgs(api: Api, tmp_path: Path, repo: dict[str, Any]) -> World:
    """The same organizations, never backed up: what the roles API needs."""
    return world(api, None, tmp_path, repo)


# ---- the API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [6, 8])
def test_roles_are_created_read_changed_and_removed_in_the_vendors_shapes(
    orgs: World, client: TestClient, ctx: Context, version: int
) -> None:
    admin, acme = orgs.admin, orgs.acme
    operator(client, ctx, "olga")
    olga = next(u for u in auth.list_users(ctx) if u.name == "olga")
    v = f"/v{version}"
    assert admin.get(f"{v}/RbacRoles").json() == []
    created = admin.post(
        f"{v}/Organizations/{acme.id}/RbacRoles",
        {
            "name": "mail desk",
            "description": "restores alice",
            "operators": [{"type": "User", "id": olga.id}],
            "selectedItems": [{"type": "User", "user": {"id": acme.users["alice"]}}],
        },
    )
    assert created.status_code == (201 if version == 8 else 200), created.text
    role = created.json()
    assert role["organizationId"] == acme.id and role["roleType"] == "SpecificObjects"
    assert role["access"] == "Restore" and role["name"] == "mail desk"
    assert role["_links"]["self"]["href"].endswith(f"{v}/rbacroles/{role['id']}")
    assert admin.get(f"{v}/RbacRoles/{role['id']}").json() == role
    assert admin.get(f"{v}/RbacRoles").json() == [role]
    assert admin.get(f"{v}/Organizations/{acme.id}/RbacRoles").json() == [role]
    assert admin.get(f"{v}/Organizations/{orgs.globex.id}/RbacRoles").json() == []
    (listed,) = admin.get(f"{v}/RbacRoles/{role['id']}/operators").json()
    assert listed["type"] == "User" and listed["user"]["name"] == "olga"
    assert admin.get(f"{v}/RbacRoles/{role['id']}/operators/{olga.id}").json() == listed
    (item,) = admin.get(f"{v}/RbacRoles/{role['id']}/selectedItems").json()
    assert item == admin.get(f"{v}/RbacRoles/{role['id']}/selectedItems/{item['id']}").json()
    assert (item["type"], item["id"], item["user"]["name"]) == (
        "User",
        acme.users["alice"],
        "alice",
    )

    bob = [{"type": "User", "id": acme.users["bob"]}]
    assert admin.post(f"{v}/RbacRoles/{role['id']}/excludedItems", bob).status_code == 204
    assert [
        i["user"]["name"] for i in admin.get(f"{v}/RbacRoles/{role['id']}/excludedItems").json()
    ] == ["bob"]
    gone = admin.delete(f"{v}/RbacRoles/{role['id']}/excludedItems?ids={acme.users['bob']}")
    assert (
        gone.status_code == 204
        and admin.get(f"{v}/RbacRoles/{role['id']}/excludedItems").json() == []
    )

    edited = admin.put(f"{v}/RbacRoles/{role['id']}", {"name": "viewers", "access": "readonly"})
    assert edited.status_code == 204, edited.text
    changed = admin.get(f"{v}/RbacRoles/{role['id']}").json()
    assert (changed["name"], changed["access"], changed["roleType"]) == (
        "viewers",
        "ReadOnly",
        "SpecificObjects",
    )
    assert admin.delete(f"{v}/RbacRoles/{role['id']}/operators?ids={olga.id}").status_code == 204
    assert admin.get(f"{v}/RbacRoles/{role['id']}/operators").json() == []
    assert admin.post(f"{v}/RbacRoles/{role['id']}/operators", [{"id": olga.id}]).status_code == 204
    assert admin.delete(f"{v}/RbacRoles/{role['id']}").status_code == 204
    assert admin.get(f"{v}/RbacRoles/{role['id']}").status_code == 404
    assert admin.get(f"{v}/RbacRoles").json() == []
    changes = [e.details["change"] for e in audit.events(ctx) if e.action == "RoleChange"]
    assert changes == [
        "removed",
        "operators added",
        "operators removed",
        "changed",
        "excludedItems removed",
        "excludedItems added",
        "created",
    ]


def test_bad_role_requests_are_4xx_naming_what_was_wrong_and_change_nothing(
    orgs: World, client: TestClient, ctx: Context, reader: Api
) -> None:
    admin, acme = orgs.admin, orgs.acme
    operator(client, ctx, "olga")
    base = f"/v8/Organizations/{acme.id}/RbacRoles"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({}, 400, "name"),
        ({"name": "r", "roleType": "Everything"}, 400, "roleType"),
        ({"name": "r", "roleType": "SpecificObjects"}, 400, "selectedItems"),
        (
            {
                "name": "r",
                "roleType": "EntireOrganization",
                "selectedItems": [{"id": acme.users["bob"]}],
            },
            400,
            "roleType",
        ),
        ({"name": "r", "access": "Owner"}, 400, "access"),
        ({"name": "r", "operators": [{"type": "Group", "id": "x"}]}, 400, "operators[0].type"),
        ({"name": "r", "operators": [{"user": {"name": "nobody"}}]}, 400, "operators[0]"),
        ({"name": "r", "operators": [{"user": {"name": "admin"}}]}, 400, "global role"),
        (
            {"name": "r", "selectedItems": [{"id": orgs.globex.users["carol"]}]},
            400,
            "selectedItems[0]",
        ),
        (
            {"name": "r", "selectedItems": [{"type": "Site", "id": "x"}]},
            400,
            "selectedItems[0].type",
        ),
        ({"name": "r", "organizationId": orgs.globex.id}, 400, "organizationId"),
        ({"name": "r", "operators": "olga"}, 400, "operators"),
    ]
    for body, status, words in cases:
        response = admin.post(base, body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["message"], (body, response.text)
    assert admin.get("/v8/RbacRoles").json() == []
    assert (
        admin.post(
            "/v8/Organizations/00000000-0000-0000-0000-000000000000/RbacRoles", {"name": "r"}
        ).status_code
        == 404
    )
    role = give_role(admin, acme, ["olga"])
    assert admin.post(base, {"name": "restorers"}).status_code == 409
    scoped = give_role(admin, acme, ["olga"], selected=["alice"], name="alice desk")
    widened = admin.put(
        f"/v8/RbacRoles/{scoped['id']}", {"roleType": "EntireOrganization", "name": "x"}
    )
    assert widened.status_code == 400 and "roleType" in widened.json()["message"]
    assert admin.get(f"/v8/RbacRoles/{scoped['id']}").json() == scoped  # nothing changed
    assert admin.put(f"/v8/RbacRoles/{scoped['id']}", {"name": "restorers"}).status_code == 409
    assert admin.delete(f"/v8/RbacRoles/{scoped['id']}").status_code == 204
    assert admin.delete(f"/v8/RbacRoles/{role['id']}/operators").status_code == 400
    assert admin.post(f"/v8/RbacRoles/{role['id']}/operators", {"id": "x"}).status_code == 400
    assert (
        admin.post(
            f"/v8/RbacRoles/{role['id']}/selectedItems", [{"id": acme.users["bob"]}]
        ).status_code
        == 400
    )
    assert admin.get(f"/v8/RbacRoles/{role['id']}/operators/nobody").status_code == 404
    assert admin.get(f"/v8/RbacRoles/{role['id']}/selectedItems/nobody").status_code == 404
    assert admin.get("/v5/RbacRoles").status_code == 404  # the vendor's v6 on
    # a global ReadOnly user reads roles but changes none
    assert reader.get("/v8/RbacRoles").json() == [role]
    assert reader.delete(f"/v8/RbacRoles/{role['id']}").status_code == 403
    assert reader.post(base, {"name": "mine"}).status_code == 403
    assert admin.get("/v8/RbacRoles").json() == [role]


def test_removing_an_organization_or_a_user_removes_their_roles_and_memberships(
    orgs: World, client: TestClient, ctx: Context, tmp_path: Path
) -> None:
    operator(client, ctx, "olga")
    role = give_role(orgs.admin, orgs.acme, ["olga"])
    auth.remove_user(ctx, "olga", by="test")
    assert orgs.admin.get(f"/v8/RbacRoles/{role['id']}/operators").json() == []
    (tmp_path / "initech").mkdir()
    settings = {"path": str(tmp_path / "initech")}
    body = {"type": "Local", "name": "initech", "localSettings": settings}
    initech = orgs.admin.post("/v2/Organizations", body).json()["id"]
    made = orgs.admin.post(f"/v8/Organizations/{initech}/RbacRoles", {"name": "r"})
    assert made.status_code == 201, made.text
    assert orgs.admin.delete(f"/v8/Organizations/{initech}").status_code == 204
    assert orgs.admin.get("/v8/RbacRoles").json() == [role]


# ---- what a role grants --------------------------------------------------------------------------


def test_a_user_without_a_global_role_or_a_role_may_do_nothing(
    orgs: World, client: TestClient, ctx: Context
) -> None:
    nobody = operator(client, ctx)
    for path in ("/v8/Organizations", "/v8/RestorePoints", "/v8/Jobs", "/v2/RestoreSessions"):
        response = nobody.get(path)
        assert response.status_code == 403, response.text
        assert "no global role" in response.json()["message"]


def test_a_restore_operator_sees_and_explores_only_its_organization(
    two: World, client: TestClient, ctx: Context
) -> None:
    op = operator(client, ctx)
    give_role(two.admin, two.acme, ["operator"])
    acme, globex = two.acme, two.globex
    assert [o["id"] for o in op.rows("/v8/Organizations")] == [acme.id]
    assert [o["id"] for o in op.rows("/v2/Organizations")] == [acme.id]
    assert op.get(f"/v8/Organizations/{acme.id}").status_code == 200
    assert op.get(f"/v8/Organizations/{globex.id}").status_code == 404
    assert [p["id"] for p in op.rows("/v8/RestorePoints")] == [acme.point]
    assert op.rows(f"/v8/RestorePoints?organizationId={globex.id}") == []
    assert op.get(f"/v8/RestorePoints/{globex.point}").status_code == 404
    assert op.get(f"/v8/RestorePoints/{acme.point}").status_code == 200
    assert op.post(f"/v8/Organizations/{globex.id}/explore", {}).status_code == 404
    assert op.post(f"/v8/Jobs/{globex.job['id']}/explore", {}).status_code == 404
    mine = op.post(f"/v8/Organizations/{acme.id}/explore", {})
    assert mine.status_code == 201, mine.text
    by_job = op.post(f"/v8/Jobs/{acme.job['id']}/explore", {})
    assert by_job.status_code == 201, by_job.text
    sessions = {s["id"] for s in op.rows("/v8/RestoreSessions")}
    assert sessions == {mine.json()["id"], by_job.json()["id"], acme.session}
    assert globex.session not in {s["id"] for s in op.rows("/v2/RestoreSessions")}
    for tail in ("", "/Events", "/Statistics", "/Organization/Mailboxes"):
        assert op.get(f"/v8/RestoreSessions/{globex.session}{tail}").status_code == 404
    assert op.post(f"/v8/RestoreSessions/{globex.session}/stop").status_code == 404
    # everything an administrator may change stays out of reach
    for method, path, body in (
        ("post", f"/v2/Organizations/{acme.id}/Jobs", {"name": "mine"}),
        ("put", f"/v8/Organizations/{acme.id}", {"name": "x"}),
        ("post", f"/v8/Jobs/{acme.job['id']}/start", None),
        ("post", "/v8/BackupRepositories", {"name": "r", "path": "/tmp/r"}),
        ("post", f"/v8/Organizations/{acme.id}/RbacRoles", {"name": "mine"}),
        ("get", "/v8/RbacRoles", None),
        ("get", "/v8/Jobs", None),
        ("get", "/v8/Proxies", None),
    ):
        kw = {} if method in ("get",) else {"body": body}
        response = getattr(op, method)(path, **kw)
        assert response.status_code == 403, (method, path, response.text)


def _mail_items(api: Api, session: str, owner: str) -> list[dict[str, Any]]:
    return api.rows(f"/v8/RestoreSessions/{session}/Organization/Mailboxes/{owner}/Items")


@pytest.mark.parametrize("scope", ["selected", "excluded"])
def test_a_restore_operator_reaches_only_the_users_in_its_scope(
    two: World, client: TestClient, ctx: Context, scope: str
) -> None:
    op = operator(client, ctx)
    acme = two.acme
    if scope == "selected":
        give_role(two.admin, acme, ["operator"], selected=["alice"])
    else:
        give_role(two.admin, acme, ["operator"], excluded=["bob"])
    session = op.post(f"/v8/Organizations/{acme.id}/explore", {}).json()["id"]
    base = f"/v8/RestoreSessions/{session}/Organization"
    alice, bob = acme.owners["alice"], acme.owners["bob"]
    assert [m["name"] for m in op.rows(f"{base}/Mailboxes")] == ["alice"]
    assert [m["name"] for m in op.rows(f"{base}/OneDrives")] == ["alice"]
    (mail,) = _mail_items(op, session, alice)
    saved = op.post(f"{base}/Mailboxes/{alice}/Items/{mail['id']}/save")
    assert saved.status_code == 200 and b"alice's secret report" in saved.content
    (bob_mail,) = _mail_items(two.admin, session, bob)  # the administrator sees bob
    for method, path in (
        ("get", f"{base}/Mailboxes/{bob}"),
        ("get", f"{base}/Mailboxes/{bob}/Folders"),
        ("get", f"{base}/Mailboxes/{bob}/Items"),
        ("get", f"{base}/OneDrives/{bob}/Documents"),
        ("post", f"{base}/Mailboxes/{bob}/Items/{bob_mail['id']}/save"),
        ("post", f"{base}/Mailboxes/{bob}/Items/save"),
        ("post", f"{base}/Mailboxes/{bob}/restore"),
        ("post", f"{base}/Mailboxes/{bob}/Items/{bob_mail['id']}/restoreTo"),
    ):
        kw = {"body": {"ids": [bob_mail["id"]], "userName": "alice"}} if method == "post" else {}
        response = getattr(op, method)(path, **kw)
        assert response.status_code == 404, (path, response.text)
        assert b"bob" not in response.content.replace(bob.encode(), b"")
    # alice's mail may be put back to alice, not given to bob
    back = op.post(f"{base}/Mailboxes/{alice}/restore", {"collisionPolicy": "skip"})
    assert back.status_code == 200, back.text
    elsewhere = op.post(f"{base}/Mailboxes/{alice}/restoreTo", {"userName": "bob"})
    assert elsewhere.status_code == 403 and "outside the scope" in elsewhere.json()["message"]


def test_a_restore_operator_follows_its_own_put_back_and_no_one_elses(
    two: World, client: TestClient, ctx: Context, repo: dict[str, Any]
) -> None:
    """A put-back asked to run asynchronously (``Prefer: respond-async``) answers 202 with a task
    to poll: its operator reads it, another operator of the same role and organization gets a
    404, as it does for the administrator's tasks."""
    op, other = operator(client, ctx), operator(client, ctx, "other")
    give_role(two.admin, two.acme, ["operator", "other"])
    acme, later = two.acme, {"Prefer": "respond-async"}
    session = op.post(f"/v8/Organizations/{acme.id}/explore", {}).json()["id"]
    base = f"/v8/RestoreSessions/{session}/Organization/Mailboxes/{acme.owners['alice']}"
    started = op.post(f"{base}/restore", {"collisionPolicy": "skip"}, headers=later)
    assert started.status_code == 202, started.text
    mine = urlsplit(started.headers["Location"]).path
    assert mine.lower() == f"/v8/tasks/{started.json()['id']}"
    task = finished_task(op, mine)
    assert task["success"] is True and task["operation"] == "Restore", task
    assert task["result"]["skippedItemsCount"] + task["result"]["restoredItemsCount"] >= 1
    assert other.get(mine).status_code == 404  # the same organization, not its task
    assert two.admin.get(mine).status_code == 200
    verify = two.admin.post(f"/v8/BackupRepositories/{repo['id']}/verify", headers=later)
    assert verify.status_code == 202, verify.text
    admins = urlsplit(verify.headers["Location"]).path
    finished_task(two.admin, admins)
    for path in (admins, "/v8/Tasks/task-999999"):
        refused = op.get(path)
        assert refused.status_code == 404 and "does not exist" in refused.json()["message"]
    assert op.get(mine.replace("/v8/", "/v6/")).status_code == 200


def test_a_viewer_reads_its_organization_and_explores_nothing(
    two: World, client: TestClient, ctx: Context
) -> None:
    viewer = operator(client, ctx)
    give_role(two.admin, two.acme, ["operator"], access="ReadOnly")
    acme = two.acme
    assert [o["id"] for o in viewer.rows("/v8/Organizations")] == [acme.id]
    assert {u["name"] for u in viewer.rows(f"/v8/Organizations/{acme.id}/Users")} == {
        "alice",
        "bob",
    }
    assert [p["id"] for p in viewer.rows("/v8/RestorePoints")] == [acme.point]
    assert viewer.get(f"/v8/RestoreSessions/{acme.session}").status_code == 200
    assert viewer.post(f"/v8/Organizations/{acme.id}/explore", {}).status_code == 403
    mailboxes = viewer.get(f"/v8/RestoreSessions/{acme.session}/Organization/Mailboxes")
    assert mailboxes.status_code == 403
    assert viewer.post(f"/v8/RestoreSessions/{acme.session}/stop").status_code == 403


def test_role_changes_take_effect_on_the_next_request(
    orgs: World, client: TestClient, ctx: Context
) -> None:
    op = operator(client, ctx)
    role = give_role(orgs.admin, orgs.acme, ["operator"])
    assert op.get("/v8/Organizations").status_code == 200
    assert orgs.admin.put(f"/v8/RbacRoles/{role['id']}", {"operators": []}).status_code == 204
    assert op.get("/v8/Organizations").status_code == 403
    orgs.admin.post(f"/v8/RbacRoles/{role['id']}/operators", [{"user": {"name": "operator"}}])
    assert op.get("/v8/Organizations").status_code == 200
    assert orgs.admin.delete(f"/v8/RbacRoles/{role['id']}").status_code == 204
    assert op.get("/v8/Organizations").status_code == 403


def test_everything_a_scoped_operator_does_or_tries_is_audited(
    two: World, client: TestClient, ctx: Context
) -> None:
    op = operator(client, ctx)
    give_role(two.admin, two.acme, ["operator"])
    session = op.post(f"/v8/Organizations/{two.acme.id}/explore", {}).json()["id"]
    alice = two.acme.owners["alice"]
    (mail,) = _mail_items(op, session, alice)
    op.post(f"/v8/RestoreSessions/{session}/Organization/Mailboxes/{alice}/Items/{mail['id']}/save")
    op.get(f"/v8/Organizations/{two.globex.id}")
    op.post("/v8/Jobs", {})
    trail = [e for e in reversed(audit.events(ctx)) if e.user_name == "operator"]
    requests = [
        (e.details["method"], e.details["path"], e.outcome)
        for e in trail
        if e.action == "OperatorRequest"
    ]
    assert requests == [
        ("POST", f"/v8/Organizations/{two.acme.id}/explore", "Success"),
        ("GET", f"/v8/RestoreSessions/{session}/Organization/Mailboxes/{alice}/Items", "Success"),
        (
            "POST",
            f"/v8/RestoreSessions/{session}/Organization/Mailboxes/{alice}/Items/{mail['id']}/save",
            "Success",
        ),
        ("GET", f"/v8/Organizations/{two.globex.id}", "Success"),  # admitted, then a 404
        ("POST", "/v8/Jobs", "Failure"),
    ]
    assert {"Explore", "Save"} <= {e.action for e in trail}
    assert all(e.dialect == "vb365" for e in trail if e.action == "OperatorRequest")


# ---- Enterprise Manager ---------------------------------------------------------------------


def _em_logon(client: TestClient, user: str, password: str) -> dict[str, str]:
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    response = client.post(
        "/api/sessionMngr/?v=latest", headers={"Authorization": f"Basic {basic}"}
    )
    assert response.status_code == 201, response.text
    return {
        "X-RestSvcSessionId": response.headers["X-RestSvcSessionId"],
        "Accept": "application/json",
    }


def test_the_enterprise_manager_dialect_applies_the_same_roles(
    two: World, client: TestClient, ctx: Context
) -> None:
    operator(client, ctx)
    give_role(two.admin, two.acme, ["operator"])
    headers = _em_logon(client, "operator", OPERATOR_PASSWORD)
    listed = client.get("/api/restorePoints", headers=headers)
    assert listed.status_code == 200, listed.text
    assert two.acme.point in listed.text and two.globex.point not in listed.text
    assert client.get(f"/api/restorePoints/{two.acme.point}", headers=headers).status_code == 200
    assert client.get(f"/api/restorePoints/{two.globex.point}", headers=headers).status_code == 404
    for path in ("/api/jobs", "/api/backups", "/api/repositories", "/api/query?type=Job"):
        assert client.get(path, headers=headers).status_code == 403, path
    trail = [e for e in audit.events(ctx) if e.action == "OperatorRequest" and e.dialect == "em"]
    assert len(trail) == 3 + 4 and sum(e.outcome == "Failure" for e in trail) == 4
    # a global ReadOnly user is unaffected
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    reader = _em_logon(client, "reader", READER_PASSWORD)
    assert two.globex.point in client.get("/api/restorePoints", headers=reader).text


def test_the_cli_adds_a_user_without_a_global_role_who_may_then_be_an_operator(
    orgs: World, client: TestClient, ctx: Context, data_dir: Path
) -> None:
    command = ["admin", "user", "add", "olga", "--role", "None", "--password", OPERATOR_PASSWORD]
    added = CliRunner().invoke(main.app, [*command, "--data-dir", str(data_dir)])
    assert added.exit_code == 0, added.output
    assert "Added user 'olga' (None)" in added.output
    olga = Api(client, login(client, "olga", OPERATOR_PASSWORD))
    assert olga.get("/v8/Organizations").status_code == 403
    give_role(orgs.admin, orgs.acme, ["olga"])
    assert [o["id"] for o in olga.rows("/v8/Organizations")] == [orgs.acme.id]


def test_a_scoped_request_costs_the_same_statements_whatever_the_number_of_roles(
    orgs: World, client: TestClient, ctx: Context
) -> None:
    """Reading an operator's scope is two queries, however many roles and items it has."""
    op = operator(client, ctx)

    def add_roles(first: int, last: int) -> None:
        for n in range(first, last):
            org = orgs.acme if n % 2 else orgs.globex
            give_role(orgs.admin, org, ["operator"], selected=list(org.users), name=f"r{n}")

    def cost() -> int:
        with catalog_work(ctx) as work:
            assert op.get("/v8/Organizations").status_code == 200
        return work.count

    add_roles(0, 2)
    cost()  # warm-up: the first request after the login reads the token's user once
    few = cost()
    add_roles(2, 8)
    assert cost() == few
    assert len(orgs.admin.get("/v8/RbacRoles").json()) == 8
