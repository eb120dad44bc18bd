"""The fake's premature-retry count is right on both sides (issue 13 finding (a)):

- a ``$batch``'s inner requests were all sent with their batch, so those the fake reaches after a
  block that began inside the same batch are refused but never counted premature, however slowly
  the fake runs them (they used to be, past ``IN_FLIGHT_GRACE``);
- a request, or a whole batch, sent after the refusal and before its ``Retry-After`` is counted,
  and Keepstone's organization sync honouring ``Retry-After`` sends none, while the same sync
  waiting only half of each ``Retry-After`` is caught (so the first assertion can fail).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from keepstone.clock import ManualClock
from keepstone.domain.throttle import Discipline
from keepstone.sources.graph import directory
from keepstone.sources.graph.auth import AppCredentials, MsalHttpClient, TokenSource
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.sources.graph.tls import graph_tls_context
from tests.graph.fake_client import bearer, client
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.sharepoint import ResourceUnitLimits
from tests.graph_fake.state import FakeState, Tenant
from tests.graph_fake.throttle import Limits

DOMAIN = "contoso.onmicrosoft.com"
SECRET = "s3cret"
START = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


class SlowClock(ManualClock):
    """A fake that takes 0.2 s of its own time for every reading of its clock: a loaded server,
    reaching a batch's later inner requests well past `IN_FLIGHT_GRACE` after its first."""

    def now(self) -> datetime:
        self.advance(timedelta(milliseconds=200))
        return super().now()


def _tenant(state: FakeState, users: int, *, drives: bool) -> Tenant:
    tenant = state.add_tenant(DOMAIN)
    for n in range(users):
        user = state.add_user(tenant, f"user{n:03}")
        state.add_mailbox(user)
        if drives:
            state.add_drive(user)
    return tenant


def _batch(http: httpx.Client, fake: FakeGraph, headers: dict[str, str], urls: list[str]) -> Any:
    body = {"requests": [{"id": str(i), "method": "GET", "url": u} for i, u in enumerate(urls)]}
    answer = http.post(
        f"{fake.graph_url}/v1.0/$batch",
        headers=headers | {"Content-Type": "application/json"},
        content=json.dumps(body).encode(),
    )
    assert answer.status_code == 200, answer.text
    return sorted(r["status"] for r in answer.json()["responses"])


@pytest.mark.parametrize("throttle", ["resource units", "outlook"])
def test_a_batch_is_sent_at_once_a_later_request_is_premature(
    graph_fake: FakeGraph, throttle: str
) -> None:
    state = graph_fake.state
    state.clock = SlowClock(START)
    tenant = _tenant(state, 1, drives=True)
    user = next(iter(tenant.users.values()))
    if throttle == "outlook":  # per (app, mailbox): two requests a minute
        state.throttle.limits = Limits(requests=2, window=timedelta(minutes=1))
        url, book = f"/users/{user.id}/mailboxSettings", state.throttle
    else:  # per (app, tenant): two resource units a minute
        state.resource_units.limits = ResourceUnitLimits(per_minute=2)
        url, book = f"/users/{user.id}/drive", state.resource_units
    with client(graph_fake) as http:
        headers = bearer(http, graph_fake, state.add_app(tenant, secret=SECRET), SECRET)
        assert _batch(http, graph_fake, headers, [url] * 6) == [200, 200, 429, 429, 429, 429]
        assert (book.refused, book.premature) == (4, 0)  # sent before the block began
        assert _batch(http, graph_fake, headers, [url] * 2) == [429, 429]
        assert book.premature == 2  # a batch sent after the refusal: each inner one counts
        single = http.get(f"{graph_fake.graph_url}/v1.0{url}", headers=headers)
        assert single.status_code == 429 and book.premature == 3


@contextmanager
def fake_time_client(
    fake: FakeGraph, tenant: Tenant, discipline: Discipline
) -> Iterator[GraphClient]:
    """Keepstone's client on the fake's clock: its sleeps move the fake's time."""
    clock = fake.state.clock
    assert isinstance(clock, ManualClock)
    app = fake.state.add_app(tenant, secret=SECRET)
    endpoints = GraphEndpoints(fake.graph_url, fake.login_url)
    tls = graph_tls_context({"SSL_CERT_FILE": str(fake.ca_pem)})
    token = TokenSource(
        endpoints, AppCredentials(DOMAIN, app.client_id, secret=SECRET), MsalHttpClient(tls)
    )
    graph = GraphClient(
        endpoints,
        token,
        tls,
        clock=lambda: (clock.now() - START).total_seconds(),
        sleep=lambda seconds: clock.advance(timedelta(seconds=seconds)),
        discipline=discipline,
    )
    try:
        yield graph
    finally:
        graph.close()
        token.close()


class Impatient(Discipline):
    """A client that waits only half of every Retry-After."""

    def throttled(self, scope: str, now: float, retry_after: float) -> None:
        super().throttled(scope, now, retry_after / 2)


@pytest.mark.parametrize(("discipline", "premature"), [(Discipline, False), (Impatient, True)])
def test_the_sync_of_users_without_onedrive_never_sends_early(
    graph_fake: FakeGraph, discipline: type[Discipline], premature: bool
) -> None:
    state = graph_fake.state
    tenant = _tenant(state, 30, drives=False)
    # 30 drive lookups (1 RU each) against 4 RU per 4 s: Retry-After of up to 4 s.
    state.resource_units.limits = ResourceUnitLimits(per_minute=4, minute=timedelta(seconds=4))
    with fake_time_client(graph_fake, tenant, discipline()) as graph:
        counter = directory.Counter()
        users = [u for page in directory.list_users(graph, counter) for u in page]
        found = directory.with_mailboxes_and_drives(graph, users, counter)
    book = state.resource_units
    assert book.refused > 0
    assert (book.premature > 0) is premature, (book.refused, book.premature)
    if not premature:
        assert len(found) == 30 and not any(u.has_onedrive for u in found)
