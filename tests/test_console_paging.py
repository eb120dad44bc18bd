"""Console lists that used to show only their first rows, now paged 25 at a time and searched
on the server (issue 16: "no page loads more than it shows"): an organization's users (an
Office365 organization's paged in its catalog cache) and the users a role form offers."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from keepstone.domain.scope import stable_user_id
from keepstone.services import catalog
from keepstone.services.context import Context
from keepstone.store.tables import M365User, Organization
from tests import listing_rows as bulk
from tests.conftest import Api
from tests.listing_rows import insert_all
from tests.test_console import console_login
from tests.work import catalog_work

USER_ROW = re.compile(r"<tr><td>(user\d{4})</td>")


def _user_dirs(root: Path, first: int, count: int) -> None:
    for n in range(first, first + count):
        (root / f"user{n:04}" / "Mail").mkdir(parents=True)


def test_an_organizations_users_are_paged_and_searched(
    client: TestClient, ctx: Context, org: dict[str, Any], org_dir: Path
) -> None:
    """The organization page shows 25 of its users and a next page, the same catalog work for
    N and 4N users, and finds a user by part of its name."""
    console_login(client)
    n = 30
    _user_dirs(org_dir, 0, n)
    path = f"/organizations/{org['id']}"
    client.get(path)  # warm: the logon session's use is recorded at most once a second

    def work() -> tuple[int, int, list[str]]:
        with catalog_work(ctx) as counted:
            page = client.get(path)
        assert page.status_code == 200 and 'aria-label="Pages of users"' in page.text
        return counted.count, counted.rows_loaded, USER_ROW.findall(page.text)

    small = work()
    _user_dirs(org_dir, n, 3 * n)
    large = work()
    assert small[:2] == large[:2]
    assert small[2] == large[2] == [f"user{k:04}" for k in range(24)]  # after alice
    second = USER_ROW.findall(client.get(f"{path}?users_page=2").text)
    assert second == [f"user{k:04}" for k in range(24, 49)]
    found = client.get(f"{path}?user=ER011").text
    assert USER_ROW.findall(found) == [f"user{k:04}" for k in range(110, 120)]
    assert 'value="ER011"' in found


def test_an_office365_organizations_users_are_paged_in_the_catalog(ctx: Context) -> None:
    """An Office365 organization's users come from its catalog cache one window at a time:
    the same statements and one window of rows for N and 4N cached users."""
    org_id = str(uuid.uuid4())
    insert_all(
        ctx,
        Organization,
        [
            {
                "id": org_id,
                "name": "m365.test",
                "type": "Office365",
                "description": "",
                "settings": {},
                "created_at": ctx.clock.now(),
            }
        ],
    )

    def add(first: int, count: int) -> None:
        insert_all(
            ctx,
            M365User,
            (
                {
                    "organization_id": org_id,
                    "graph_id": str(uuid.uuid4()),
                    "onprem_guid": "0" * 36,
                    "name": f"user{k:04}@m365.test",
                    "display_name": f"User {k}",
                    "mail": None,
                    "kind": "User",
                    "location": "Cloud",
                    "office": None,
                    "onprem_sid": None,
                    "licenses": [],
                    "has_mailbox": True,
                    "has_archive": False,
                    "has_onedrive": k % 2 == 0,
                    "drive_id": None,
                    "drive_url": None,
                }
                for k in range(first, first + count)
            ),
        )

    def work(search: str = "", offset: int = 25) -> tuple[int, int, list[str]]:
        with catalog_work(ctx) as counted:
            users = catalog.page_organization_users(ctx, org_id, offset, 26, search)
        return counted.count, counted.rows_loaded, [u.name for u in users]

    add(0, 60)
    small = work()
    add(60, 180)
    large = work()
    assert small[:2] == large[:2] and small[1] <= 26 + 1
    assert large[2] == [f"user{k:04}@m365.test" for k in range(25, 51)]
    assert work("R012", 0)[2] == [f"user{k:04}@m365.test" for k in range(120, 130)]
    assert work("%", 0)[2] == []  # a LIKE wildcard is a character, not a pattern


OPERATOR = re.compile(r'name="operator" value="([0-9a-f-]+)"( checked)?> (op\d{4})<')
SCOPE = re.compile(r'name="selected" value="([^"]+)"( checked)? aria-label="Select ([^"]+)"')


def test_a_role_forms_users_and_operators_are_paged_and_searched(
    client: TestClient, api: Api, ctx: Context, org: dict[str, Any], org_dir: Path
) -> None:
    """The role form offers 25 operators and 25 organization users a page, found by name on
    the server; what the role already holds is shown (checked) whatever the page, and the
    form's catalog work is the same for N and 4N users."""
    n = 30
    _user_dirs(org_dir, 0, n)
    bulk.add_users(ctx, [f"op{k:04}" for k in range(n)], ["None"], "not a hash")
    body = {
        "name": "far",
        "access": "Restore",
        "roleType": "SpecificObjects",
        "operators": [{"type": "User", "user": {"name": "op0029"}}],
        "selectedItems": [{"type": "User", "id": stable_user_id(org["id"], "user0029")}],
    }
    created = api.post(f"/v8/Organizations/{org['id']}/RbacRoles", body)
    assert created.status_code == 201, created.text
    console_login(client)
    path = f"/roles/{created.json()['id']}"
    client.get(path)  # warm: the logon session's use is recorded at most once a second

    def work() -> tuple[int, int, str]:
        with catalog_work(ctx) as counted:
            page = client.get(path)
        assert page.status_code == 200
        return counted.count, counted.rows_loaded, page.text

    small = work()
    _user_dirs(org_dir, n, 3 * n)
    bulk.add_users(ctx, [f"op{k:04}" for k in range(n, 4 * n)], ["None"], "not a hash")
    large = work()
    assert small[:2] == large[:2] and small[1] <= 2 * 26 + 20
    operators = [(name, bool(checked)) for _id, checked, name in OPERATOR.findall(large[2])]
    assert operators[0] == ("op0029", True)  # the role's, then the first page (less it)
    assert operators[1:] == [(f"op{k:04}", False) for k in range(25) if k != 29]
    scope = [(name, bool(checked)) for _id, checked, name in SCOPE.findall(large[2])]
    assert scope[0] == ("user0029", True)
    assert len(scope) == 1 + 25 and ("alice", False) in scope
    assert 'aria-label="Pages of operators"' in large[2]
    assert 'aria-label="Pages of organization users"' in large[2]

    found = client.get(f"{path}?operator=P011&user=ER011").text
    assert [name for *_, name in OPERATOR.findall(found)] == ["op0029"] + [
        f"op{k:04}" for k in range(110, 120)
    ]
    assert [name for *_, name in SCOPE.findall(found)] == ["user0029"] + [
        f"user{k:04}" for k in range(110, 120)
    ]
    following = client.get(f"{path}?operators_page=2").text
    assert [name for *_, name in OPERATOR.findall(following)][1:3] == ["op0025", "op0026"]
