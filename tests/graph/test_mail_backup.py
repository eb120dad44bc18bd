"""MailboxBackup against the fake over HTTPS: the folder tree (hidden and nested folders), every
message once as its MIME, the item format, and the requests it costs (full and no-change)."""

from __future__ import annotations

import time

import pytest

from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.mail_backup import folder_key, is_carried, message_key
from tests.graph.mail_fixtures import Org, as_previous, org, read_mailbox
from tests.graph_fake.mailbox import Mailbox

__all__ = ["org"]


def _tree(org: Org, n: int) -> tuple[GraphUser, Mailbox, dict[str, bytes]]:
    """A mailbox with a hidden folder, a nested folder, and ``n`` messages spread over them."""
    user, mailbox = org.add_user("adele")
    with org.fake.state.lock:
        inbox = mailbox.folder("inbox")
        assert inbox is not None
        projects = mailbox.add_folder("Projects/2026", parent=inbox)
        hidden = mailbox.add_folder("Hidden", hidden=True)
    ids = org.add_messages(mailbox, inbox, n // 2)
    ids += org.add_messages(mailbox, projects, n // 4)
    ids += org.add_messages(mailbox, hidden, n - len(ids))
    mimes = {message_key(user.name, "primary", i): mailbox.messages[i].mime for i in ids}
    return user, mailbox, mimes


def test_full_backup_gives_every_message_once_as_its_mime(org: Org) -> None:
    user, mailbox, mimes = _tree(org, 40)
    run = read_mailbox(org, user, [])
    mail = run.mail()
    assert len(mail) == len([i for i in run.items if i.kind == "mail"]) == 40
    assert run.contents == mimes  # the stored bytes are the fake's MIME, byte for byte
    assert run.skipped == []
    inbox = mailbox.folder("inbox")
    assert inbox is not None
    first = next(i for i in mail.values() if i.meta["folder_id"] == inbox.id)
    assert first.path == "Inbox" and first.meta["role"] == "inbox"
    assert first.meta["source"] == "graph" and first.meta["mailbox"] == "primary"
    assert first.meta["message_id"].startswith("<m") and first.meta["subject"].startswith("Inbox")
    assert first.meta["from"].startswith("Sender") and first.meta["date"]
    assert first.meta["received"].endswith("Z") and first.meta["flags"] == ""
    assert first.meta["flag_status"] == "notFlagged" and first.meta["categories"] == []
    assert first.size == len(run.contents[first.key]) and first.mode == 0o600
    nested = [i for i in mail.values() if i.meta["folder_names"] == ["Inbox", "Projects/2026"]]
    assert len(nested) == 10 and nested[0].path == "Inbox/Projects\u22152026"  # a name is data
    assert any(i.path == "Hidden" for i in mail.values())
    folders = run.folders()
    assert folder_key(user.name, "primary", inbox.id) in folders
    state = folders[folder_key(user.name, "primary", inbox.id)].meta
    assert state["complete"] is True and state["messages"] == 20 and state["delta_link"]
    assert {f.meta["role"] for f in folders.values()} >= {"inbox", "drafts", "sentitems"}


@pytest.mark.parametrize("n", [1000, 4000])
def test_requests_per_message_on_a_full_backup(org: Org, n: int) -> None:
    user, mailbox = org.add_user("bulk")
    org.add_messages(mailbox, "inbox", n)
    started = time.monotonic()
    run = read_mailbox(org, user, [])
    assert len(run.mail()) == n
    # 1 folder list + 1 $batch (roles) + 5 deltas (+1 page per 500) + n $value
    assert org.requests.kinds["$value"] == n
    assert run.requests / n <= 1.01, (run.requests, org.requests.kinds)
    print(f"{n} messages in {time.monotonic() - started:.1f}s")


@pytest.mark.parametrize("n", [100, 400])
def test_a_no_change_incremental_costs_one_request_per_folder_plus_two(org: Org, n: int) -> None:
    user, _, _ = _tree(org, n)
    previous = as_previous(read_mailbox(org, user, []))
    again = read_mailbox(org, user, previous)
    folders = len(again.folders())
    assert folders == 7  # 5 well-known, Projects/2026, Hidden
    # the top-level list, Inbox's children, one delta per folder; no $batch, no $value
    assert again.requests == folders + 2, org.requests.kinds
    assert org.requests.kinds["$value"] == 0
    assert all(is_carried(i) for i in again.mail().values())
    assert {i.key: i.change_token for i in again.items if i.kind == "mail"} == {
        i.key: i.meta["change_token"] for i in previous if i.kind == "mail"
    }
