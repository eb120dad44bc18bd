"""MailboxBackup's incremental runs against the fake: adds, deletes, flag and read changes,
moves (ImmutableId), lost sync states (410) and delta replays (never a duplicate, never a lost
message, a stored message never downloaded again), per-message and per-mailbox failures, and
the In-Place Archive through the beta mail API."""

from __future__ import annotations

import pytest

from keepstone.sources.connector import PartFailed
from keepstone.sources.graph.access import GraphUser
from keepstone.sources.graph.mail_backup import (
    WELL_KNOWN,
    MailboxBackup,
    folder_key,
    is_carried,
    message_key,
)
from keepstone.sources.graph.mail_restore import WELL_KNOWN as RESTORE_ROLES
from tests.graph.mail_fixtures import Org, Run, as_previous, org, read_mailbox
from tests.graph_fake.mailbox import Mailbox

__all__ = ["org"]


def _keys(run: Run) -> list[str]:
    return [i.key for i in run.items if i.kind == "mail"]


def _setup(org: Org, n: int = 12) -> tuple[GraphUser, Mailbox, list[str], Run]:
    user, mailbox = org.add_user("adele")
    ids = org.add_messages(mailbox, "inbox", n)
    first = read_mailbox(org, user, [])
    return user, mailbox, ids, first


def test_adds_deletes_flags_and_moves(org: Org) -> None:
    user, mailbox, ids, first = _setup(org)
    state = org.fake.state
    now = state.clock.now()
    with state.lock:
        archive = mailbox.folder("archive")
        assert archive is not None
        mailbox.delete_message(ids[0])
        mailbox.update_message(ids[1], now, is_read=True, flag_status="flagged")
        mailbox.move_message(ids[2], archive, now)
    added = org.add_messages(mailbox, "inbox", 3)
    second = read_mailbox(org, user, as_previous(first))
    mail = second.mail()
    key = {i: message_key(user.name, "primary", i) for i in ids + added}
    assert len(_keys(second)) == len(mail) == 12 - 1 + 3  # no duplicate
    assert key[ids[0]] not in mail
    assert set(second.contents) == {key[i] for i in added}  # only the new ones are read
    assert org.requests.kinds["$value"] == 3
    flagged = mail[key[ids[1]]]
    assert is_carried(flagged) and flagged.meta["flags"] == "FS" and flagged.meta["is_read"]
    assert flagged.meta["flag_status"] == "flagged"
    assert flagged.change_token == first.mail()[key[ids[1]]].change_token
    moved = mail[key[ids[2]]]  # the same key: the immutable id survived the move
    assert is_carried(moved) and moved.path == "Archive" and moved.meta["role"] == "archive"
    assert moved.meta["folder_id"] == archive.id
    inbox = mailbox.folder("inbox")
    assert inbox is not None
    inbox_state = second.folders()[folder_key(user.name, "primary", inbox.id)]
    assert inbox_state.meta["messages"] == 12 - 2 + 3  # one deleted, one moved out, three new


def test_without_immutable_ids_a_move_shows_as_a_new_message(org: Org) -> None:
    """The fake's side of ImmutableId: a client that does not ask for it sees a moved message
    removed under one id and added under another (so it would download it again)."""
    _, mailbox = org.add_user("moves")
    (mid,) = org.add_messages(mailbox, "inbox", 1)
    state = org.fake.state
    with state.lock:
        archive = mailbox.folder("archive")
        assert archive is not None
        mailbox.move_message(mid, archive, state.clock.now())
    message = mailbox.messages[mid]
    assert message.id_for(immutable=False) != mid and message.id_for(immutable=True) == mid
    assert mailbox.find(message.id_for(False)) is message and mailbox.find(mid) is message


def test_a_lost_sync_state_is_read_again_and_merged_by_id(org: Org) -> None:
    user, mailbox, ids, first = _setup(org, 30)
    inbox = mailbox.folder("inbox")
    assert inbox is not None
    added = org.add_messages(mailbox, inbox, 2)
    with org.fake.state.lock:
        mailbox.delete_message(ids[5])
        mailbox.invalidate_delta(inbox.id)  # every delta link of the Inbox now gets 410
    second = read_mailbox(org, user, as_previous(first), page_size=7)
    keys = _keys(second)
    assert len(keys) == len(set(keys)) == 30 - 1 + 2
    assert set(second.contents) == {message_key(user.name, "primary", i) for i in added}
    assert message_key(user.name, "primary", ids[5]) not in keys
    state = second.folders()[folder_key(user.name, "primary", inbox.id)].meta
    assert state["complete"] is True and state["messages"] == 31
    third = read_mailbox(org, user, as_previous(second))  # the new link works
    assert _keys(third) and org.requests.kinds["$value"] == 0


def test_replayed_delta_entries_are_merged(org: Org) -> None:
    user, mailbox = org.add_user("replays")
    ids = org.add_messages(mailbox, "inbox", 25)
    org.fake.state.delta_replays = True  # every page repeats the previous page's last entry
    run = read_mailbox(org, user, [], page_size=4)
    keys = _keys(run)
    assert len(keys) == len(set(keys)) == 25
    assert org.requests.kinds["$value"] == 25  # a replayed message is not fetched twice
    org.add_messages(mailbox, "inbox", 5)
    again = read_mailbox(org, user, as_previous(run), page_size=2)
    assert len(_keys(again)) == len(set(_keys(again))) == 30
    assert org.requests.kinds["$value"] == 5
    assert set(ids) <= {i.meta["graph_id"] for i in again.mail().values()}


def test_a_message_gone_before_its_mime_is_a_warning_and_read_next_time(org: Org) -> None:
    user, mailbox = org.add_user("vanishing")
    ids = org.add_messages(mailbox, "inbox", 4)
    mailbox.vanished.add(ids[1])  # listed by delta, 404 on $value
    first = read_mailbox(org, user, [])
    assert len(first.mail()) == 3
    assert len(first.skipped) == 1 and "cannot be read" in first.skipped[0].reason
    assert first.skipped[0].path == "mailbox Inbox"
    inbox = mailbox.folder("inbox")
    assert inbox is not None
    assert first.folders()[folder_key(user.name, "primary", inbox.id)].meta["complete"] is False
    mailbox.vanished.clear()
    second = read_mailbox(org, user, as_previous(first))  # the folder is read whole again
    assert len(second.mail()) == 4 and second.skipped == []
    assert set(second.contents) == {message_key(user.name, "primary", ids[1])}


def test_a_mailbox_that_cannot_be_read_is_part_failed(org: Org) -> None:
    state = org.fake.state
    nomail = state.add_user(org.tenant, "nomail")
    user = GraphUser(nomail.user_principal_name, nomail.id)
    with pytest.raises(PartFailed, match=r"MailboxNotEnabledForRESTAPI|inactive"):
        read_mailbox(org, user, [])
    ghost = GraphUser("ghost@contoso.onmicrosoft.com", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(PartFailed, match="invalid"):
        read_mailbox(org, ghost, [])


def test_a_failed_mailbox_keeps_its_previous_items(org: Org) -> None:
    user, mailbox, _, first = _setup(org, 5)
    with org.fake.state.lock:
        del org.fake.state.mailboxes[user.graph_id]  # the mailbox is gone (license removed)
    with org.client() as client:
        given = []
        backup = MailboxBackup(client, user, "primary", as_previous(first), print)
        with pytest.raises(PartFailed):
            for item in backup.items():
                given.append(item)
    assert {i.key for i in given} == {i.key for i in first.items}
    assert mailbox.owner_id == user.graph_id


def test_the_in_place_archive_is_read_through_the_beta_mail_api(org: Org) -> None:
    user, mailbox = org.add_user("archived", archive=True)
    assert mailbox.archive is not None
    org.add_messages(mailbox, "inbox", 2)
    ids = org.add_messages(mailbox.archive, "inbox", 3)
    run = read_mailbox(org, user, [], mailbox="archive")
    assert set(run.mail()) == {message_key(user.name, "archive", i) for i in ids}
    assert all(i.meta["mailbox"] == "archive" for i in run.items)
    assert org.requests.kinds["settings"] == 1
    again = read_mailbox(org, user, as_previous(run), mailbox="archive")
    assert set(again.mail()) == set(run.mail()) and org.requests.kinds["$value"] == 0
    plain, _ = org.add_user("plain")  # no archive: nothing to back up, and no warning
    nothing = read_mailbox(org, plain, [], mailbox="archive")
    assert nothing.items == [] and nothing.skipped == []


def test_a_sync_state_lost_midway_through_a_full_read_starts_it_again(org: Org) -> None:
    user, mailbox = org.add_user("midway")
    ids = org.add_messages(mailbox, "inbox", 20)
    inbox = mailbox.folder("inbox")
    assert inbox is not None
    given = []
    with org.client() as client:
        backup = MailboxBackup(client, user, "primary", [], print, page_size=5)
        for item in backup.items():
            given.append(item)
            if len(given) == 3:  # the round's next link is now stale: 410 on the next page
                with org.fake.state.lock:
                    mailbox.invalidate_delta(inbox.id)
    keys = [i.key for i in given if i.kind == "mail"]
    assert len(keys) == len(set(keys)) == 20
    assert {i.meta["graph_id"] for i in given if i.kind == "mail"} == set(ids)
    assert org.requests.statuses[410] == 1  # the round was lost midway, once
    assert org.requests.kinds["$value"] == 20  # what the lost round gave is not read again
    state = next(i for i in given if i.kind == "folder" and i.meta["folder_id"] == inbox.id)
    assert state.meta["complete"] is True and state.meta["messages"] == 20


def test_an_empty_folder_costs_no_delta_and_is_read_whole_once_it_holds_mail(org: Org) -> None:
    """The listing's totalItemCount 0 spares the folder's delta round; mail arriving there (new
    or moved in) is read on the next run, and a folder emptied since drops what it held."""
    user, mailbox, ids, first = _setup(org, 4)
    assert org.requests.kinds["messages/delta"] == 1  # Inbox only: the 4 others are empty
    drafts, archive = mailbox.folder("drafts"), mailbox.folder("archive")
    assert drafts is not None and archive is not None
    state = org.fake.state
    drafts_key = folder_key(user.name, "primary", drafts.id)
    assert first.folders()[drafts_key].meta["empty"] is True
    assert first.folders()[drafts_key].meta["messages"] == 0
    with state.lock:
        mailbox.move_message(ids[0], archive, state.clock.now())
    added = org.add_messages(mailbox, drafts, 2)
    second = read_mailbox(org, user, as_previous(first))
    key = {i: message_key(user.name, "primary", i) for i in ids + added}
    mail = second.mail()
    assert org.requests.kinds["messages/delta"] == 3  # Inbox, Drafts, Archive
    assert set(second.contents) == {key[i] for i in added}  # the move is not downloaded
    assert is_carried(mail[key[ids[0]]]) and mail[key[ids[0]]].meta["folder_id"] == archive.id
    assert second.folders()[drafts_key].meta["messages"] == 2
    assert second.folders()[drafts_key].meta["empty"] is False
    with state.lock:
        for gid in added:
            mailbox.delete_message(gid)
    third = read_mailbox(org, user, as_previous(second))
    assert org.requests.kinds["messages/delta"] == 2  # Drafts is empty again: not asked
    assert set(third.mail()) == {key[i] for i in ids}  # the deleted drafts are gone
    assert third.folders()[drafts_key].meta["messages"] == 0


def test_roles_asked_are_the_roles_a_restore_places_by() -> None:
    """Each name in the roles' $batch costs a request: the backup asks exactly the names the
    restore uses, no more (and none it would miss)."""
    assert set(WELL_KNOWN) == RESTORE_ROLES and len(WELL_KNOWN) == len(RESTORE_ROLES)
