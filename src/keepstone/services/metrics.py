"""Prometheus metrics: what this process counts as it works, and what the catalog says at the
moment of a scrape.

- **Counted by the process** (``PROCESS``, a registry of its own): API requests by route
  template (never the raw path: ids would make a series each), method, status and dialect, with
  a latency histogram; login failures; run lease renewals per proxy; the scheduler's lag from a
  run's due instant to its queuing. Counters start at zero with the process, as Prometheus
  expects (``rate()`` handles restarts).
- **Read from the catalog at scrape time** (:class:`CatalogCollector`): per job its last
  finished run (result, duration, end time, bytes read and stored, items read), per repository
  its capacity, free bytes, restore points and their bytes, per proxy its state, threads and
  busy threads. Three statements, whatever the number of jobs, repositories or proxies.

Names follow Prometheus's conventions: ``keepstone_`` prefix, base units in the name
(``_seconds``, ``_bytes``), ``_total`` for counters, ``_timestamp_seconds`` for instants.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from keepstone.domain.jobs import SessionStatus
from keepstone.services.context import Context
from keepstone.services.proxies import proxy_status
from keepstone.store.tables import (
    CopyJobSession,
    Job,
    JobSession,
    Organization,
    Proxy,
    Repository,
    RestorePoint,
)

PROCESS = CollectorRegistry(auto_describe=True)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
RESULTS = tuple(s.value for s in SessionStatus if not s.is_active)
UNROUTED = "(unmatched)"  # a request no route took: one series, whatever its path

REQUESTS = Counter(
    "keepstone_http_requests",
    "API requests answered, by route template, method, status and dialect",
    ("route", "method", "status", "dialect"),
    registry=PROCESS,
)
REQUEST_SECONDS = Histogram(
    "keepstone_http_request_duration_seconds",
    "Time from a request's arrival to its answer, by route template, method and dialect",
    ("route", "method", "dialect"),
    buckets=LATENCY_BUCKETS,
    registry=PROCESS,
)
LOGIN_FAILURES = Counter(
    "keepstone_login_failures", "Logins refused for a wrong user name or password", registry=PROCESS
)
LEASE_RENEWALS = Counter(
    "keepstone_run_lease_renewals",
    "Leases of running runs renewed by their proxy, through this server",
    ("proxy",),
    registry=PROCESS,
)
SCHEDULER_LAG = Histogram(
    "keepstone_scheduler_lag_seconds",
    "Time from a scheduled run's due instant to its queuing",
    buckets=LAG_BUCKETS,
    registry=PROCESS,
)


# (route, method, status, dialect) -> its counter and histogram: bounded like the series
_CHILDREN: dict[tuple[str, str, int, str], tuple[Any, Any]] = {}


def dialect_of(path: str) -> str:
    """``vb365`` (``/vN/...``), ``em`` (``/api/...``), else ``other`` (probes, Swagger...)."""
    first = path.split("/", 2)[1].lower() if path.startswith("/") and len(path) > 1 else ""
    if first == "api":
        return "em"
    if first[:1] == "v" and first[1:].isdigit():
        return "vb365"
    return "other"


def observe_request(method: str, route: str | None, status: int, seconds: float, path: str) -> None:
    """One answered request; ``route`` is its template (None when no route took it)."""
    dialect = dialect_of(path)
    template = route or UNROUTED
    if route is not None and dialect == "vb365" and not route.lower().startswith("/v"):
        # the versioned routers' routes know their path without the /vN they are mounted at
        template = f"/{path.split('/', 2)[1].lower()}{route}"
    key = (template, method, status, dialect)
    children = _CHILDREN.get(key)
    if children is None:  # labels() validates and locks: once per series, not per request
        children = _CHILDREN.setdefault(
            key,
            (
                REQUESTS.labels(template, method, str(status), dialect),
                REQUEST_SECONDS.labels(template, method, dialect),
            ),
        )
    children[0].inc()
    children[1].observe(seconds)


def observe_scheduler_lag(due: datetime, queued: datetime) -> None:
    SCHEDULER_LAG.observe(max(0.0, (queued - due).total_seconds()))


# ---- read from the catalog at scrape time ------------------------------------------------------


class CatalogCollector(Collector):
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        yield from _job_metrics(self.ctx)
        yield from _repository_metrics(self.ctx)
        yield from _proxy_metrics(self.ctx)


def _timestamp(instant: datetime | None) -> float:
    return instant.timestamp() if instant is not None else 0.0


def _job_metrics(ctx: Context) -> Iterator[Metric]:
    """Each backup job's last finished run: one statement (the run found per job through the
    ``(job_id, creation_time)`` index)."""
    labels = ["job_id", "job", "organization"]
    result = GaugeMetricFamily(
        "keepstone_job_last_result",
        "1 for the result of the job's last finished run (Success, Warning, Failed, Stopped)",
        labels=[*labels, "result"],
    )
    families = {
        "duration": GaugeMetricFamily(
            "keepstone_job_last_duration_seconds", "Duration of the job's last run", labels=labels
        ),
        "end": GaugeMetricFamily(
            "keepstone_job_last_run_timestamp_seconds",
            "When the job's last run ended (Unix time; 0: never)",
            labels=labels,
        ),
        "read_bytes": GaugeMetricFamily(
            "keepstone_job_last_read_bytes", "Bytes the job's last run read", labels=labels
        ),
        "written_bytes": GaugeMetricFamily(
            "keepstone_job_last_stored_bytes",
            "Bytes the job's last run stored in its repository (after deduplication)",
            labels=labels,
        ),
        "read_items": GaugeMetricFamily(
            "keepstone_job_last_items", "Items the job's last run read", labels=labels
        ),
    }
    last = (
        select(JobSession.id)
        .where(
            JobSession.job_id == Job.id,
            JobSession.end_time.is_not(None),
            ~JobSession.id.in_(select(CopyJobSession.session_id)),
        )
        .order_by(JobSession.creation_time.desc())
        .limit(1)
        .correlate(Job)
        .scalar_subquery()
    )
    with ctx.db.read() as s:
        rows = s.execute(
            select(Job.id, Job.name, Organization.name, JobSession)
            .join(Organization, Organization.id == Job.organization_id)
            .outerjoin(JobSession, JobSession.id == last)
            .order_by(Job.name, Job.id)
        ).all()
    for job_id, job_name, org_name, session in rows:
        values = [job_id, job_name, org_name]
        for value in RESULTS:
            hit = session is not None and session.status == value
            result.add_metric([*values, value], 1.0 if hit else 0.0)
        if session is None:
            families["end"].add_metric(values, 0.0)
            continue
        stats = session.statistics or {}
        assert session.end_time is not None
        families["duration"].add_metric(
            values, (session.end_time - session.creation_time).total_seconds()
        )
        families["end"].add_metric(values, _timestamp(session.end_time))
        for key in ("read_bytes", "written_bytes", "read_items"):
            families[key].add_metric(values, float(stats.get(key, 0) or 0))
    yield result
    yield from families.values()


def _repository_metrics(ctx: Context) -> Iterator[Metric]:
    """One statement: each repository with the count and bytes of its restore points."""
    labels = ["repository_id", "repository"]
    capacity = GaugeMetricFamily(
        "keepstone_repository_capacity_bytes",
        "Capacity of the file system holding the repository",
        labels=labels,
    )
    free = GaugeMetricFamily(
        "keepstone_repository_free_bytes",
        "Free bytes on the file system holding the repository",
        labels=labels,
    )
    used = GaugeMetricFamily(
        "keepstone_repository_used_bytes",
        "Bytes of the repository's restore points (their stored size, as the catalog records)",
        labels=labels,
    )
    points = GaugeMetricFamily(
        "keepstone_repository_restore_points",
        "Restore points in the repository",
        labels=labels,
    )
    with ctx.db.read() as s:
        rows = s.execute(
            select(
                Repository.id,
                Repository.name,
                Repository.path,
                func.count(RestorePoint.id),
                func.coalesce(func.sum(RestorePoint.size), 0),
            )
            .outerjoin(RestorePoint, RestorePoint.repository_id == Repository.id)
            .group_by(Repository.id, Repository.name, Repository.path)
            .order_by(Repository.name)
        ).all()
    # here, not at the top: auth -> login_guard -> metrics must not import the catalog services
    from keepstone.services.catalog import disk_space

    for repo_id, name, path, count, size in rows:
        space = disk_space(path)
        capacity.add_metric([repo_id, name], float(space.capacity))
        free.add_metric([repo_id, name], float(space.free))
        used.add_metric([repo_id, name], float(size))
        points.add_metric([repo_id, name], float(count))
    yield from (capacity, free, used, points)


def _proxy_metrics(ctx: Context) -> Iterator[Metric]:
    labels = ["proxy_id", "proxy"]
    online = GaugeMetricFamily(
        "keepstone_proxy_online", "1 while the proxy heartbeats, else 0", labels=labels
    )
    threads = GaugeMetricFamily(
        "keepstone_proxy_threads", "Runs the proxy may work at once", labels=labels
    )
    busy = GaugeMetricFamily(
        "keepstone_proxy_threads_busy", "Runs the proxy works now", labels=labels
    )
    maintenance = GaugeMetricFamily(
        "keepstone_proxy_maintenance", "1 while the proxy is in maintenance mode", labels=labels
    )
    now = ctx.clock.now()
    with ctx.db.read() as s:
        proxies = list(s.scalars(select(Proxy).order_by(Proxy.host_name, Proxy.id)))
    for proxy in proxies:
        values = [proxy.id, proxy.host_name]
        online.add_metric(values, 1.0 if proxy_status(proxy, now) == "Online" else 0.0)
        threads.add_metric(values, float(proxy.threads_number))
        busy.add_metric(values, float(proxy.active_runs))
        maintenance.add_metric(values, 1.0 if proxy.maintenance else 0.0)
    yield from (online, threads, busy, maintenance)


def exposition(ctx: Context) -> bytes:
    """The text a scrape answers: this process's counters, then the catalog's figures."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(CatalogCollector(ctx))
    return generate_latest(PROCESS) + generate_latest(scrape)
