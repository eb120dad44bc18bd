"""/metrics: its own credential or allow-list, Prometheus's text format (parsed with
prometheus_client's parser), figures true to the catalog, and a bounded scrape."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from keepstone.api.metrics import MetricsAccess
from keepstone.domain.jobs import SessionStatus
from keepstone.services import catalog, metrics, runs
from keepstone.services.context import Context
from keepstone.store.tables import Job
from tests.conftest import BASE_URL, Api
from tests.work import catalog_work

TOKEN = "metrics-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def scraper(client: TestClient) -> Iterator[TestClient]:
    client.app.state.metrics_access = MetricsAccess(token=TOKEN)  # type: ignore[attr-defined]
    yield client
    client.app.state.metrics_access = MetricsAccess()  # type: ignore[attr-defined]


def _scrape(client: TestClient) -> list[Sample]:
    answer = client.get("/metrics", headers=BEARER)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return [s for family in text_string_to_metric_families(answer.text) for s in family.samples]


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def _run(ctx: Context, job_id: str, status: SessionStatus) -> str:
    assert runs.start_job(ctx, job_id, "a metrics test") is not None
    proxy = next(p.id for p in catalog.list_proxies(ctx) if p.is_local)
    run = runs.claim_next(ctx, proxy)
    assert run is not None
    assert runs.renew_lease(ctx, run, proxy) is runs.RunState.CONTINUE
    statistics: runs.Statistics = {"read_bytes": 7000, "read_items": 21, "written_bytes": 4000}
    ctx.clock.advance(timedelta(seconds=90))  # type: ignore[attr-defined]
    assert runs.end_attempt(ctx, run, proxy, status, "done", statistics, 100, retryable=False)
    return run.session_id


@pytest.mark.sqlite_catalog  # access control: the catalog's kind plays no part
def test_metrics_need_their_own_credential_or_an_allowed_address(
    client: TestClient, api: Api
) -> None:
    assert client.get("/metrics").status_code == 404  # not configured: not exposed
    client.app.state.metrics_access = MetricsAccess(token=TOKEN)  # type: ignore[attr-defined]
    try:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        user_token = api.token  # a user's token is not the metrics credential
        user = {"Authorization": f"Bearer {user_token}"}
        assert client.get("/metrics", headers=user).status_code == 401
        assert client.get("/metrics", headers=BEARER).status_code == 200
        basic = base64.b64encode(f"prometheus:{TOKEN}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}"}
        assert client.get("/metrics", headers=headers).status_code == 200
        # an allow-list admits the peers in its networks (and, behind a trusted proxy, the
        # client X-Forwarded-For names), without a credential
        allowed = (ipaddress.ip_network("192.0.2.0/24"),)
        client.app.state.metrics_access = MetricsAccess(allowed=allowed)  # type: ignore[attr-defined]
        assert client.get("/metrics").status_code == 401  # "testclient": not in the list
        inside = TestClient(client.app, base_url=BASE_URL, client=("192.0.2.7", 50000))
        assert inside.get("/metrics").status_code == 200
        proxy = TestClient(client.app, base_url=BASE_URL, client=("10.9.9.9", 50000))
        forwarded = {"X-Forwarded-For": "192.0.2.8"}
        assert proxy.get("/metrics", headers=forwarded).status_code == 401  # proxy not trusted
        trusted = (ipaddress.ip_network("10.9.9.9/32"),)
        client.app.state.trusted_proxies = trusted  # type: ignore[attr-defined]
        assert proxy.get("/metrics", headers=forwarded).status_code == 200
    finally:
        client.app.state.metrics_access = MetricsAccess()  # type: ignore[attr-defined]
        client.app.state.trusted_proxies = ()  # type: ignore[attr-defined]


def test_allow_list_admits_addresses_in_its_networks() -> None:
    access = MetricsAccess(allowed=(ipaddress.ip_network("10.1.0.0/16"),))
    assert access.admits("", "10.1.2.3")
    assert not access.admits("", "10.2.0.1")
    assert not access.admits(f"Bearer {TOKEN}", "10.2.0.1")  # no token configured
    assert MetricsAccess(token=TOKEN).admits(f"bearer {TOKEN}", "unknown")


def test_scrape_parses_and_tells_the_catalogs_figures(
    ctx: Context, api: Api, scraper: TestClient, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    renewals_before = _renewals(scraper)
    session_id = _run(ctx, job["id"], SessionStatus.WARNING)
    api.get(f"/v8/JobSessions/{session_id}")
    api.get("/api/jobs")
    samples = _scrape(scraper)
    job_labels = {"job_id": job["id"], "job": "test_job", "organization": "example.test"}
    assert _value(samples, "keepstone_job_last_result", result="Warning", **job_labels) == 1
    assert _value(samples, "keepstone_job_last_result", result="Success", **job_labels) == 0
    assert _value(samples, "keepstone_job_last_duration_seconds", **job_labels) == 90
    ended = runs.get_session(ctx, session_id).end_time
    assert ended is not None
    stamp = _value(samples, "keepstone_job_last_run_timestamp_seconds", **job_labels)
    assert stamp == ended.timestamp()
    assert _value(samples, "keepstone_job_last_read_bytes", **job_labels) == 7000
    assert _value(samples, "keepstone_job_last_stored_bytes", **job_labels) == 4000
    assert _value(samples, "keepstone_job_last_items", **job_labels) == 21
    repo_labels = {"repository_id": repo["id"]}
    space = catalog.disk_space(catalog.get_repository(ctx, repo["id"]).path)
    assert _value(samples, "keepstone_repository_capacity_bytes", **repo_labels) == space.capacity
    assert _value(samples, "keepstone_repository_restore_points", **repo_labels) == 0
    assert _value(samples, "keepstone_repository_used_bytes", **repo_labels) == 0
    assert _value(samples, "keepstone_repository_free_bytes", **repo_labels) > 0
    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    assert _value(samples, "keepstone_proxy_threads", proxy_id=local.id) == local.threads_number
    assert _value(samples, "keepstone_proxy_threads_busy", proxy_id=local.id) == 0
    assert _value(samples, "keepstone_proxy_online", proxy_id=local.id) in (0, 1)
    assert _renewals(scraper) == renewals_before + 1
    # requests by route template, never by raw path (the session id is no label)
    route = {"route": "/v8/JobSessions/{session_id}", "method": "GET", "dialect": "vb365"}
    assert _value(samples, "keepstone_http_requests_total", status="200", **route) >= 1
    assert all(
        session_id not in str(s.labels) for s in samples if s.name.startswith("keepstone_http")
    )
    em = {"route": "/api/jobs", "method": "GET", "dialect": "em"}
    assert _value(samples, "keepstone_http_request_duration_seconds_count", **em) >= 1
    assert _value(samples, "keepstone_http_request_duration_seconds_bucket", le="+Inf", **em) >= 1
    scraper.get("/v8/no/such/thing/12345")
    unrouted = [s for s in _scrape(scraper) if s.labels.get("route") == metrics.UNROUTED]
    assert unrouted and all("12345" not in str(s.labels) for s in unrouted)


def _renewals(client: TestClient) -> float:
    return sum(s.value for s in _scrape(client) if s.name == "keepstone_run_lease_renewals_total")


def test_login_failures_are_counted(client: TestClient, scraper: TestClient) -> None:
    def failures() -> float:
        return sum(s.value for s in _scrape(scraper) if s.name == "keepstone_login_failures_total")

    before = failures()
    answer = client.post(
        "/v2/Token", data={"grant_type": "password", "username": "admin", "password": "wrong"}
    )
    assert answer.status_code in (400, 401)
    assert failures() == before + 1


def test_scheduler_lag_is_observed_from_the_due_instant(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    policy = {"type": "Periodically", "periodicallyEvery": "Minutes5"}
    assert api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": policy}).status_code in (200, 204)
    with ctx.db.read() as s:
        due = s.get(Job, job["id"]).next_run  # type: ignore[union-attr]
    assert due is not None
    count, total = _histogram(metrics.SCHEDULER_LAG)
    ctx.clock.advance(timedelta(minutes=6))  # type: ignore[attr-defined]
    assert runs.dispatch_due(ctx).started == 1
    assert _histogram(metrics.SCHEDULER_LAG) == (
        count + 1,
        pytest.approx(total + (ctx.clock.now() - due).total_seconds()),
    )


def _histogram(histogram: Any) -> tuple[float, float]:
    samples = histogram.collect()[0].samples
    count = next(s.value for s in samples if s.name.endswith("_count"))
    return count, next(s.value for s in samples if s.name.endswith("_sum"))


def test_a_scrape_reads_the_catalog_a_fixed_number_of_times(
    ctx: Context, api: Api, scraper: TestClient, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    def statements(jobs: int) -> int:
        existing = len(api.rows("/v8/Jobs"))
        for n in range(existing, jobs):
            created = api.post(
                f"/v2/Organizations/{org['id']}/Jobs",
                {"name": f"job{n}", "backupType": "EntireOrganization", "repositoryId": repo["id"]},
            )
            assert created.status_code == 200, created.text
            _run(ctx, created.json()["id"], SessionStatus.SUCCESS)
        with catalog_work(ctx) as work:
            samples = _scrape(scraper)
        assert sum(1 for s in samples if s.name == "keepstone_job_last_items") == jobs
        return work.count

    assert statements(2) == statements(8)
