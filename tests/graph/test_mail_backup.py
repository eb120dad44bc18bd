"""MailboxBackup against the fake over HTTPS: the folder tree (hidden and nested folders), every
message once as its MIME, the item format, and the requests it costs (full and no-change)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.mail_backup import WELL_KNOWN, folder_key, is_carried, message_key
from tests.graph.mail_fixtures import Org, Run, as_previous, org, read_mailbox
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


def _graph_count(org: Org, user: GraphUser) -> int:
    """Requests the fake counted against the mailbox: Graph's own count, every inner request
    of a $batch included (what the 10,000-per-10-minutes budget is spent by)."""
    with org.fake.state.lock:
        counted = org.fake.state.throttle.requests.items()
        return sum(n for (_, mailbox), n in counted if mailbox == user.graph_id)


def _bench_shape(org: Org, n: int) -> GraphUser:
    """bench/graph.py's mailbox: ``n`` messages over Inbox and two folders of its own, beside
    the well-known folders every mailbox has (empty here)."""
    user, mailbox = org.add_user("bulk")
    with org.fake.state.lock:
        inbox = mailbox.folder("inbox")
        assert inbox is not None
        folders = [inbox, mailbox.add_folder("Projects"), mailbox.add_folder("Receipts")]
    for index, folder in enumerate(folders):
        org.add_messages(mailbox, folder, n // 3 + (index < n % 3))
    return user


def _one_folder(org: Org, n: int) -> GraphUser:
    user, mailbox = org.add_user("bulk")
    org.add_messages(mailbox, "inbox", n)
    return user


@pytest.mark.parametrize(
    ("shape", "n"), [(_one_folder, 1000), (_one_folder, 4000), (_bench_shape, 1000)]
)
def test_requests_per_message_on_a_full_backup(
    org: Org, shape: Callable[[Org, int], GraphUser], n: int
) -> None:
    user = shape(org, n)
    started = time.monotonic()
    run = read_mailbox(org, user, [])
    assert len(run.mail()) == n
    # 1 folder list + 6 roles (one $batch) + one delta page per 500 in each non-empty folder
    # + n $value; no delta round for the empty well-known folders
    assert org.requests.kinds["$value"] == n
    spent = _graph_count(org, user)
    pages = sum(-(-len(f) // 500) for f in _members(run).values())
    assert spent == 1 + len(WELL_KNOWN) + pages + n, (spent, org.requests.kinds)
    assert spent / n <= 1.01, (spent, org.requests.kinds)
    print(f"{n} messages in {time.monotonic() - started:.1f}s")


def _members(run: Run) -> dict[str, list[str]]:
    """Message keys per folder id, for the non-empty folders."""
    found: dict[str, list[str]] = {}
    for item in run.mail().values():
        found.setdefault(str(item.meta["folder_id"]), []).append(item.key)
    return found


@pytest.mark.parametrize("n", [100, 400])
def test_a_no_change_incremental_costs_one_request_per_folder_plus_two(org: Org, n: int) -> None:
    user, _, _ = _tree(org, n)
    previous = as_previous(read_mailbox(org, user, []))
    before = _graph_count(org, user)
    again = read_mailbox(org, user, previous)
    folders = len(again.folders())
    assert folders == 7  # 5 well-known, Projects/2026, Hidden
    # the top-level list, Inbox's children, one delta per non-empty folder (Inbox,
    # Projects/2026, Hidden); no $batch, no $value, nothing for the 4 empty folders
    assert again.requests == _graph_count(org, user) - before == 2 + 3 <= folders + 2
    assert org.requests.kinds["$value"] == 0
    assert all(is_carried(i) for i in again.mail().values())
    assert {i.key: i.change_token for i in again.items if i.kind == "mail"} == {
        i.key: i.meta["change_token"] for i in previous if i.kind == "mail"
    }
