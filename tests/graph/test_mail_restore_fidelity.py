"""What survives a mail restore through Graph (every header a client shows, threading included,
the original header block as transport headers), ``markRestoredAsUnread``, and a create whose
answer is lost: the message is found by its restore tag, never made twice."""

from __future__ import annotations

import json
import os
from email import message_from_bytes, policy
from email.message import EmailMessage

from keepstone.sources.graph import mime_message
from keepstone.sources.graph.mail_restore import MailOptions, put_back_mail
from keepstone.sources.graph.mime_message import MailState, to_graph
from keepstone.sources.targets import Collision, Placement
from tests.graph.restore_fixtures import (
    Contents,
    Org,
    connect,
    graph_item,
    mime,
    new_org,
    semantic,
    tree,
)
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.mail_create import CreatedMessage
from tests.graph_fake.server import FakeGraph

PLACE = Placement("adele", None, Collision.KEEP_BOTH)


def _reply(n: int, attachment: bytes = b"") -> bytes:
    """A backed-up reply: the fixtures' message with threading and transport headers."""
    attached = (("plan.pdf", attachment),) if attachment else ()
    message = message_from_bytes(mime(n, attachments=attached), policy=policy.default)
    assert isinstance(message, EmailMessage)
    message["Received"] = "from mx.example.com (10.0.0.1) by mail.contoso.com; Mon, 4 Mar 2024"
    message["Authentication-Results"] = "contoso.com; spf=pass smtp.mailfrom=example.com"
    message["In-Reply-To"] = "<root@example.com>"
    message["References"] = "<root@example.com> <second@example.com>"
    message["List-Id"] = "<plans.example.com>"
    return message.as_bytes()


def _inbox(org: Org) -> list[CreatedMessage]:
    landed = tree(org.mailboxes["adele"])["Inbox"]
    assert all(isinstance(m, CreatedMessage) for m in landed)
    return [m for m in landed if isinstance(m, CreatedMessage)]


def test_every_header_a_reader_sees_survives_and_the_block_rides_as_transport_headers(
    graph_fake: FakeGraph,
) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    content = _reply(1, os.urandom(30_000))
    item = contents.add(
        graph_item("adele", 1, content, message_id="<m1.restore@example.com>"), content
    )
    with connect(org) as connected:
        outcomes = list(
            put_back_mail(connected.client, org.users["adele"], [item], contents, PLACE)
        )
    assert [(o.restored, o.error) for o in outcomes] == [(True, None)]
    made = tree(org.mailboxes["adele"])["Inbox"]
    assert len(made) == 1 and isinstance(made[0], CreatedMessage)
    restored = made[0]
    assert not restored.is_draft
    # From, To, Cc, Subject, Date, Message-ID, body and attachments (G9), and threading
    assert semantic(restored.mime) == semantic(content)
    rendered = message_from_bytes(restored.mime, policy=policy.default)
    assert str(rendered["In-Reply-To"]) == "<root@example.com>"
    assert str(rendered["References"]) == "<root@example.com> <second@example.com>"
    # the headers Graph has no property for are kept whole in PR_TRANSPORT_MESSAGE_HEADERS
    kept = restored.transport_headers
    assert "Received: from mx.example.com" in kept and "List-Id: <plans.example.com>" in kept
    assert "Authentication-Results: contoso.com; spf=pass" in kept
    assert "plain body" not in kept  # the header block only, never the body


def test_a_header_block_too_large_to_carry_is_left_out_not_cut() -> None:
    huge = b"".join(b"Received: from hop%d by hop%d\r\n" % (n, n + 1) for n in range(4000))
    raw = huge + b"Subject: s\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n"
    assert len(raw) > mime_message.MAX_TRANSPORT_HEADERS
    made = to_graph(raw, MailState())
    ids = [p["id"] for p in made.body["singleValueExtendedProperties"]]
    assert mime_message.TRANSPORT_HEADERS not in ids
    small = to_graph(_reply(2), MailState())
    ids = [p["id"] for p in small.body["singleValueExtendedProperties"]]
    assert {mime_message.TRANSPORT_HEADERS, mime_message.IN_REPLY_TO} <= set(ids)


def test_mark_restored_as_unread_puts_read_messages_back_unread(graph_fake: FakeGraph) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    items = [
        contents.add(graph_item("adele", n, _reply(n), is_read=True), _reply(n)) for n in (1, 2)
    ]
    with connect(org) as connected:
        user = org.users["adele"]
        plain = list(put_back_mail(connected.client, user, items[:1], contents, PLACE))
        unread = list(
            put_back_mail(
                connected.client, user, items[1:], contents, PLACE, MailOptions(mark_unread=True)
            )
        )
    assert [o.restored for o in plain + unread] == [True, True]
    by_id = {m.message_id: m for m in _inbox(org)}
    assert by_id["<m1.restore@example.com>"].is_read  # the control: as backed up
    assert not by_id["<m2.restore@example.com>"].is_read


def test_a_create_whose_answer_is_lost_is_found_by_its_tag_not_made_twice(
    graph_fake: FakeGraph,
) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    items = [contents.add(graph_item("adele", n, _reply(n)), _reply(n)) for n in range(1, 5)]
    # the 2nd and 4th creates are made, then their connections drop before the answer
    rule = graph_fake.state.faults.add(
        FaultRule(r"/mailFolders/inbox/messages$", "lose", every=2, limit=2)
    )
    with connect(org) as connected:
        outcomes = list(put_back_mail(connected.client, org.users["adele"], items, contents, PLACE))
        seen = connected.transport
    assert rule.fired == 2
    assert [(o.restored, o.error) for o in outcomes] == [(True, None)] * 4
    ids = sorted(m.message_id for m in _inbox(org))
    assert ids == [f"<m{n}.restore@example.com>" for n in range(1, 5)]  # each exactly once
    # each lost answer cost one tag lookup, and no create was sent again
    assert seen.count("POST", "/mailFolders/inbox/messages") == 4
    assert seen.count("GET", "/mailFolders/inbox/messages") == 2


def test_without_the_tag_lookup_a_lost_answer_would_duplicate(graph_fake: FakeGraph) -> None:
    """The fault rule really makes the message before the connection drops: a client that
    sends the create again (the plain replay) leaves two copies, which the test above forbids."""
    org = new_org(graph_fake, "adele")
    contents = Contents()
    item = contents.add(graph_item("adele", 1, _reply(1)), _reply(1))
    graph_fake.state.faults.add(FaultRule(r"/mailFolders/inbox/messages$", "lose", limit=1))
    body = to_graph(_reply(1), MailState()).body
    with connect(org) as connected:
        connected.client.request(
            "POST",
            f"/v1.0/users/{org.users['adele'].graph_id}/mailFolders/inbox/messages",
            scope=org.users["adele"].graph_id,
            headers={"Content-Type": "application/json"},
            content=json.dumps(body).encode(),
        )
    assert item.key and len(tree(org.mailboxes["adele"])["Inbox"]) == 2


def test_attachments_whose_answers_are_lost_are_counted_not_added_twice(
    graph_fake: FakeGraph,
) -> None:
    org = new_org(graph_fake, "adele")
    contents = Contents()
    big, first, second = (os.urandom(3_700_000), os.urandom(1_500_000), os.urandom(1_500_000))
    content = mime(1, attachments=(("big.bin", big), ("a.bin", first), ("b.bin", second)))
    item = contents.add(graph_item("adele", 1, content), content)
    faults = graph_fake.state.faults
    posted = faults.add(FaultRule(r"/attachments$", "lose", limit=1))
    # the session's second (last) fragment adds the attachment; its answer is lost
    fragment = faults.add(FaultRule(r"/_outlook/attachmentSessions/", "lose", every=2, limit=1))
    with connect(org) as connected:
        outcomes = list(
            put_back_mail(connected.client, org.users["adele"], [item], contents, PLACE)
        )
    assert (posted.fired, fragment.fired) == (1, 1)
    assert [(o.restored, o.error) for o in outcomes] == [(True, None)]
    (made,) = _inbox(org)
    assert len(made.attachments) == 3
    assert semantic(made.mime) == semantic(content)
