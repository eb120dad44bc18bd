"""The vendor's Exchange restore options through the API (the fake Graph behind the server):
each is carried out (``markRestoredAsUnread``, ``excludeDrafts``, ``excludeDeletedItems``,
``changedItems``, ``deletedItems``, v8's ``items``) or refused with a 400 naming it before
anything is written (``casServer``, ``impersonationAccountName``, a national ``officeRegion``,
another ``officeOrganizationName``, mail options on OneDrive documents)."""

from __future__ import annotations

from typing import Any

from tests.graph.org_fixtures import OrgEnv, _org_fake, _org_server, org_env
from tests.graph.restore_fixtures import semantic, tree
from tests.graph.test_restore_target_api import OTHER, USER, _backed_up, _mailbox

__all__ = ["_org_fake", "_org_server", "org_env"]

FOLDERS = (
    {"folder": ("Drafts",), "role": "drafts", "is_draft": True},
    {"folder": ("Deleted Items",), "role": "deleteditems"},
    {"folder": ("Inbox",), "role": "inbox"},
)


def _spread(n: int) -> dict[str, Any]:
    return FOLDERS[n % 3]


def _subjects(messages: list[Any]) -> list[str]:
    return sorted(str(semantic(m.mime)["Subject"]) for m in messages)


def test_mark_restored_as_unread(org_env: OrgEnv) -> None:
    _, _, mailbox = _backed_up(org_env, 4)  # messages 0 and 2 were read
    done = org_env.api.post(
        f"{mailbox}/restoreTo", {"mailbox": OTHER, "markRestoredAsUnread": True}
    )
    assert done.status_code == 200 and done.json()["restoredItemsCount"] == 4, done.text
    control = org_env.api.post(f"{mailbox}/restore", {"markRestoredAsUnread": False})
    assert control.json()["restoredItemsCount"] == 4
    assert [m.is_read for m in tree(_mailbox(org_env, OTHER))["Inbox"]] == [False] * 4
    assert sorted(m.is_read for m in tree(_mailbox(org_env, USER))["Inbox"]) == [0, 0, 1, 1]


def test_exclude_drafts_and_deleted_items(org_env: OrgEnv) -> None:
    _, _, mailbox = _backed_up(org_env, 6, _spread)
    body = {"mailbox": OTHER, "excludeDrafts": True, "excludeDeletedItems": True}
    done = org_env.api.post(f"{mailbox}/restoreTo", body)
    assert done.status_code == 200, done.text
    assert (done.json()["restoredItemsCount"], done.json()["skippedItemsCount"]) == (2, 4)
    assert sorted(tree(_mailbox(org_env, OTHER))) == ["Inbox"]
    only_drafts = org_env.api.post(f"{mailbox}/restore", {"excludeDeletedItems": True})
    assert only_drafts.json()["restoredItemsCount"] == 4
    assert sorted(tree(_mailbox(org_env, USER))) == ["Drafts", "Inbox"]


def test_changed_items_false_restores_only_what_is_missing_and_deleted_items_false_the_rest(
    org_env: OrgEnv,
) -> None:
    _, session, mailbox = _backed_up(org_env, 4)
    items = org_env.api.rows(f"{mailbox}/Items")
    first = org_env.api.post(f"{mailbox}/Items/restore", {"items": [{"id": items[0]["id"]}]})
    assert first.json()["restoredItemsCount"] == 1, first.text
    missing = org_env.api.post(f"{mailbox}/restore", {"changedItems": False})
    assert (missing.json()["restoredItemsCount"], missing.json()["skippedItemsCount"]) == (3, 1)
    inbox = tree(_mailbox(org_env, USER))["Inbox"]
    assert len(inbox) == 4  # each once: the one already there was not written again
    gone = inbox[0]
    _mailbox(org_env, USER).delete_message(gone.id)
    present = org_env.api.post(
        f"{mailbox}/restore", {"deletedItems": False, "collisionPolicy": "overwrite"}
    )
    assert (present.json()["restoredItemsCount"], present.json()["skippedItemsCount"]) == (3, 1)
    after = tree(_mailbox(org_env, USER))["Inbox"]
    assert len(after) == 3 and semantic(gone.mime)["Subject"] not in _subjects(after)
    assert session


def test_options_that_cannot_be_carried_out_are_400s_naming_them(org_env: OrgEnv) -> None:
    _, _, mailbox = _backed_up(org_env, 2)
    drives = mailbox.split("/Mailboxes/")[0] + "/OneDrives"
    for url, body, prop in (
        ("restore", {"changedItems": False, "deletedItems": False}, "deletedItems"),
        ("restoreTo", {"mailbox": OTHER, "casServer": "cas.contoso.local"}, "casServer"),
        ("restore", {"impersonationAccountName": "admin"}, "impersonationAccountName"),
        ("restore", {"officeRegion": "China"}, "officeRegion"),
        (
            "restore",
            {"officeOrganizationName": "fabrikam.onmicrosoft.com"},
            "officeOrganizationName",
        ),
        ("restore", {"ids": ["a"], "items": [{"id": "a"}]}, "items"),
        ("restore", {"MarkRestoredAsUnread": "yes"}, "markRestoredAsUnread"),
        ("restore", {"officeRegion": 1}, "officeRegion"),
    ):
        refused = org_env.api.post(f"{mailbox}/{url}", body)
        assert refused.status_code == 400, (body, refused.text)
        assert prop in refused.json()["message"], refused.text
    drive = next(d["id"] for d in org_env.api.rows(drives))
    for body, prop in (
        ({"markRestoredAsUnread": True}, "markRestoredAsUnread"),
        ({"excludeDrafts": True}, "excludeDrafts"),
        ({"deletedItems": False}, "deletedItems"),
    ):
        refused = org_env.api.post(f"{drives}/{drive}/restore", body)
        assert refused.status_code == 400 and prop in refused.json()["message"], refused.text
    assert _mailbox(org_env, USER).messages == {} and _mailbox(org_env, OTHER).messages == {}


def test_options_that_hold_trivially_or_name_this_organization_are_accepted(
    org_env: OrgEnv,
) -> None:
    org, _, mailbox = _backed_up(org_env, 2)
    body = {
        "officeOrganizationName": org["exchangeOnlineSettings"]["officeOrganizationName"],
        "officeRegion": "Worldwide",
        "excludeInPlaceHoldItems": True,
        "excludeLitigationHoldItems": False,
        "changedItems": True,
        "deletedItems": True,
    }
    done = org_env.api.post(f"{mailbox}/restore", body)
    assert done.status_code == 200 and done.json()["restoredItemsCount"] == 2, done.text
