"""The fake's mail routes: folders, message delta (paging, @removed, generations, 410), MIME."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keepstone.clock import ManualClock
from tests.graph.fake_client import graph_code
from tests.graph.fake_mail import SELECT, Mail, mime_of
from tests.graph_fake.server import FakeGraph


def test_folders_top_level_hidden_and_children(mail: Mail) -> None:
    with mail.fake.state.lock:
        inbox = mail.mailbox.folder("inbox")
        assert inbox is not None
        mail.mailbox.add_folder("Hidden", hidden=True)
        for n in range(12):
            mail.mailbox.add_folder(f"Project {n}", parent=inbox)
    visible = mail.get(f"{mail.base}/mailFolders").json()
    names = {f["displayName"] for f in visible["value"]}
    assert names == {"Inbox", "Drafts", "Sent Items", "Deleted Items", "Archive"}
    hidden = mail.get(f"{mail.base}/mailFolders?includeHiddenFolders=true").json()
    assert "Hidden" in {f["displayName"] for f in hidden["value"]}
    children = mail.get(f"{mail.base}/mailFolders/inbox/childFolders").json()
    assert len(children["value"]) == 10  # the default page is 10
    rest = mail.get(children["@odata.nextLink"]).json()
    assert len(rest["value"]) == 2 and "@odata.nextLink" not in rest
    assert all(f["parentFolderId"] == inbox.id for f in children["value"] + rest["value"])


def test_mailbox_and_folder_refusals(mail: Mail, graph_fake: FakeGraph) -> None:
    tenant = next(iter(graph_fake.state.tenants.values()))
    no_mailbox = graph_fake.state.add_user(tenant, "nomail")
    base = f"{graph_fake.graph_url}/v1.0/users"
    assert graph_code(mail.get(f"{base}/{no_mailbox.id}/mailFolders")) == (
        404,
        "MailboxNotEnabledForRESTAPI",
    )
    assert graph_code(mail.get(f"{base}/nobody/mailFolders")) == (404, "ErrorInvalidUser")
    missing = mail.get(f"{mail.base}/mailFolders/AAMkAGnothing/messages/delta")
    assert graph_code(missing) == (404, "ErrorItemNotFound")
    bad = mail.get(f"{mail.base}/mailFolders/inbox/messages/delta?$select=id,bogus")
    assert graph_code(bad)[0] == 400


@pytest.mark.parametrize("count", [25, 100])
def test_delta_pages_every_message_once(mail: Mail, count: int) -> None:
    ids = mail.add("inbox", count)
    url = f"{mail.base}/mailFolders/inbox/messages/delta?$select={SELECT}"
    entries, delta_link, requests = mail.delta_round(url)
    assert [e["id"] for e in entries] == ids  # complete, ordered, no duplicate
    assert requests == -(-count // 10)  # one request per page, no more
    assert set(entries[0]) == {"@odata.type", "@odata.etag", *SELECT.split(",")}
    again, _, requests = mail.delta_round(delta_link)
    assert again == [] and requests == 1  # a no-change incremental is one request


def test_delta_reports_changes_and_removals(mail: Mail) -> None:
    ids = mail.add("inbox", 5)
    _, delta_link, _ = mail.delta_round(f"{mail.base}/mailFolders/inbox/messages/delta")
    now = mail.fake.state.clock.now()
    with mail.fake.state.lock:
        mail.mailbox.update_message(ids[1], now, is_read=True)
        mail.mailbox.delete_message(ids[3])
        mail.mailbox.update_message(ids[1], now, flag_status="flagged")  # twice: reported once
    entries, _, _ = mail.delta_round(delta_link)
    assert [e["id"] for e in entries] == [ids[3], ids[1]]
    assert entries[0]["@removed"] == {"reason": "deleted"}
    assert entries[1]["isRead"] is True and entries[1]["flag"] == {"flagStatus": "flagged"}


def test_invalidated_and_stale_tokens_get_410(mail: Mail) -> None:
    mail.add("inbox", 3)
    url = f"{mail.base}/mailFolders/inbox/messages/delta"
    _, first_link, _ = mail.delta_round(url)
    _, second_link, _ = mail.delta_round(first_link)
    folder = mail.mailbox.folder("inbox")
    assert folder is not None
    with mail.fake.state.lock:
        mail.mailbox.invalidate_delta(folder.id)
    gone = mail.get(second_link)
    assert graph_code(gone) == (410, "SyncStateNotFound")
    assert gone.json()["error"]["message"].startswith(
        "The sync state generation is not found; generation=2;[highest=12]"
    )
    # Only the last 3 generations are kept: a link four rounds old is refused as well.
    _, link, _ = mail.delta_round(url)
    old = link
    for _ in range(3):
        _, link, _ = mail.delta_round(link)
    assert graph_code(mail.get(old)) == (410, "SyncStateNotFound")
    assert mail.get(link).status_code == 200
    forged = link.replace("$deltatoken=", "$deltatoken=x")
    assert graph_code(mail.get(forged)) == (400, "SyncStateInvalid")


def test_replays_repeat_items_a_client_must_merge(mail: Mail) -> None:
    ids = mail.add("inbox", 25)
    mail.fake.state.delta_replays = True
    entries, _, _ = mail.delta_round(f"{mail.base}/mailFolders/inbox/messages/delta")
    seen = [e["id"] for e in entries]
    assert len(seen) == 27 and list(dict.fromkeys(seen)) == ids


def test_mime_and_json_message(mail: Mail) -> None:
    (message_id,) = mail.add("inbox", 1)
    mime = mail.get(f"{mail.base}/messages/{message_id}/$value")
    assert mime.status_code == 200 and mime.content == mime_of(0)
    assert mime.headers["content-type"].startswith("text/plain")
    one = mail.get(f"{mail.base}/messages/{message_id}?$select=subject").json()
    assert one["subject"] == "message 0" and set(one) == {"@odata.etag", "id", "subject"}
    assert graph_code(mail.get(f"{mail.base}/messages/{message_id.lower()}")) == (
        404,
        "ErrorItemNotFound",
    )  # ids are case-sensitive
    clock = mail.fake.state.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(hours=2))
    expired = mail.get(f"{mail.base}/messages/{message_id}/$value")
    assert graph_code(expired) == (401, "InvalidAuthenticationToken")


def test_mailbox_settings_tell_shared_mailboxes(mail: Mail) -> None:
    assert mail.get(f"{mail.base}/mailboxSettings").json()["userPurpose"] == "user"
    mail.mailbox.purpose = "shared"
    settings = mail.get(f"{mail.base}/mailboxSettings").json()
    archive = mail.mailbox.folder("archive")
    assert archive is not None
    assert settings["userPurpose"] == "shared" and settings["archiveFolder"] == archive.id
