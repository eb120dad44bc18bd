"""A proxy works up to its ``threadsNumber`` runs at once, each on its own thread, and its
heartbeats report how many it works; the reaper hands lost runs back with a few statements per
run (N and 4N runs cost the same per run)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from keepstone.clock import ManualClock
from keepstone.domain.jobs import SessionStatus
from keepstone.proxy.executor import Outcome, RunContext
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import catalog, runs
from keepstone.services.context import Context
from tests.conftest import Api
from tests.test_secret_key import _statements

DEADLINE = 60.0


def jobs(api: Api, org: dict[str, Any], repo: dict[str, Any], count: int) -> list[str]:
    made = []
    for n in range(count):
        job = api.post(
            f"/v2/Organizations/{org['id']}/Jobs",
            {
                "name": f"job {n}",
                "repositoryId": repo["id"],
                "schedulePolicy": {"type": "ManualOnly"},
            },
        )
        assert job.status_code == 200, job.text
        made.append(job.json()["id"])
    return made


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


class Holding:
    """An executor that holds every run until released, counting the runs in flight."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.threads: set[str] = set()

    def __call__(self, run: RunContext) -> Outcome:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.threads.add(threading.current_thread().name + str(threading.get_ident()))
        try:
            assert self.release.wait(DEADLINE)
        finally:
            with self.lock:
                self.now -= 1
        return Outcome(SessionStatus.SUCCESS, "held and done")


def test_a_proxy_works_up_to_its_threads_number_of_runs_at_once(
    ctx: Context, api: Api, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    catalog.edit_proxy(ctx, local.id, catalog.ProxyEdit(threads_number=2))
    made = jobs(api, org, repo, 3)
    for job in made:
        assert api.post(f"/v2/Jobs/{job}/Action", {"start": None}).status_code == 200
    held = Holding()
    worker = ProxyWorker(ctx, local.id, held, renew_every=0)
    worker.start()
    try:
        wait_for(lambda: held.now == 2, "two runs at once")
        # its heartbeat tells the catalog how many it works now
        wait_for(lambda: catalog.get_proxy(ctx, local.id).active_runs == 2, "active_runs 2")
        assert held.now == 2 and worker.active_runs() == 2  # the third waits for a thread
        statuses = sorted(api.get(f"/v2/Jobs/{job}").json()["lastStatus"] for job in made)
        assert statuses == ["Queued", "Running", "Running"]
        held.release.set()
        wait_for(
            lambda: all(
                api.get(f"/v2/Jobs/{job}").json()["lastStatus"] == "Success" for job in made
            ),
            "every run ends",
        )
        wait_for(lambda: catalog.get_proxy(ctx, local.id).active_runs == 0, "active_runs 0")
    finally:
        held.release.set()
        assert worker.stop(DEADLINE)
    assert held.most == 2 and len(held.threads) >= 2  # runs on threads of their own


def test_the_reaper_hands_back_n_and_4n_lost_runs_at_the_same_cost_per_run(
    ctx: Context, api: Api, org: dict[str, Any], repo: dict[str, Any], clock: ManualClock
) -> None:
    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)

    def lose(count: int) -> int:
        made = jobs(api, org, repo, count)
        for job in made:
            assert api.post(f"/v2/Jobs/{job}/Action", {"start": None}).status_code == 200
            assert runs.claim_next(ctx, local.id) is not None
        clock.advance(runs.LEASE + timedelta(seconds=1))
        statements = _statements(ctx, lambda: runs.reap_lost_runs(ctx))
        for job in made:
            session = api.get(f"/v2/Jobs/{job}/JobSessions").json()[0]
            assert (session["status"], session["retryCount"]) == ("Queued", 0)
            api.post(f"/v2/Jobs/{job}/Action", {"stop": None})
            api.delete(f"/v2/Jobs/{job}")
        return statements

    few, many = lose(3), lose(12)
    assert many - few <= 9 * (12 - 3)  # linear: a few statements per run, nothing quadratic
    assert many / 12 <= few / 3 + 1
