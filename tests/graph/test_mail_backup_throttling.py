"""MailboxBackup under Outlook's limits switched on in the fake and injected faults: never more
than 4 requests in flight per mailbox, no request before a Retry-After has passed, 503/504 and
connection resets retried; the backup completes with every message exactly once."""

from __future__ import annotations

from datetime import timedelta

from tests.graph.mail_fixtures import Org, org, read_mailbox
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.throttle import Limits

__all__ = ["org"]


def test_never_more_than_four_requests_in_flight_per_mailbox(org: Org) -> None:
    user, mailbox = org.add_user("busy")
    org.add_messages(mailbox, "inbox", 120)
    org.fake.state.throttle.limits = Limits(concurrency=4)  # the 5th in flight would get a 429
    run = read_mailbox(org, user, [], fetchers=8)  # more threads than the mailbox allows
    assert len(run.mail()) == 120 and run.skipped == []
    assert org.fake.state.throttle.refused == 0  # the fake never saw a 5th request in flight
    assert org.requests.most_in_flight[user.graph_id] <= 4


def test_the_request_budget_and_retry_after_are_honoured(org: Org) -> None:
    user, mailbox = org.add_user("budget")
    ids = org.add_messages(mailbox, "inbox", 150)
    limits = Limits(concurrency=4, requests=40, window=timedelta(seconds=60))
    org.fake.state.throttle.limits = limits
    run = read_mailbox(org, user, [], fetchers=1)
    assert len(run.mail()) == 150 and run.skipped == []
    assert {i.meta["graph_id"] for i in run.mail().values()} == set(ids)
    throttled = org.requests.statuses[429]
    assert throttled >= 3  # 150 requests at 40 per minute: the budget was hit several times
    assert org.requests.premature == 0  # nothing sent inside a Retry-After window
    assert org.fake.state.throttle.refused == throttled  # each block was met once, not pushed


def test_injected_503_504_and_resets_are_retried(org: Org) -> None:
    user, mailbox = org.add_user("flaky")
    ids = org.add_messages(mailbox, "inbox", 60)
    faults = org.fake.state.faults
    faults.add(FaultRule(r"/\$value$", 503, every=5, retry_after=3))
    faults.add(FaultRule(r"/\$value$", 504, every=7))
    faults.add(FaultRule(r"/\$value$", "reset", every=11))
    faults.add(FaultRule(r"/messages/delta$", 503, every=1, limit=2))  # Inbox: the only delta
    # One fetcher: with several, a request admitted just before another's 503 arrives is
    # legitimately in the air (the race any client has); here every send is after the answer.
    run = read_mailbox(org, user, [], fetchers=1)
    assert run.skipped == []
    assert sorted(i.meta["graph_id"] for i in run.mail().values()) == sorted(ids)
    assert run.contents == {
        k: mailbox.messages[i.meta["graph_id"]].mime for k, i in run.mail().items()
    }
    assert all(rule.fired for rule in faults.rules)
    assert org.requests.premature == 0
