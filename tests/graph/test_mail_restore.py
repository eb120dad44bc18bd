"""Putting messages back through Graph (into the strict fake): non-draft messages in their
folders with their dates, read and flag state and content (compared semantically, G9), large
attachments through upload sessions, collision policies, other mailboxes and folders, items from
other kinds of organizations, and the requests it costs for N and 4N messages."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from keepstone.engine import Item
from keepstone.sources.targets import Collision, Placement
from tests.graph.restore_fixtures import (
    WHEN,
    Contents,
    connect,
    graph_item,
    mime,
    new_org,
    run,
    semantic,
    tree,
)
from tests.graph_fake.mail_create import CreatedMessage
from tests.graph_fake.mailbox import Message
from tests.graph_fake.server import FakeGraph

KEEP = Collision.KEEP_BOTH


def _place(
    user: str = "adele", folder: str | None = None, collision: Collision = KEEP
) -> Placement:
    return Placement(user, folder, collision)


def _only(messages: list[Message]) -> CreatedMessage:
    assert len(messages) == 1
    found = messages[0]
    assert isinstance(found, CreatedMessage)
    return found


def test_messages_come_back_non_draft_with_dates_flags_content_and_folders(
    graph_fake: FakeGraph,
) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    attached = (("report.pdf", os.urandom(40_000)), ("notes.txt", b"plain notes"))
    items = [
        contents.add(
            graph_item(
                "adele", 1, mime(1, attachments=attached), is_read=True, flag_status="flagged"
            ),
            mime(1, attachments=attached),
        ),
        contents.add(
            graph_item(
                "adele",
                2,
                mime(2, html=False),
                folder=("Inbox", "Projects", "2024"),
                role=None,
                importance="high",
                categories=["Blue"],
                flag_status="complete",
            ),
            mime(2, html=False),
        ),
        contents.add(
            graph_item("adele", 3, mime(3), folder=("Sent Items",), role="sentitems", is_read=True),
            mime(3),
        ),
    ]
    with connect(org) as connected:
        outcomes = run(connected, org, items, contents, _place())
    assert [(o.restored, o.error) for o in outcomes] == [(True, None)] * 3
    landed = tree(org.mailboxes["adele"])
    assert sorted(landed) == ["Inbox", "Inbox/Projects/2024", "Sent Items"]
    first, second, third = (
        _only(landed["Inbox"]),
        _only(landed["Inbox/Projects/2024"]),
        _only(landed["Sent Items"]),
    )
    for made, n, content in (
        (first, 1, mime(1, attachments=attached)),
        (second, 2, mime(2, html=False)),
        (third, 3, mime(3)),
    ):
        assert not made.is_draft
        assert semantic(made.mime) == semantic(content), n
        assert made.received == WHEN + timedelta(minutes=5)
        assert made.to_json()["sentDateTime"] == "2024-03-04T05:06:07Z"
    assert (first.is_read, first.flag_status) == (True, "flagged")
    assert (second.is_read, second.flag_status, second.importance) == (False, "complete", "high")
    assert second.categories == ["Blue"]
    assert third.is_read
    assert len(semantic(first.mime)["attachments"]) == 2
    assert first.source["internetMessageHeaders"] == [
        {"name": "X-Mailer", "value": "keepstone-test"}
    ]


def test_a_draft_stays_a_draft_in_its_folder(graph_fake: FakeGraph) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    item = contents.add(
        graph_item("adele", 1, mime(1), folder=("Drafts",), role="drafts", is_draft=True),
        mime(1),
    )
    with connect(org) as connected:
        assert run(connected, org, [item], contents, _place())[0].restored
    made = _only(tree(org.mailboxes["adele"])["Drafts"])
    assert made.is_draft and semantic(made.mime) == semantic(mime(1))


def test_large_attachments_go_through_upload_sessions_without_the_token(
    graph_fake: FakeGraph,
) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    big, middle, small = (
        os.urandom(4 * 1024 * 1024 + 1000),
        os.urandom(2_500_000),
        os.urandom(900_000),
    )
    content = mime(1, attachments=(("big.bin", big), ("middle.bin", middle), ("small.bin", small)))
    item = contents.add(graph_item("adele", 1, content), content)
    with connect(org) as connected:
        outcome = run(connected, org, [item], contents, _place())[0]
        seen = connected.transport
    assert outcome.restored and outcome.error is None
    made = _only(tree(org.mailboxes["adele"])["Inbox"])
    assert semantic(made.mime) == semantic(content)
    assert not made.is_draft
    # the create carries what fits under 4 MB; the 2.5 MB one follows alone (under 3 MB it
    # may not use a session); the 4 MB one takes a session and two fragments under 4 MB
    assert seen.count("POST", "/mailFolders/inbox/messages") == 1
    assert seen.count("POST", "/attachments/createUploadSession") == 1
    assert seen.count("POST", "/attachments") == 2
    uploads = [s for s in seen.seen if s[1].startswith("/_outlook/")]
    assert len(uploads) == 2 and not any(token for _, _, token in uploads)


def test_a_message_whose_attachment_fails_is_removed_and_fails(graph_fake: FakeGraph) -> None:
    from tests.graph_fake.faults import FaultRule

    org = new_org(graph_fake, "adele")
    contents = Contents()
    content = mime(1, attachments=(("big.bin", os.urandom(5 * 1024 * 1024)),))
    item = contents.add(graph_item("adele", 1, content), content)
    graph_fake.state.faults.add(FaultRule(r"/createUploadSession$", 507))
    with connect(org) as connected:
        outcome = run(connected, org, [item], contents, _place())[0]
    assert not outcome.restored and "507" in outcome.why
    assert org.mailboxes["adele"].messages == {}  # no message left without its attachment


@pytest.mark.parametrize(
    ("collision", "copies", "restored"),
    [(Collision.SKIP, 1, 0), (Collision.OVERWRITE, 1, 3), (Collision.KEEP_BOTH, 2, 3)],
)
def test_collision_policies_by_internet_message_id(
    graph_fake: FakeGraph, collision: Collision, copies: int, restored: int
) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    items = [contents.add(graph_item("adele", n, mime(n)), mime(n)) for n in range(3)]
    with connect(org) as connected:
        assert all(o.restored for o in run(connected, org, items, contents, _place()))
        before = set(org.mailboxes["adele"].messages)
        again = run(connected, org, items, contents, _place(collision=collision))
    assert sum(o.restored for o in again) == restored
    assert all(o.error is None for o in again)
    inbox = tree(org.mailboxes["adele"])["Inbox"]
    assert len(inbox) == 3 * copies
    ids = sorted(semantic(m.mime)["Message-ID"] for m in inbox)
    assert ids == sorted(f"<m{n}.restore@example.com>" for n in range(3) for _ in range(copies))
    if collision is Collision.OVERWRITE:
        assert not before & set(org.mailboxes["adele"].messages)  # the old copies went


def test_restore_to_another_mailbox_and_folder(graph_fake: FakeGraph) -> None:
    org = new_org(graph_fake, "adele", "bob")
    contents = Contents()
    items = [
        contents.add(graph_item("adele", 1, mime(1)), mime(1)),
        contents.add(graph_item("adele", 2, mime(2), folder=("Inbox", "Deep"), role=None), mime(2)),
    ]
    with connect(org) as connected:
        outcomes = run(connected, org, items, contents, _place("bob", "Restored/From Adele"))
    assert all(o.restored for o in outcomes)
    assert org.mailboxes["adele"].messages == {}
    landed = tree(org.mailboxes["bob"])
    assert sorted(landed) == ["Restored/From Adele"] and len(landed["Restored/From Adele"]) == 2


def test_items_of_other_organizations_restore_with_their_flags(graph_fake: FakeGraph) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    maildir = Item(
        key="adele/mail/1",
        user="adele",
        kind="mail",
        path="Archive/2023",
        size=1,
        mtime=WHEN.timestamp(),
        mode=0o600,
        meta={"flags": "FS", "subject": "x"},
    )
    imap = Item(
        key="adele/imap/2",
        user="adele",
        kind="mail",
        path="Sent",
        size=1,
        mtime=WHEN.timestamp(),
        mode=0o600,
        meta={
            "source": "imap",
            "imap_flags": ["\\Seen"],
            "role": "\\Sent",
            "internal_date": "2024-03-04T06:00:00+00:00",
        },
    )
    contents.add(maildir, mime(1))
    contents.add(imap, mime(2))
    with connect(org) as connected:
        outcomes = run(connected, org, [maildir, imap], contents, _place())
    assert all(o.restored for o in outcomes)
    landed = tree(org.mailboxes["adele"])
    letters, sent = _only(landed["Archive/2023"]), _only(landed["Sent Items"])
    assert (letters.is_read, letters.flag_status, letters.is_draft) == (True, "flagged", False)
    assert letters.received == WHEN
    assert (sent.is_read, sent.flag_status, sent.is_draft) == (True, "notFlagged", False)
    assert sent.received == WHEN.replace(hour=6, minute=0, second=0)
    assert semantic(sent.mime) == semantic(mime(2))


def test_a_real_backup_restores_into_another_mailbox_the_same(graph_fake: FakeGraph) -> None:
    """MailboxBackup (m365-mail) reads adele's mailbox; the restore into bob's gives the same
    folder tree, the same messages (G9) with the same read and flag state and dates."""
    from keepstone.sources.graph.mail_backup import MailboxBackup

    org = new_org(graph_fake, "adele", "bob")
    source = org.mailboxes["adele"]
    inbox, sent = source.folder("inbox"), source.folder("sentitems")
    assert inbox is not None and sent is not None
    nested = source.add_folder("2024", source.add_folder("Projects", inbox))
    now = graph_fake.state.clock.now()
    plan = [(inbox, 0), (inbox, 1), (sent, 2), (nested, 3), (nested, 4)]
    for folder, n in plan:
        content = mime(n, attachments=(("a.bin", bytes([n]) * 5000),) if n % 2 else ())
        made = source.add_message(folder, content, now - timedelta(days=n))
        source.update_message(
            made.id, now, is_read=n % 2 == 0, flag_status=("flagged" if n == 3 else "notFlagged")
        )
    contents = Contents()
    with connect(org) as connected:
        backed = list(
            MailboxBackup(
                connected.client, org.users["adele"], "primary", [], lambda s: None
            ).items()
        )
        items = []
        for found in backed:
            if found.kind != "mail":
                continue
            item = Item(
                found.key,
                found.user,
                found.kind,
                found.path,
                found.size,
                found.mtime,
                found.mode,
                found.meta,
            )
            items.append(contents.add(item, found.open().read()))
        bob = org.users["bob"].name
        outcomes = run(connected, org, items, contents, _place("bob"))
    assert len(items) == 5 and all(o.restored for o in outcomes)

    def shape(mailbox_messages: dict[str, list[Message]]) -> dict[str, list[tuple[object, ...]]]:
        return {
            path: sorted(
                (str(semantic(m.mime)), m.is_read, m.flag_status, m.received, m.is_draft)
                for m in messages
            )
            for path, messages in mailbox_messages.items()
        }

    assert bob == "bob@contoso.onmicrosoft.com"
    assert shape(tree(org.mailboxes["bob"])) == shape(tree(source))


def test_archive_mailbox_items_and_hostile_folder_names_stay_data(graph_fake: FakeGraph) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    archived = graph_item("adele", 1, mime(1), folder=("Inbox",), role="inbox", mailbox="archive")
    hostile = graph_item("adele", 2, mime(2), folder=("..", "a/b", "x\u202ey"), role=None)
    contents.add(archived, mime(1))
    contents.add(hostile, mime(2))
    with connect(org) as connected:
        outcomes = run(connected, org, [archived, hostile], contents, _place())
    assert all(o.restored for o in outcomes)
    mailbox = org.mailboxes["adele"]
    # Graph v1.0 writes no In-Place Archive: its folders go under the target's Archive
    assert len(tree(mailbox)["Archive/Inbox"]) == 1
    made = [f for f in mailbox.folders.values() if f.display_name in ("..", "a/b", "x\u202ey")]
    assert sorted(f.display_name for f in made) == ["..", "a/b", "x\u202ey"]
    names = {f.id: f for f in mailbox.folders.values()}
    leaf = next(f for f in made if f.display_name == "x\u202ey")
    assert names[names[leaf.parent_id].parent_id].display_name == ".."
