"""The failure matrix of a scaled-out installation, on one machine: two ``keepstone serve`` on one
PostgreSQL (``tests/cluster.py``), three ``keepstone proxy`` in one v8 pool, a pool-owned S3
repository on moto behind a fault-injecting relay (``tests/s3_faults.py``), three scheduled jobs.

In turn: a proxy killed (``kill -9``) in the middle of a run; the scheduler's leader killed; the
leader frozen (SIGSTOP) past its lease and thawed; PostgreSQL restarted during a run; S3 answering
503 and stalling. After each, every scheduled slot has run exactly once and ended well; at the end
every job has exactly one restore point per session, the repository verifies, and the newest
point of each job restores its users' files byte for byte.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from keepstone.store.tables import Job, JobSession
from tests import process_helpers as processes
from tests.backup.test_backup_restore import by_subject, everything_in, explore
from tests.cluster import Cluster, Timings, wait_for
from tests.conftest import Api
from tests.local_org import Organization
from tests.postgres_server import PostgresServer
from tests.proxy_process import ProxyProcess, start_proxy
from tests.s3_faults import Fault, FaultProxy
from tests.s3_server import MotoServer, account_body, make_bucket, moto, storage_body

# The whole matrix takes about two minutes on a loaded 2-core machine: far more than the
# suite's per-test default; its own waits are what bound each step.
pytestmark = pytest.mark.timeout(900)

__all__ = ["moto"]

TIMINGS = Timings(lease=3.0, idle_in_transaction=5.0)
RUN_LEASE = 10  # seconds: a killed proxy's run is handed over after this (30 in production; at
# 5 s a machine at load 30 could not renew in time, and runs were handed round without end)
PROXIES = ("edge-1", "edge-2", "edge-3")
ENDED = ("Success", "Warning", "Failed", "Stopped")
MiB = 1024 * 1024
HOLD = 300.0  # a held request: longer than any test waits


@pytest.fixture
def catalog(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


class Installation:
    """The cluster, its proxies (each reaching the servers through its own relay, so a test can
    hold one proxy's requests) and the API of the first server."""

    def __init__(self, cluster: Cluster, root: Path) -> None:
        self.cluster = cluster
        self.root = root
        self.http = httpx.Client(base_url=cluster[0].base_url, timeout=120)
        with cluster[0].client() as logged_on:
            self.http.headers.update(logged_on.headers)
        self.relays: dict[str, FaultProxy] = {}
        self.proxies: dict[str, ProxyProcess] = {}
        self.ids: dict[str, str] = {}
        self.repository_id = ""

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def start_proxy(self, name: str) -> None:
        """Start (or restart: its state file holds its credential) the proxy ``name``."""
        token = None
        if name not in self.ids:
            env = processes.process_env(KEEPSTONE_DATABASE=self.cluster.url)
            printed = processes.run_cli("admin", "proxy-token", env=env)
            assert printed.returncode == 0, printed.stderr
            token = printed.stdout.strip()
        relay = self.relays.get(name) or FaultProxy(self.cluster[0].base_url)
        self.relays[name] = relay
        self.proxies[name] = start_proxy(
            self.root / "logs",
            relay.url,
            name,
            token,
            self.root / "state" / name,
            env=processes.process_env(KEEPSTONE_CHECKPOINT_SECONDS="0"),
        )
        if name not in self.ids:
            listed = self.call("GET", "/v8/Proxies")["results"]
            self.ids[name] = next(p["id"] for p in listed if p["hostName"] == name)

    def maintenance(self, name: str, on: bool) -> None:
        action = "enable" if on else "disable"
        self.call("POST", f"/v8/Proxies/{self.ids[name]}/maintenance/{action}")

    def only(self, name: str) -> None:
        """Every proxy but ``name`` in maintenance: the next run goes to ``name``."""
        for other in PROXIES:
            self.maintenance(other, other != name)

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
        for relay in self.relays.values():
            relay.close()
        self.http.close()


def slot(cluster: Cluster, job_ids: list[str], seconds_from_now: float = 1.0) -> datetime:
    """Make the jobs due at a whole second from now: one scheduled slot each."""
    at = (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).replace(microsecond=0)
    with cluster.catalog_write() as s:
        s.execute(update(Job).where(Job.id.in_(job_ids)).values(next_run=at))
    return at


def sessions_of(cluster: Cluster, job_id: str) -> list[JobSession]:
    with cluster.catalog() as s:
        query = select(JobSession).where(JobSession.job_id == job_id)
        return list(s.scalars(query.order_by(JobSession.creation_time)))


def wait_scheduled(cluster: Cluster, job_ids: list[str], at: datetime) -> None:
    def scheduled() -> bool:
        return all(
            any(s.scheduled_for == at for s in sessions_of(cluster, job_id)) for job_id in job_ids
        )

    wait_for(scheduled, f"the runs of slot {at} to be scheduled", timeout=120)


def wait_ended(cluster: Cluster, job_ids: list[str], at: datetime) -> None:
    """Every job's session of slot ``at`` has ended (and ended well)."""

    def ended() -> bool:
        for job_id in job_ids:
            mine = [s for s in sessions_of(cluster, job_id) if s.scheduled_for == at]
            if len(mine) != 1 or mine[0].status not in ENDED:
                return False
        return True

    wait_for(ended, f"the runs of slot {at}", timeout=240)
    for job_id in job_ids:
        [session] = [s for s in sessions_of(cluster, job_id) if s.scheduled_for == at]
        assert session.status in ("Success", "Warning"), (session.status, session.details)


def running_on(cluster: Cluster, job_id: str, at: datetime) -> JobSession | None:
    found = [s for s in sessions_of(cluster, job_id) if s.scheduled_for == at]
    return found[0] if found and found[0].status == "Running" else None


def test_no_failure_loses_or_doubles_a_restore_point(
    catalog: str, moto: MotoServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    organization = Organization(tmp_path / "acme")
    for user in ("alice", "bob", "carol"):
        organization.user(user)
        organization.mail(user, "", f"Hello {user}")
        organization.file(user, "Documents/big.bin", size=MiB)
    s3 = FaultProxy(moto.url)
    extra = {"KEEPSTONE_RUN_LEASE_SECONDS": str(RUN_LEASE)}
    with Cluster(tmp_path / "cluster", catalog, 2, TIMINGS, extra_env=extra) as cluster:
        site = Installation(cluster, tmp_path)
        try:
            for name in PROXIES:
                site.start_proxy(name)
            jobs = _arrange(site, organization, s3.url, make_bucket(moto.url))
            slots: list[datetime] = []

            # 1. kill -9 the proxy working a run: another proxy of the pool takes it over
            site.only("edge-1")
            site.relays["edge-1"].add(
                Fault("delay", method="POST", path_contains="/tasks", times=1, seconds=HOLD)
            )
            slots.append(slot(cluster, jobs[:1]))
            wait_for(lambda: site.relays["edge-1"].injected["delay"] >= 1, "edge-1 held mid-run")
            assert running_on(cluster, jobs[0], slots[-1]) is not None
            site.proxies["edge-1"].kill()
            site.maintenance("edge-2", False)
            wait_ended(cluster, jobs[:1], slots[-1])
            site.start_proxy("edge-1")  # back from its state file, no new token
            for name in PROXIES:
                site.maintenance(name, False)
            slots.append(slot(cluster, jobs))
            wait_ended(cluster, jobs, slots[-1])

            # 2. kill -9 the scheduler's leader just before a slot: the other server schedules
            # it (the proxies, which reach the first server, may wait for its restart)
            leader, _ = cluster.wait_for_term()
            slots.append(slot(cluster, jobs, 2))
            leader.kill()
            wait_scheduled(cluster, jobs, slots[-1])
            leader.start()
            wait_ended(cluster, jobs, slots[-1])

            # 3. freeze the leader past its lease: the other leads and schedules; then thaw it
            frozen, _ = cluster.wait_for_term()
            frozen.freeze()
            slots.append(slot(cluster, jobs, 1))
            cluster.wait_for_term(other_than=frozen)
            wait_scheduled(cluster, jobs, slots[-1])
            frozen.thaw()
            wait_ended(cluster, jobs, slots[-1])

            # 4. restart PostgreSQL while runs are in progress
            slots.append(slot(cluster, jobs, 1))
            wait_for(
                lambda: any(running_on(cluster, j, slots[-1]) for j in jobs), "a run in progress"
            )
            postgres.restart()
            wait_ended(cluster, jobs, slots[-1])

            # 5. S3 answers 503 three times, then stalls a write for 5 s
            s3.add(Fault("503", method="PUT", times=3))
            s3.add(Fault("delay", method="PUT", times=1, seconds=5))
            slots.append(slot(cluster, jobs, 1))
            wait_ended(cluster, jobs, slots[-1])
            assert s3.injected["503"] == 3 and s3.injected["delay"] == 1

            time.sleep(2 * TIMINGS.lease)  # room for a late (wrong) second run of any slot
            _check(site, cluster, jobs, slots, organization)
        finally:
            site.close()
            s3.close()


def _arrange(site: Installation, organization: Organization, s3_url: str, bucket: str) -> list[str]:
    """The pool of the three proxies, an S3 repository it owns, three hourly jobs."""
    ids = [{"proxyId": site.ids[name]} for name in PROXIES]
    pool = site.call("POST", "/v8/ProxyPools", {"name": "edge", "description": "", "proxyIds": ids})
    account = site.call("POST", "/v8/Accounts", account_body())
    repository = site.call(
        "POST",
        "/v8/BackupRepositories",
        {
            "name": "s3",
            "path": str(site.root / "s3-cache"),
            "proxyPoolId": pool["id"],
            "objectStorage": storage_body(s3_url, bucket, account["id"]),
        },
    )
    org_id = processes.add_local_organization(site.http, "acme.test", organization.root)
    jobs = []
    for n in range(3):
        job = processes.add_job(site.http, org_id, f"hourly {n}", repository["id"])
        policy = {"type": "Periodically", "periodicallyEvery": "Hours1"}
        site.call("PUT", f"/v2/Jobs/{job}", {"schedulePolicy": policy})
        jobs.append(job)
    site.repository_id = repository["id"]
    return jobs


def _check(
    site: Installation,
    cluster: Cluster,
    jobs: list[str],
    slots: list[datetime],
    organization: Organization,
) -> None:
    for job in jobs:
        sessions = sessions_of(cluster, job)
        scheduled = [s.scheduled_for for s in sessions if s.scheduled_for is not None]
        assert len(scheduled) == len(set(scheduled)), "a slot ran twice"
        assert all(s.status in ("Success", "Warning") for s in sessions), [
            (s.status, s.details) for s in sessions
        ]
        points = site.call("GET", f"/v2/RestorePoints?jobId={job}")
        assert len(points) == len(sessions), "a restore point lost or doubled"
        expected = slots if job == jobs[0] else slots[1:]  # the first slot was the first job's
        assert set(expected) <= set(scheduled), "a slot did not run"
        # The jobs are hourly: a test that spans a whole hour also sees that hour's own slot.
        extra = set(scheduled) - set(expected)
        assert all(at.minute == at.second == 0 for at in extra), ("a slot from nowhere", extra)
    verified = site.call("POST", f"/v6/BackupRepositories/{site.repository_id}/verify")
    assert verified["ok"] is True, verified
    api = Api(cast(TestClient, site.http), None)  # the token is in the client's headers
    for job in jobs:
        assert everything_in(api, explore(api, {"id": job})) == by_subject(organization)
