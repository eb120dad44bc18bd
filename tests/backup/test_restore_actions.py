"""The v2-v5 ``/Action`` restore dialect (a v3/v4 self-service portal's requests) against a real
Local organization backed up by a real run: each action does what its v6 verb does."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from keepstone.proxy.worker import ProxyWorker
from keepstone.services.context import Context
from tests.conftest import Api, catalog_text
from tests.local_org import Organization, run_job


def portal_explore(api: Api, org_job: dict[str, Any], kind: str = "vex") -> str:
    """The portal's explore: organization ``/Action``, a dotted date, strings for booleans."""
    org = org_job["organization"]["id"]
    body = {
        "explore": {
            "datetime": "9999.12.05 17:39",
            "type": kind,
            "ShowAllVersions": "true",
            "ShowDeleted": "true",
        }
    }
    answer = api.post(f"/v4/Organizations/{org}/Action", body)
    assert answer.status_code == 201, answer.text  # the portal counts only 201 as success
    assert answer.json()["type"] == ("Vex" if kind == "vex" else "Veod")
    session: str = answer.json()["id"]
    return session


def owner(api: Api, session: str, collection: str, name: str) -> str:
    base = f"/v4/RestoreSessions/{session}/Organization/{collection}"
    found: str = next(o["id"] for o in api.rows(base) if o["name"] == name)
    return found


def items_of(api: Api, session: str, mailbox: str) -> dict[str, str]:
    base = f"/v4/RestoreSessions/{session}/Organization/Mailboxes/{mailbox}/Items?limit=100"
    return {i["subject"]: i["id"] for i in api.get(base).json()["results"]}


@pytest.fixture
def backed_up(api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker) -> dict[str, Any]:
    run_job(api, org_job, backup_proxy)
    return org_job


def test_organization_action_explore_answers_201_with_a_usable_session(
    api: Api, backed_up: dict[str, Any]
) -> None:
    session = portal_explore(api, backed_up)
    assert api.get(f"/v4/RestoreSessions/{session}").json()["state"] == "Working"
    alice = owner(api, session, "Mailboxes", "alice")
    assert "Quarterly report" in items_of(api, session, alice)
    drive_session = portal_explore(api, backed_up, "veod")
    assert owner(api, drive_session, "OneDrives", "alice")


def test_restore_to_the_original_place_puts_the_message_back_byte_for_byte(
    api: Api,
    organization: Organization,
    backed_up: dict[str, Any],
    ctx: Context,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = organization.contents()
    for path in (organization.root / "alice/Mail/.Sent/cur").iterdir():
        path.unlink()
    session = portal_explore(api, backed_up)
    alice = owner(api, session, "Mailboxes", "alice")
    item = items_of(api, session, alice)["Re: Lunch?"]
    base = f"/v4/RestoreSessions/{session}/Organization/Mailboxes/{alice}"
    # as the portal sends it: the account it signs in as, which a Local organization does not
    # need, and which is never where the message goes (bob's mailbox stays as it was)
    sign_in = {"userName": "bob", "userPassword": "bob's password"}
    answer = api.post(f"{base}/Items/{item}/Action", {"restoretoOriginallocation": sign_in})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["createdItemsCount"], answer.json()["restoredItemsCount"]) == (1, 1)
    assert organization.contents() == before
    assert "bob's password" not in catalog_text(ctx, data_dir) + caplog.text  # nowhere kept
    # the whole mailbox, the option spelt as the portal spells it: all there, nothing written
    options = {"changedItems": "true", "collisionPolicy": "skip"}
    again = api.post(f"{base}/Action", {"RestoreToOriginalLocation": options})
    assert again.status_code == 200, again.text
    assert (again.json()["restoredItemsCount"], again.json()["skippedItemsCount"]) == (0, 4)
    assert organization.contents() == before


def test_restore_to_another_user(
    api: Api, organization: Organization, backed_up: dict[str, Any]
) -> None:
    session = portal_explore(api, backed_up)
    alice = owner(api, session, "Mailboxes", "alice")
    wanted = items_of(api, session, alice)
    ids = [f'{{"Id": "{wanted[subject]}"}}, ' for subject in ("Quarterly report", "Old news")]
    # as the portal writes it, with commas before closing brackets, which the vendor's
    # Json.NET reads as nothing
    listed = "".join(ids)
    # the portal's whole body: where the vendor's server would sign in (a Local organization
    # is written through its own directory: taken, not used), and its options as strings
    target = (
        '"casServer": "outlook.office365.com", "mailbox": "bob", "folder": "From alice", '
        '"userName": "bob@example.test", "userPassword": "secret", "changedItems": "true", '
        '"deletedItems": "true", "markRestoredAsUnread": "true", "excludeDrafts": "false", '
        '"excludeDeletedItems": "false", "excludeInPlaceHoldItems": "true", '
        '"excludeLitigationHoldItems": "true", '
    )
    body = '{"restoreTo": {' + target + '"items": [' + listed + "], }, }"
    base = f"/v4/RestoreSessions/{session}/Organization/Mailboxes/{alice}"
    json_type = {"Content-Type": "application/json"}
    answer = api.post(f"{base}/Items/Action", content=body.encode(), headers=json_type)
    assert answer.status_code == 200, answer.text
    assert answer.json()["createdItemsCount"] == 2
    restored = sorted((organization.root / "bob/Mail/.From alice/cur").iterdir())
    subjects = {line for p in restored for line in p.read_bytes().decode().splitlines()}
    assert {"Subject: Quarterly report", "Subject: Old news"} <= subjects
    assert [path.name.rpartition(":2,")[2] for path in restored] == ["", ""]  # unread
    # without the option, as they were backed up: seen
    seen = {"mailbox": "bob", "folder": "Seen", "items": [{"id": wanted["Old news"]}]}
    assert api.post(f"{base}/Items/Action", {"restoreTo": seen}).status_code == 200
    (kept,) = (organization.root / "bob/Mail/.Seen/cur").iterdir()
    assert kept.name.endswith(":2,S")


def test_save_one_item_and_several_as_a_zip(api: Api, backed_up: dict[str, Any]) -> None:
    session = portal_explore(api, backed_up)
    alice = owner(api, session, "Mailboxes", "alice")
    wanted = items_of(api, session, alice)
    base = f"/v4/RestoreSessions/{session}/Organization/Mailboxes/{alice}"
    one = api.post(f"{base}/Items/{wanted['Lunch?']}/Action", {"save": {"asZip": "false"}})
    assert one.status_code == 200 and one.headers["content-type"] == "message/rfc822"
    assert b"Subject: Lunch?" in one.content
    listed = [{"id": wanted["Lunch?"]}, {"id": wanted["Quarterly report"]}]
    many = api.post(f"{base}/Items/Action", {"save": {"asZip": "true", "items": listed}})
    assert many.status_code == 200 and many.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(many.content)) as opened:
        assert sorted(opened.namelist()) == ["Inbox/Lunch_.eml", "Inbox/Quarterly report.eml"]


def test_onedrive_documents_restore_and_save(
    api: Api, organization: Organization, backed_up: dict[str, Any]
) -> None:
    before = organization.contents()
    (organization.root / "alice/OneDrive/Documents/plan.txt").unlink()
    session = portal_explore(api, backed_up, "veod")
    alice = owner(api, session, "OneDrives", "alice")
    base = f"/v4/RestoreSessions/{session}/Organization/OneDrives/{alice}"
    documents = {
        d["name"]: d["id"] for d in api.get(f"{base}/Documents?limit=100").json()["results"]
    }
    body = {
        "restoretoOriginallocation": {
            "DocumentVersion": "last",
            "Documents": [{"Id": documents["plan.txt"]}],
        }
    }
    answer = api.post(f"{base}/Documents/Action", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["restoredItemsCount"] == 1
    assert organization.contents() == before
    one = api.post(f"{base}/Documents/{documents['plan.txt']}/Action", {"save": {"asZip": "false"}})
    assert one.status_code == 200 and one.content == b"the plan\n" * 1000
    folder = api.post(f"{base}/Folders/any/Action", {"save": {}})
    assert folder.status_code == 400 and "folder" in folder.json()["message"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"savetoMsg": None}, "MSG"),
        ({"ExportToPst": {"items": []}}, "PST"),
        ({"sendTo": {}}, "'sendto' is not served"),
        ({"save": {}, "restoreTo": {"mailbox": "bob"}}, "exactly one action, not 2"),
        ({}, "exactly one action, not 0"),
        ({"save": {"asZip": "true"}}, "a whole mailbox or OneDrive"),
        # what only Graph's restores carry out
        ({"restoreTo": {"mailbox": "bob", "excludeDrafts": "true"}}, "excludeDrafts"),
        ({"restoreTo": {"mailbox": "bob", "changedItems": "false"}}, "changedItems"),
    ],
)
def test_refused_actions_change_nothing(
    api: Api,
    organization: Organization,
    backed_up: dict[str, Any],
    body: dict[str, Any],
    named: str,
) -> None:
    session = portal_explore(api, backed_up)
    alice = owner(api, session, "Mailboxes", "alice")
    before = organization.contents()
    answer = api.post(f"/v4/RestoreSessions/{session}/Organization/Mailboxes/{alice}/Action", body)
    assert answer.status_code == 400 and named in answer.json()["message"], answer.text
    assert organization.contents() == before


def test_the_action_dialect_is_absent_from_v6(api: Api, backed_up: dict[str, Any]) -> None:
    session = portal_explore(api, backed_up)
    alice = owner(api, session, "Mailboxes", "alice")
    base = f"/v6/RestoreSessions/{session}/Organization/Mailboxes/{alice}"
    assert api.post(f"{base}/Action", {"restoreTo": {"mailbox": "bob"}}).status_code == 404
    assert api.post(f"{base}/Items/Action", {"save": {}}).status_code == 404
    org = backed_up["organization"]["id"]
    assert api.post(f"/v6/Organizations/{org}/Action", {"explore": {}}).status_code == 404
    other = api.post(f"/v4/Organizations/{org}/Action", {"start": None})
    assert other.status_code == 400 and "explore" in other.json()["message"]
