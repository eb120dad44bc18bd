"""What a mail restore costs and how it behaves under pressure: requests for N and 4N messages
(nothing per message but its create, plus the collision lookup when one is asked for), and a
run through throttling and injected faults that completes with every message exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keepstone.domain.errors import InvalidInput
from keepstone.engine import Item
from keepstone.sources.graph.mail_restore import MailOptions, put_back_mail
from keepstone.sources.targets import Collision, Placement
from tests.graph import restore_fixtures as fx
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.throttle import Limits

FOLDERS = (("Inbox",), ("Inbox", "A"), ("Archive", "B", "C"))


def _items(contents: fx.Contents, count: int) -> list[Item]:
    items = []
    for n in range(count):
        folder = FOLDERS[n % len(FOLDERS)]
        role = "inbox" if folder == ("Inbox",) else None
        items.append(
            contents.add(
                fx.graph_item("adele", n, fx.mime(n), folder=folder, role=role), fx.mime(n)
            )
        )
    return items


def _requests(
    graph_fake: FakeGraph, count: int, collision: Collision, options: MailOptions | None = None
) -> dict[str, int]:
    org = fx.new_org(graph_fake, "adele")
    contents = fx.Contents()
    items = _items(contents, count)
    where = Placement("adele", None, collision)
    with fx.connect(org) as connected:
        user = org.users["adele"]
        outcomes = list(put_back_mail(connected.client, user, items, contents, where, options))
        seen = connected.transport
    assert sum(o.restored for o in outcomes) == count
    return {
        "create": seen.count("POST", "/messages"),
        "lookup": seen.count("GET", "/messages"),
        "batch": seen.count("POST", "/$batch"),
        "folders": seen.count("GET", "/mailFolders") - seen.count("GET", "/messages"),
        "all": len(seen.seen),
    }


@pytest.mark.parametrize(
    ("collision", "options"),
    [
        (Collision.KEEP_BOTH, None),
        (Collision.SKIP, None),
        # changedItems false: the same lookups, under keepBoth too
        (Collision.KEEP_BOTH, MailOptions(existing=False)),
    ],
)
def test_requests_grow_linearly_one_create_per_message(
    graph_fake: FakeGraph, collision: Collision, options: MailOptions | None
) -> None:
    small = _requests(graph_fake, 8, collision, options)
    graph_fake.reset()
    large = _requests(graph_fake, 32, collision, options)
    skip = collision is Collision.SKIP or options is not None
    for counts, n in ((small, 8), (large, 32)):
        assert counts["create"] == n
        # the messages into a folder that was there (the Inbox: every third) are looked up,
        # 20 messages' lookups in one $batch; folders this restore created held nothing
        assert counts["lookup"] == 0
        assert counts["batch"] == (-(-n // 20) if skip else 0)
    # the folder tree costs the same whatever the number of messages
    assert small["folders"] == large["folders"] <= 4
    assert large["all"] - small["all"] == 24 + (1 if skip else 0)


def test_throttling_and_faults_complete_with_every_message_once(graph_fake: FakeGraph) -> None:
    org = fx.new_org(graph_fake, "adele")
    state = graph_fake.state
    # a budget a batch of 20 lookups fits in (each inner request counts), small enough to bite
    state.throttle.limits = Limits(requests=40, window=timedelta(seconds=60))
    state.faults.add(FaultRule(r"/messages$", 503, every=4, retry_after=2))
    state.faults.add(FaultRule(r"/messages$", 500, every=5))
    state.faults.add(FaultRule(r"/childFolders$", "reset", every=2))
    contents = fx.Contents()
    items = _items(contents, 30)
    with fx.connect(org) as connected:
        outcomes = fx.run(connected, org, items, contents, Placement("adele", None, Collision.SKIP))
        # again: every message is there now, found by batched lookups (some inner ones
        # throttled or failed, then asked alone after their Retry-After)
        again = fx.run(connected, org, items, contents, Placement("adele", None, Collision.SKIP))
        slept = connected.slept
        batches = connected.transport.count("POST", "/$batch")
    assert [o.error for o in outcomes] == [None] * 30 and all(o.restored for o in outcomes)
    assert [(o.restored, o.error) for o in again] == [(False, None)] * 30
    assert batches >= 2
    landed = fx.tree(org.mailboxes["adele"])
    ids = sorted(fx.semantic(m.mime)["Message-ID"] for ms in landed.values() for m in ms)
    assert ids == sorted(f"<m{n}.restore@example.com>" for n in range(30))
    assert sorted(landed) == ["Archive/B/C", "Inbox", "Inbox/A"]
    assert state.throttle.refused > 0 and sum(r.fired for r in state.faults.rules) > 5
    assert slept  # it waited (on the fake's clock) rather than failing


def test_a_refused_application_fails_every_item_after_one_try(graph_fake: FakeGraph) -> None:
    org = fx.new_org(graph_fake, "adele")
    org.app.secrets[:] = ["another"]
    contents = fx.Contents()
    items = _items(contents, 5)
    with fx.connect(org) as connected:
        outcomes = fx.run(
            connected, org, items, contents, Placement("adele", None, Collision.KEEP_BOTH)
        )
        assert connected.transport.seen == []  # no Graph request without a token
    assert [o.restored for o in outcomes] == [False] * 5
    assert all("AADSTS7000215" in o.why for o in outcomes)


def test_refusals_come_before_any_request(graph_fake: FakeGraph) -> None:
    org = fx.new_org(graph_fake, "adele")
    org.add("nomail", mailbox=False)
    contents = fx.Contents()
    items = _items(contents, 2)
    file_item = Item("adele/graph-drive/x", "adele", "file", "a.txt", 1, 0.0, 0o600)
    with fx.connect(org) as connected:
        client, users = connected.client, org.users
        with pytest.raises(InvalidInput, match="ids"):
            put_back_mail(
                client,
                users["adele"],
                [file_item],
                contents,
                Placement("adele", None, Collision.SKIP),
            )
        with pytest.raises(InvalidInput, match="userName"):
            put_back_mail(
                client, users["nomail"], items, contents, Placement("nomail", None, Collision.SKIP)
            )
        for folder in ("a//b", "../x", "a/\x00b"):
            with pytest.raises(InvalidInput, match="folder"):
                put_back_mail(
                    client,
                    users["adele"],
                    items,
                    contents,
                    Placement("adele", folder, Collision.SKIP),
                )
        assert connected.transport.seen == []
