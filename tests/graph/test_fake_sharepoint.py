"""The fake's SharePoint/OneDrive throttling: resource units per (app, tenant) per minute and per
day with Microsoft's costs, `RateLimit-*` headers from 80 %, 429/503 with `Retry-After`, the
premature-retry penalty (graph.md §2.3, §6.2); the time scale k (Microsoft's limits k times
faster, the same rate); the record of premature retries (Outlook blocks, faults with
Retry-After)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.graph.fake_client import advance, bearer, client, graph_code
from tests.graph_fake.faults import FaultRule
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.sharepoint import ResourceUnitLimits, cost_of, microsoft_limits
from tests.graph_fake.throttle import Limits

SECRET = "s3cret"


class Drives:
    def __init__(self, fake: FakeGraph, http: httpx.Client) -> None:
        state = fake.state
        tenant = state.add_tenant("contoso.onmicrosoft.com")
        self.user = state.add_user(tenant, "adele")
        state.add_mailbox(self.user)
        self.drive = state.add_drive(self.user)
        with state.lock:
            self.file = self.drive.add("a.bin", state.clock.now(), b"0123456789")
        self.fake, self.http = fake, http
        self.headers = bearer(http, fake, state.add_app(tenant, secret=SECRET), SECRET)
        self.other_app = bearer(http, fake, state.add_app(tenant, secret=SECRET), SECRET)
        self.base = f"{fake.graph_url}/v1.0"
        self.book = state.resource_units

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        url = path if path.startswith("https:") else self.base + path
        return self.http.get(url, headers=headers or self.headers)

    def folders(self) -> httpx.Response:
        return self.get(f"/users/{self.user.id}/mailFolders")

    def item(self, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.get(f"/drives/{self.drive.id}/items/{self.file.id}", headers)

    def limit(self, **values: Any) -> None:
        with self.fake.state.lock:
            self.book.limits = ResourceUnitLimits(**values)


@pytest.fixture
def drives(graph_fake: FakeGraph) -> Iterator[Drives]:
    with client(graph_fake) as http:
        yield Drives(graph_fake, http)


@pytest.mark.parametrize(
    ("method", "path", "query", "cost"),
    [
        ("GET", "/v1.0/drives/d/items/i", "", 1),
        ("GET", "/v1.0/users/u/drive", "", 1),
        ("GET", "/v1.0/drives/d/root/delta", "$select=id", 2),
        ("GET", "/v1.0/drives/d/root/delta", "token=abc", 1),
        ("GET", "/_download/i", "tempauth=x", 1),
        ("GET", "/v1.0/drives/d/items/i/children", "", 2),
        ("PUT", "/v1.0/drives/d/items/p:/n:/content", "", 2),
        ("POST", "/v1.0/drives/d/items/p/children", "", 2),
        ("DELETE", "/v1.0/drives/d/items/i", "", 2),
        ("GET", "/v1.0/drives/d/items/i/permissions", "", 5),
        ("GET", "/v1.0/drives/d/items/i", "$expand=permissions", 5),
    ],
)
def test_costs_follow_microsofts_table(method: str, path: str, query: str, cost: int) -> None:
    assert cost_of(method, path, query) == cost


def test_minute_budget_headers_429_and_premature_retry(drives: Drives) -> None:
    drives.limit(per_minute=10)
    answers = [drives.item() for _ in range(7)]
    assert all(a.status_code == 200 for a in answers)
    assert all("RateLimit-Limit" not in a.headers for a in answers)  # below 80 %
    eighth = drives.item()
    assert eighth.status_code == 200
    assert (eighth.headers["RateLimit-Limit"], eighth.headers["RateLimit-Remaining"]) == ("10", "2")
    assert eighth.headers["RateLimit-Reset"] == "60"
    assert [drives.item().status_code for _ in range(2)] == [200, 200]
    over = drives.item()
    assert graph_code(over) == (429, "activityLimitReached")
    assert over.headers["Retry-After"] == "60" and over.headers["RateLimit-Remaining"] == "0"
    assert drives.item(drives.other_app).status_code == 200  # another app's budget
    advance(drives.fake, 59)
    early = drives.item()  # one second early: refused, and the block starts again
    assert early.status_code == 429 and early.headers["Retry-After"] == "60"
    assert drives.book.premature == 1
    advance(drives.fake, 59)
    assert drives.item().status_code == 429  # would have been free without the penalty
    advance(drives.fake, 60)
    assert drives.item().status_code == 200
    assert drives.book.refused == 3 and drives.book.premature == 2


def test_refused_requests_spend_nothing_and_the_window_slides(drives: Drives) -> None:
    drives.limit(per_minute=4)
    assert [drives.item().status_code for _ in range(2)] == [200, 200]
    advance(drives.fake, 30)
    assert [drives.item().status_code for _ in range(2)] == [200, 200]
    over = drives.item()
    assert over.status_code == 429 and over.headers["Retry-After"] == "30"
    assert drives.book.spent == 4
    advance(drives.fake, 30)
    assert [drives.item().status_code for _ in range(2)] == [200, 200]  # the first two aged out
    assert drives.item().status_code == 429


def test_delta_download_and_batch_are_charged_by_cost(drives: Drives) -> None:
    first = drives.get(f"/drives/{drives.drive.id}/root/delta")
    assert first.status_code == 200 and drives.book.spent == 2  # delta without a token
    url = next(e for e in first.json()["value"] if e["id"] == drives.file.id)[
        "@microsoft.graph.downloadUrl"
    ]
    assert drives.http.get(url).content == b"0123456789"
    assert drives.book.spent == 3  # the download, charged to the same (app, tenant)
    assert len(drives.book.budgets) == 1
    again = drives.get(first.json()["@odata.deltaLink"])
    assert again.status_code == 200 and drives.book.spent == 4  # delta with a token
    requests = [
        {"id": str(n), "method": "GET", "url": f"/drives/{drives.drive.id}/items/{drives.file.id}"}
        for n in range(3)
    ]
    batch = drives.http.post(
        f"{drives.base}/$batch", headers=drives.headers, json={"requests": requests}
    )
    assert batch.status_code == 200 and drives.book.spent == 7  # each inner request counts


def test_mail_requests_spend_no_resource_units(drives: Drives) -> None:
    answer = drives.get(f"/users/{drives.user.id}/mailFolders")
    assert answer.status_code == 200 and drives.book.spent == 0


def test_503_variant_and_day_budget(drives: Drives) -> None:
    # A 30-minute "day" keeps the app's token valid across it.
    drives.limit(per_minute=100, per_day=3, day=timedelta(minutes=30), status=503)
    assert [drives.item().status_code for _ in range(3)] == [200, 200, 200]
    over = drives.item()
    assert graph_code(over) == (503, "serviceNotAvailable")
    assert over.headers["Retry-After"] == "1800"
    advance(drives.fake, 1800)
    assert drives.item().status_code == 200


def test_switched_off(drives: Drives) -> None:
    drives.limit(per_minute=1, enabled=False)
    assert [drives.item().status_code for _ in range(3)] == [200] * 3
    assert drives.book.spent == 0


def test_limits_scale_keeps_the_rate() -> None:
    scaled = ResourceUnitLimits().scaled(60)
    assert (scaled.per_minute, scaled.minute) == (21, timedelta(seconds=1))
    assert (scaled.per_day, scaled.day) == (20_000, timedelta(seconds=1440))
    with pytest.raises(ValueError, match="positive"):
        ResourceUnitLimits().scaled(0)


@pytest.mark.parametrize("k", [1, 10, 60])
def test_the_scale_divides_windows_and_budgets_alike(k: int) -> None:
    outlook = Limits().scaled(k)
    assert outlook.concurrency == 4 and outlook.window == timedelta(minutes=10) / k
    assert abs(outlook.requests / outlook.window.total_seconds() - 10_000 / 600) < 0.05


def test_scaled_limits_on_the_wire(drives: Drives) -> None:
    microsoft_limits(drives.fake.state, 60)  # 167 requests per 10 s, 21 RU per second
    assert all(drives.folders().status_code == 200 for _ in range(167))
    over = drives.folders()
    assert over.status_code == 429 and over.headers["Retry-After"] == "10"
    assert all(drives.item().status_code == 200 for _ in range(21))
    throttled = drives.item()
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    advance(drives.fake, 10)
    assert drives.folders().status_code == 200 and drives.item().status_code == 200
    assert drives.fake.state.throttle.premature == 0


def test_outlook_block_counts_premature_requests(drives: Drives) -> None:
    drives.fake.state.throttle.limits = Limits(requests=2)
    assert [drives.folders().status_code for _ in range(3)] == [200, 200, 429]
    assert drives.fake.state.throttle.premature == 0  # the refusal itself is not premature
    assert drives.folders().status_code == 429  # as soon as one already in flight: not counted
    assert drives.fake.state.throttle.premature == 0
    advance(drives.fake, 1)
    assert drives.folders().status_code == 429
    assert drives.fake.state.throttle.premature == 1


def test_a_fault_with_retry_after_records_requests_before_it(drives: Drives) -> None:
    faults = drives.fake.state.faults
    faults.add(FaultRule(r"/mailFolders$", 503, retry_after=5, limit=1))
    assert drives.folders().status_code == 503
    advance(drives.fake, 4)
    assert drives.folders().status_code == 200  # the fault fired once; the early retry is noted
    assert len(faults.premature) == 1
    advance(drives.fake, 1)
    assert drives.folders().status_code == 200
    assert len(faults.premature) == 1
    assert drives.item().status_code == 200  # another path was never closed
    assert len(faults.premature) == 1
