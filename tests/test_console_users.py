"""The console's users and roles page (issue 16 item 2): users added, given a role, revoked and
removed with the CLI's rules; organization roles created, edited and deleted with the API's
rules and messages, checked through the API; every change audited as the console's."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from keepstone.services import audit, auth
from keepstone.services.context import Context
from keepstone.store.tables import RbacRole
from tests import listing_rows as bulk
from tests.conftest import READER_PASSWORD, Api, login
from tests.test_console import console_login, csrf_of
from tests.work import catalog_work

OPERATOR_PASSWORD = "operator password"


def test_users_are_added_given_a_role_revoked_and_removed(client: TestClient, ctx: Context) -> None:
    csrf = console_login(client)
    page = client.get("/users")
    assert page.status_code == 200 and "<td>admin</td>" in page.text
    short = {"csrf": csrf, "name": "olivia", "password": "secret!", "role": "None"}
    refused = client.post("/users/new", data=short)
    assert refused.status_code == 400
    assert "password must be at least 8 characters" in refused.text
    assert "secret!" not in refused.text and 'value="olivia"' in refused.text
    assert [u.name for u in auth.list_users(ctx)] == ["admin"]
    unforged = client.post("/users/new", data=short | {"password": OPERATOR_PASSWORD, "csrf": ""})
    assert unforged.status_code == 403 and len(auth.list_users(ctx)) == 1

    added = client.post(
        "/users/new", data=short | {"password": OPERATOR_PASSWORD}, follow_redirects=False
    )
    assert added.status_code == 303
    listed = client.get("/users").text
    assert "<td>olivia</td>" in listed and OPERATOR_PASSWORD not in listed
    again = client.post("/users/new", data=short | {"password": OPERATOR_PASSWORD})
    assert again.status_code == 400 and "user &#39;olivia&#39; already exists" in again.text

    changed = client.post("/users/role", data={"csrf": csrf, "user": "olivia", "role": "ReadOnly"})
    assert changed.status_code == 200  # the page again, after the redirect
    assert {u.name: u.role for u in auth.list_users(ctx)}["olivia"] == "ReadOnly"

    token = login(client, "olivia", OPERATOR_PASSWORD)
    olivia = Api(client, token)
    assert olivia.get("/v6/Organizations").status_code == 200
    assert auth.authenticate(ctx, token).role is auth.Role.READ_ONLY  # now remembered
    client.post("/users/role", data={"csrf": csrf, "user": "olivia", "role": "Administrator"})
    assert auth.authenticate(ctx, token).role is auth.Role.ADMINISTRATOR  # at once
    client.post("/users/role", data={"csrf": csrf, "user": "olivia", "role": "ReadOnly"})
    client.post("/users/revoke", data={"csrf": csrf, "user": "olivia"})
    assert olivia.get("/v6/Organizations").status_code == 401

    last = client.post("/users/role", data={"csrf": csrf, "user": "admin", "role": "ReadOnly"})
    assert last.status_code == 409 and "last Administrator" in last.text
    alone = client.post("/users/remove", data={"csrf": csrf, "user": "admin"})
    assert alone.status_code == 409 and "last Administrator" in alone.text
    removed = client.post("/users/remove", data={"csrf": csrf, "user": "olivia"})
    assert removed.status_code == 200 and "<td>olivia</td>" not in removed.text
    mine = [
        (e.action, e.subject, e.dialect)
        for e in audit.events(ctx, limit=20)
        if e.subject == "olivia" and e.action.startswith(("User", "Revoke"))
    ]
    assert mine == [
        ("UserRemoval", "olivia", "console"),
        ("RevokeTokens", "olivia", "console"),
        ("UserRoleChange", "olivia", "console"),
        ("UserRoleChange", "olivia", "console"),
        ("UserRoleChange", "olivia", "console"),
        ("UserAddition", "olivia", "console"),
    ]


def test_a_read_only_user_sees_users_and_roles_and_an_operator_does_not(
    client: TestClient, ctx: Context
) -> None:
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    auth.add_user(ctx, "operator", OPERATOR_PASSWORD, auth.Role.NONE)
    csrf = console_login(client, "reader", READER_PASSWORD)
    page = client.get("/users").text
    assert "<td>operator</td>" in page and "Users and roles" in page
    assert "/users/remove" not in page and "Add a user" not in page
    refused = client.post("/users/remove", data={"csrf": csrf, "user": "operator"})
    assert refused.status_code == 403 and "ReadOnly role" in refused.text
    assert len(auth.list_users(ctx)) == 3
    client.cookies.clear()
    form = client.get("/login")
    entered = client.post(
        "/login",
        data={"csrf": csrf_of(form.text), "username": "operator", "password": OPERATOR_PASSWORD},
        follow_redirects=False,
    )
    assert entered.status_code == 303
    hidden = client.get("/users")
    assert hidden.status_code == 403 and "<td>reader</td>" not in hidden.text
    assert client.get("/roles/new").status_code == 403


def _role_form(csrf: str, org_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "csrf": csrf,
        "organizationId": org_id,
        "name": "Helpdesk",
        "description": "restores for the help desk",
        "access": "Restore",
        "roleType": "SpecificObjects",
    } | changes


def test_an_organization_role_made_in_the_console_is_the_apis(
    client: TestClient, ctx: Context, api: Api, org: dict[str, Any]
) -> None:
    operator = auth.add_user(ctx, "operator", OPERATOR_PASSWORD, auth.Role.NONE)
    csrf = console_login(client)
    blank = client.get(f"/roles/new?organization={org['id']}").text
    assert "alice" in blank and 'value="' + operator.id + '"' in blank
    alice = api.get(f"/v6/Organizations/{org['id']}/Users").json()["results"][0]["id"]

    entire = _role_form(csrf, org["id"], roleType="EntireOrganization", selected=alice)
    refused = client.post("/roles/new", data=entire)
    sent = {
        "name": "Helpdesk",
        "roleType": "EntireOrganization",
        "selectedItems": [{"type": "User", "id": alice}],
    }
    from_api = api.post(f"/v6/Organizations/{org['id']}/RbacRoles", sent)
    assert refused.status_code == 400 and from_api.status_code == 400
    assert from_api.json()["message"] in refused.text.replace("&#39;", "'")
    assert 'value="Helpdesk"' in refused.text
    assert api.get(f"/v6/Organizations/{org['id']}/RbacRoles").json() == []

    made = client.post(
        "/roles/new",
        data=_role_form(csrf, org["id"], operator=operator.id, selected=alice),
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    role_id = made.headers["location"].rsplit("/", 1)[1]
    body = api.get(f"/v6/RbacRoles/{role_id}").json()
    assert (body["name"], body["roleType"], body["access"]) == (
        "Helpdesk",
        "SpecificObjects",
        "Restore",
    )
    operators = api.get(f"/v6/RbacRoles/{role_id}/operators").json()
    assert [o["id"] for o in operators] == [operator.id]
    selected = api.get(f"/v6/RbacRoles/{role_id}/selectedItems").json()
    assert [s["id"] for s in selected] == [alice]
    page = client.get(f"/roles/{role_id}").text
    assert page.count("checked") >= 4  # access, operator, scope type, alice

    edited = client.post(
        f"/roles/{role_id}",
        data=_role_form(
            csrf, org["id"], name="Viewers", access="ReadOnly", roleType="EntireOrganization"
        ),
        follow_redirects=False,
    )
    assert edited.status_code == 303, edited.text
    body = api.get(f"/v6/RbacRoles/{role_id}").json()
    assert (body["name"], body["roleType"], body["access"]) == (
        "Viewers",
        "EntireOrganization",
        "ReadOnly",
    )
    assert api.get(f"/v6/RbacRoles/{role_id}/operators").json() == []
    assert "Viewers" in client.get(f"/users?organization={org['id']}").text
    promoted = client.post(
        "/users/role", data={"csrf": csrf, "user": "operator", "role": "Administrator"}
    )
    assert promoted.status_code == 200  # no longer an operator of any role

    gone = client.post(f"/roles/{role_id}/delete", data={"csrf": csrf}, follow_redirects=False)
    assert gone.status_code == 303
    assert api.get(f"/v6/RbacRoles/{role_id}").status_code == 404
    changes = [
        (e.details.get("change"), e.dialect)
        for e in audit.events(ctx, limit=30)
        if e.action == "RoleChange"
    ]
    assert changes == [("removed", "console"), ("changed", "console"), ("created", "console")]


def test_an_operator_of_a_role_gets_no_global_role_before_leaving_it(
    client: TestClient, ctx: Context, org: dict[str, Any]
) -> None:
    operator = auth.add_user(ctx, "operator", OPERATOR_PASSWORD, auth.Role.NONE)
    csrf = console_login(client)
    form = _role_form(csrf, org["id"], roleType="EntireOrganization", operator=operator.id)
    assert client.post("/roles/new", data=form, follow_redirects=False).status_code == 303
    refused = client.post(
        "/users/role", data={"csrf": csrf, "user": "operator", "role": "ReadOnly"}
    )
    assert refused.status_code == 409 and "operator of the organization role" in refused.text
    assert {u.name: u.role for u in auth.list_users(ctx)}["operator"] == "None"


def _add_users(ctx: Context, first: int, count: int) -> None:
    names = [f"user{n:04}" for n in range(first, first + count)]
    bulk.add_users(ctx, names, ["ReadOnly"], auth.hash_password(OPERATOR_PASSWORD))


def _add_roles(ctx: Context, org_id: str, first: int, count: int) -> None:
    bulk.insert_all(
        ctx,
        RbacRole,
        (
            {
                "id": str(uuid.uuid4()),
                "organization_id": org_id,
                "name": f"role{n:04}",
                "description": "",
                "role_type": "EntireOrganization",
                "access": "Restore",
                "created_at": ctx.clock.now(),
            }
            for n in range(first, first + count)
        ),
    )


def test_the_users_page_costs_the_same_for_n_and_4n_users(
    client: TestClient, ctx: Context, org: dict[str, Any]
) -> None:
    """The page shows one page of users and one of organization roles and reads one more of
    each, never the whole set."""
    console_login(client)
    n = 50
    _add_users(ctx, 0, n)
    _add_roles(ctx, org["id"], 0, n)
    client.get("/users")  # warm: the logon session's use is recorded at most once a second

    def work(path: str = "/users") -> tuple[int, int]:
        with catalog_work(ctx) as counted:
            page = client.get(path)
            assert page.status_code == 200 and "Next page" in page.text
            assert 'aria-label="Pages of roles"' in page.text
        return counted.count, counted.rows_loaded

    small = work()
    _add_users(ctx, n, 3 * n)
    _add_roles(ctx, org["id"], n, 3 * n)
    assert work() == small
    assert small[1] <= 2 * (25 + 1) + 10
    second = client.get(f"/users?organization={org['id']}&roles_page=2").text
    assert ">role0025<" in second and ">role0024<" not in second and ">role0050<" not in second
