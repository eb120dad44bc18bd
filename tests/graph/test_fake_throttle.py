"""Outlook throttling and injected faults in the fake: concurrency 4, the sliding budget,
`Retry-After`, the premature-retry penalty, error statuses and connection resets."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.graph.fake_client import advance, bearer, client, graph_code
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.throttle import Block, Limits

SECRET = "s3cret"


class Org:
    def __init__(self, fake: FakeGraph, http: httpx.Client) -> None:
        state = fake.state
        tenant = state.add_tenant("contoso.onmicrosoft.com")
        self.users = [state.add_user(tenant, name) for name in ("adele", "bob")]
        for user in self.users:
            state.add_mailbox(user)
        self.fake, self.http = fake, http
        self.headers = bearer(http, fake, state.add_app(tenant, secret=SECRET), SECRET)
        self.other_app = bearer(http, fake, state.add_app(tenant, secret=SECRET), SECRET)

    def folders(self, user: int = 0, headers: dict[str, str] | None = None) -> httpx.Response:
        url = f"{self.fake.graph_url}/v1.0/users/{self.users[user].id}/mailFolders"
        return self.http.get(url, headers=headers or self.headers)

    def advance(self, seconds: int) -> None:
        advance(self.fake, seconds)


@pytest.fixture
def org(graph_fake: FakeGraph) -> Any:
    with client(graph_fake) as http:
        yield Org(graph_fake, http)


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_the_fifth_concurrent_request_to_a_mailbox_gets_429(org: Org) -> None:
    faults = org.fake.state.faults
    faults.add(FaultRule(r"/mailFolders$", "hold", limit=4))
    with ThreadPoolExecutor(4) as pool:
        held = [pool.submit(org.folders) for _ in range(4)]
        _wait_for(lambda: faults.held == 4, "four requests in flight")
        fifth = org.folders()
        assert graph_code(fifth) == (429, "ApplicationThrottled")
        assert "MailboxConcurrency" in fifth.json()["error"]["message"]
        assert int(fifth.headers["Retry-After"]) >= 1
        # The limit is per (app, mailbox): another mailbox, or another app, still gets in.
        assert org.folders(user=1).status_code == 200
        assert org.folders(headers=org.other_app).status_code == 200
        faults.release.set()
        assert [f.result().status_code for f in held] == [200] * 4
    assert org.folders().status_code == 200  # the slots are given back


def test_budget_exhaustion_retry_after_and_premature_retry_penalty(org: Org) -> None:
    org.fake.state.throttle.limits = Limits(requests=20, window=timedelta(minutes=10))
    assert all(org.folders().status_code == 200 for _ in range(20))
    over = org.folders()
    assert graph_code(over) == (429, "ApplicationThrottled")
    assert over.headers["Retry-After"] == "600"
    assert org.folders(user=1).status_code == 200  # other mailboxes are not affected
    org.advance(599)
    early = org.folders()  # one second early: refused, and the block starts again
    assert graph_code(early) == (429, "ApplicationThrottled")
    assert early.headers["Retry-After"] == "600"
    org.advance(599)
    assert org.folders().status_code == 429  # would have been free without the penalty
    org.advance(600)
    assert org.folders().status_code == 200


def test_the_budget_window_slides(org: Org) -> None:
    org.fake.state.throttle.limits = Limits(requests=10, window=timedelta(minutes=10))
    assert all(org.folders().status_code == 200 for _ in range(5))
    org.advance(300)
    assert all(org.folders().status_code == 200 for _ in range(5))
    org.advance(1)
    over = org.folders()
    assert over.status_code == 429 and over.headers["Retry-After"] == "299"
    org.advance(299)
    assert org.folders().status_code == 200  # the first five have aged out


def test_throttling_can_be_switched_off_for_a_benchmark_baseline(org: Org) -> None:
    org.fake.state.throttle.limits = Limits(requests=2, enabled=False)
    assert all(org.folders().status_code == 200 for _ in range(5))


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "generalException"), (503, "serviceNotAvailable"), (504, "UnknownError")],
)
def test_injected_errors_every_nth_request(org: Org, status: int, code: str) -> None:
    org.fake.state.faults.add(FaultRule(r"/mailFolders$", status, every=3, retry_after=7))
    answers = [org.folders() for _ in range(6)]
    assert [a.status_code for a in answers] == [200, 200, status, 200, 200, status]
    assert graph_code(answers[2]) == (status, code)
    assert answers[2].headers["Retry-After"] == "7"


def test_injected_connection_reset(org: Org) -> None:
    org.fake.state.faults.add(FaultRule(r"/mailFolders$", "reset", limit=1))
    with pytest.raises(httpx.TransportError):
        org.folders()
    assert org.folders().status_code == 200


def test_a_request_in_flight_when_the_block_began_does_not_extend_it() -> None:
    """Only a premature retry restarts the block: requests already sent when it began are
    refused without moving it, so a retry after the announced Retry-After is admitted."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    block = Block()
    block.start(start, timedelta(seconds=2))
    in_flight = start + timedelta(milliseconds=100)
    assert block.early(in_flight) and not block.premature(in_flight)
    assert not block.early(start + timedelta(seconds=2))  # the honest retry passes
    block.start(start, timedelta(seconds=2))
    late = start + timedelta(seconds=1)
    assert block.early(late) and block.premature(late)
    assert block.until == late + timedelta(seconds=2)  # the penalty: blocked from late on
    assert not block.early(late + timedelta(seconds=2))
