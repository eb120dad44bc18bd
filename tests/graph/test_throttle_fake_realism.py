"""The fake's limits where Graph applies them (issue 13 finding (c)): the beta endpoint is
throttled like v1.0 (Outlook per mailbox, SharePoint resource units), the upload host spends the
(app, tenant) resource units like any OneDrive write, and `microsoft_limits(k)` scales the upload
byte budget with the time scale k as it does every other budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.graph.fake_client import advance, client, graph_code
from tests.graph.fake_mail import Mail
from tests.graph.test_drive_fake_uploads import UNIT, Writes
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.sharepoint import (
    HOUR_SECONDS,
    UPLOAD_BYTES_PER_HOUR,
    ResourceUnitLimits,
    microsoft_limits,
)
from tests.graph_fake.throttle import Limits
from tests.graph_fake.uploads import uploads


@pytest.fixture
def writes(graph_fake: FakeGraph) -> Iterator[Writes]:
    with client(graph_fake) as http:
        yield Writes(graph_fake, http)


def test_beta_mail_is_throttled_like_v1(mail: Mail) -> None:
    state = mail.fake.state
    state.throttle.limits = Limits(requests=3, window=timedelta(minutes=1))
    beta = mail.base.replace("/v1.0/", "/beta/")
    assert mail.get(f"{beta}/mailFolders").status_code == 200
    assert mail.get(f"{beta}/settings/exchange").status_code == 200
    assert mail.get(f"{mail.base}/mailFolders").status_code == 200
    over = mail.get(f"{beta}/mailFolders")  # the same mailbox's budget, whichever endpoint
    assert graph_code(over) == (429, "ApplicationThrottled") and "Retry-After" in over.headers
    assert state.throttle.requests[(next(iter(state.apps)), mail.user.id)] == 4


def test_beta_onedrive_spends_resource_units(writes: Writes) -> None:
    book = writes.fake.state.resource_units
    book.limits = ResourceUnitLimits(per_minute=1)
    beta = f"{writes.fake.graph_url}/beta/users/{writes.user.id}/drive"
    writes.get(beta)  # whatever the route answers, the request was charged
    assert sum(book.requests.values()) == 1
    refused = writes.get(f"{writes.fake.graph_url}/v1.0/users/{writes.user.id}/drive")
    assert graph_code(refused) == (429, "activityLimitReached")


def test_the_upload_host_spends_the_tenants_resource_units(writes: Writes) -> None:
    book = writes.fake.state.resource_units
    url = writes.session("big.bin")  # 2 RU: a write
    book.limits = ResourceUnitLimits(per_minute=6)
    data = b"x" * (2 * UNIT)
    assert writes.fragment(url, 0, data[:UNIT], len(data)).status_code == 202  # 4 RU
    assert writes.http.get(url).status_code == 200  # 5 RU: the status, a read
    over = writes.fragment(url, UNIT, data[UNIT:], len(data))  # 7 RU: refused
    assert graph_code(over) == (429, "activityLimitReached")
    assert over.headers["RateLimit-Limit"] == "6" and int(over.headers["Retry-After"]) <= 60
    assert book.spent == 5 and uploads(writes.fake.state).sessions  # nothing was committed
    advance(writes.fake, 61)
    assert writes.fragment(url, UNIT, data[UNIT:], len(data)).status_code == 201


def test_unknown_upload_urls_are_left_to_the_host(writes: Writes) -> None:
    book = writes.fake.state.resource_units
    answer = writes.http.put(
        f"{writes.fake.graph_url}/_upload/nonsense",
        headers={"Content-Range": "bytes 0-0/1"},
        content=b"x",
    )
    assert answer.status_code == 404 and sum(book.requests.values()) == 0


@pytest.mark.parametrize("k", [1, 60])
def test_microsoft_limits_scale_the_upload_byte_budget(writes: Writes, k: int) -> None:
    state = writes.fake.state
    microsoft_limits(state, k)
    book = uploads(state)
    assert book.budget_bytes == round(UPLOAD_BYTES_PER_HOUR / k)
    assert book.budget_window == HOUR_SECONDS / k  # the same bytes per second at any k
    book.budget_bytes = 1000  # the scaled window on the wire: 60 s at k = 60
    assert writes.put("a.bin", b"a" * 1000).status_code == 201
    assert graph_code(writes.put("b.bin", b"b")) == (429, "activityLimitReached")
    if k == 60:
        advance(writes.fake, 61)
        assert writes.put("b.bin", b"b").status_code == 201
