"""Two real ``keepstone serve`` processes on one PostgreSQL catalog (``tests/cluster.py``): each
has its own built-in proxy; tokens, logon sessions, tasks and sessions made on one are answered
by the other; one server schedules at a time, each slot exactly once, through a ``kill -9`` of
the leader, its restart, and a SIGSTOP of the next leader past its lease and its SIGCONT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from keepstone.store.tables import Job, JobSession, Proxy
from tests import process_helpers as processes
from tests.cluster import PASSWORD, Cluster, Node, Timings, wait_for
from tests.postgres_server import PostgresServer

TIMINGS = Timings(lease=3.0, idle_in_transaction=5.0)
EM_SESSION = "X-RestSvcSessionId"
HTTP = 60.0  # seconds an answer may take on a loaded machine (a logon hashes a password)


@pytest.fixture
def catalog(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


def _slot(cluster: Cluster, job_id: str, seconds_from_now: float = 0.0) -> datetime:
    """Make ``job_id`` due at a whole second from now (a scheduled slot)."""
    at = (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).replace(microsecond=0)
    with cluster.catalog_write() as s:
        s.execute(update(Job).where(Job.id == job_id).values(next_run=at))
    return at


def _scheduled(cluster: Cluster, job_id: str) -> list[datetime]:
    """The slots the job's sessions were scheduled for (each once, if all is well)."""
    with cluster.catalog() as s:
        query = select(JobSession.scheduled_for).where(
            JobSession.job_id == job_id, JobSession.scheduled_for.is_not(None)
        )
        return sorted(when for when in s.scalars(query) if when is not None)


def _wait_scheduled(cluster: Cluster, job_id: str, slot: datetime) -> float:
    started = time.monotonic()
    wait_for(lambda: slot in _scheduled(cluster, job_id), f"a run of job {job_id} for {slot}")
    return time.monotonic() - started


def _answerable_from_every_server(cluster: Cluster, on: Node, other: Node, org: Path) -> list[str]:
    """Objects made through ``on`` answered by ``other``; returns the ids of four scheduled jobs."""
    with on.client() as first, httpx.Client(base_url=other.base_url, timeout=HTTP) as second:
        second.headers.update(first.headers)  # the VB365 token issued by the other server
        repository = second.get("/v2/BackupRepositories").json()[0]["id"]
        org_id = processes.add_local_organization(first, "cluster.test", org)
        jobs = [processes.add_job(second, org_id, f"job {n}", repository) for n in range(5)]
        for job in jobs[1:]:
            policy = {"type": "Periodically", "periodicallyEvery": "Hours1"}
            answer = first.put(f"/v2/Jobs/{job}", json={"schedulePolicy": policy})
            assert answer.status_code == 200, answer.text
        # an Enterprise Manager logon and task made on one server, polled on the other
        logon = httpx.post(
            f"{on.base_url}/api/sessionMngr/?v=latest", auth=("admin", PASSWORD), timeout=HTTP
        )
        assert logon.status_code == 201, logon.text
        em = {EM_SESSION: logon.headers[EM_SESSION]}
        task = httpx.post(
            f"{on.base_url}/api/jobs/{jobs[0]}?action=start", headers=em, timeout=HTTP
        )
        assert task.status_code == 202, task.text
        task_path = "/api/" + task.headers["location"].split("/api/", 1)[1]

        def finished() -> bool:
            polled = httpx.get(f"{other.base_url}{task_path}", headers=em, timeout=HTTP)
            assert polled.status_code == 200, polled.text
            return "<State>Finished</State>" in polled.text

        wait_for(finished, "the task polled on the other server to finish")
        sessions = second.get(f"/v2/Jobs/{jobs[0]}/JobSessions").json()
        assert len(sessions) == 1  # the run started through the first server
    return jobs[1:]


def test_two_servers_one_schedule_through_kill_restart_freeze_and_thaw(
    catalog: str, tmp_path: Path
) -> None:
    org = tmp_path / "org"
    (org / "alice" / "Mail").mkdir(parents=True)
    (org / "alice" / "Mail" / "hello.eml").write_bytes(b"Subject: hi\r\n\r\nhello\r\n")
    with Cluster(tmp_path / "cluster", catalog, nodes=2, timings=TIMINGS) as cluster:
        with cluster.catalog() as s:
            owners = s.scalars(select(Proxy.server_id).where(Proxy.is_local.is_(True))).all()
        assert sorted(owners) == sorted(node.server_id for node in cluster.nodes)
        leader = cluster.wait_for_leader()
        jobs = _answerable_from_every_server(cluster, cluster.other_than(leader), leader, org)
        planned: dict[str, datetime] = {}

        # slots while both run: each scheduled once
        for job, seconds in ((jobs[0], 1), (jobs[1], 2)):
            planned[job] = _slot(cluster, job, seconds)
            _wait_scheduled(cluster, job, planned[job])

        # kill -9 the leader: the other schedules within about two leases, in a new term
        leader, epoch = cluster.wait_for_term()
        survivor = cluster.other_than(leader)
        leader.kill()
        planned[jobs[2]] = _slot(cluster, jobs[2])
        waited = _wait_scheduled(cluster, jobs[2], planned[jobs[2]])
        print(f"after kill -9 of the leader, the next slot was scheduled in {waited:.1f} s")
        assert waited < 4 * TIMINGS.lease + 4, waited
        successor, after_kill = cluster.wait_for_term()
        assert successor is survivor and after_kill > epoch

        # the killed server comes back (its proxy's runs abandoned, nothing doubled)
        leader.start()

        # SIGSTOP the leader past its lease: the other leads; SIGCONT: it steps down, no double
        frozen, before_freeze = cluster.wait_for_term()
        other = cluster.other_than(frozen)
        steps_down = _step_downs(frozen)
        frozen.freeze()
        planned[jobs[3]] = _slot(cluster, jobs[3], 1)
        successor, after_freeze = cluster.wait_for_term(other_than=frozen)
        assert successor is other and after_freeze > before_freeze
        _wait_scheduled(cluster, jobs[3], planned[jobs[3]])
        frozen.thaw()
        wait_for(lambda: _step_downs(frozen) > steps_down, "the thawed server to step down")
        time.sleep(2 * TIMINGS.lease)  # time for late writes, were any let through
        with frozen.client() as thawed:  # it still answers
            assert thawed.get(f"/v2/Jobs/{jobs[3]}").status_code == 200
        for job, slot in planned.items():  # every slot exactly once
            scheduled = _scheduled(cluster, job)
            assert len(scheduled) == len(set(scheduled)) and scheduled.count(slot) == 1


def _step_downs(node: Node) -> int:
    """How often its log says it stopped leading: at an election round after a thaw, or at a
    fenced write refused first."""
    output = node.output
    return output.count("no longer leading") + output.count("another server leads")
