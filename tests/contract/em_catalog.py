"""A catalog with several of everything, made by the real engine: three organizations of Maildir++
mailboxes and OneDrive trees, two repositories, four jobs, runs that backed up, and one run that
failed (stopped while queued). The Enterprise Manager contract test and the client-script tests
read it; ``Catalog`` says what they must find."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.proxy.backup import run_backup
from keepstone.proxy.worker import ProxyWorker
from keepstone.server import bootstrap, open_context
from keepstone.services import catalog as catalog_service
from tests.conftest import ADMIN_PASSWORD, BASE_URL, Api, LongLivedApi, login
from tests.local_org import Organization

# organization -> its users; job name -> (organization, repository index, runs that back up)
USERS = {"north": ("alice", "bob"), "south": ("carol", "dave", "erin"), "west": ("frank",)}
JOBS = {
    "north mail": ("north", 0, 2),
    "south all": ("south", 1, 2),
    "west daily": ("west", 0, 1),
    "north again": ("north", 1, 1),
}
FAILED_JOB = "west daily"  # its last run is stopped while queued: Failed


@dataclass
class Catalog:
    """What the catalog holds, read back through the VB365 dialect (not through EM)."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    repositories: list[dict[str, Any]] = field(default_factory=list)
    organizations: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    restore_points: list[dict[str, Any]] = field(default_factory=list)
    # job session id -> the users its run processed (one EM task session each)
    users_per_session: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sessions_per_job: dict[str, int] = field(default_factory=dict)  # job id -> its runs

    @property
    def task_sessions(self) -> int:
        return sum(len(users) for users in self.users_per_session.values())


def _write_organization(root: Path, name: str) -> Organization:
    org = Organization(root / name)
    for user in USERS[name]:
        org.user(user)
        org.mail(user, "", f"Hello {user}")
        org.mail(user, ".Sent", f"Re: from {user}", flags="RS")
        org.file(user, "Documents/notes.txt", f"{user}'s notes\n".encode() * 50)
    return org


def build(api: Api, proxy: ProxyWorker, root: Path, tick: Callable[[], None]) -> Catalog:
    """Make the catalog under ``root`` through the VB365 dialect; ``tick`` moves time on between
    runs (so sessions have distinct creation times)."""
    catalog = Catalog()
    second = api.post("/v2/BackupRepositories", {"name": "second", "path": str(root / "repo2")})
    assert second.status_code == 200, second.text
    repositories = api.get("/v2/BackupRepositories").json()
    assert len(repositories) == 2
    organizations: dict[str, dict[str, Any]] = {}
    for name in USERS:
        org = _write_organization(root / "orgs", name)
        created = api.post(
            "/v2/Organizations",
            {"type": "Local", "name": name, "localSettings": {"path": str(org.root)}},
        )
        assert created.status_code == 200, created.text
        organizations[name] = created.json()
    for job_name, (org_name, repository, runs) in JOBS.items():
        job = api.post(
            f"/v2/Organizations/{organizations[org_name]['id']}/Jobs",
            {
                "name": job_name,
                "repositoryId": repositories[repository]["id"],
                "schedulePolicy": {"type": "ManualOnly"},
            },
        )
        assert job.status_code == 200, job.text
        job_id = job.json()["id"]
        for _ in range(runs):
            catalog.users_per_session[_run(api, proxy, job_id)] = USERS[org_name]
            tick()
        if job_name == FAILED_JOB:
            catalog.users_per_session[_stopped_while_queued(api, job_id)] = ()
            tick()
        catalog.sessions_per_job[job_id] = runs + (job_name == FAILED_JOB)
    return _read_back(api, catalog, organizations)


def _run(api: Api, proxy: ProxyWorker, job_id: str) -> str:
    started = api.post(f"/v2/Jobs/{job_id}/Action", {"start": None})
    assert started.status_code == 200, started.text
    assert proxy.run_one()
    session: dict[str, Any] = api.get(f"/v2/Jobs/{job_id}/JobSessions").json()[0]
    assert session["status"] == "Success", session
    return str(session["id"])


def _stopped_while_queued(api: Api, job_id: str) -> str:
    assert api.post(f"/v2/Jobs/{job_id}/Action", {"start": None}).status_code == 200
    assert api.post(f"/v2/Jobs/{job_id}/Action", {"stop": None}).status_code == 200
    session: dict[str, Any] = api.get(f"/v2/Jobs/{job_id}/JobSessions").json()[0]
    assert session["status"] in ("Failed", "Stopped"), session
    return str(session["id"])


def _read_back(api: Api, catalog: Catalog, organizations: dict[str, dict[str, Any]]) -> Catalog:
    catalog.organizations = list(organizations.values())
    catalog.repositories = api.get("/v2/BackupRepositories").json()
    catalog.jobs = api.get("/v2/Jobs").json()
    for job in catalog.jobs:
        catalog.sessions += api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    catalog.restore_points = api.get("/v8/RestorePoints?limit=1000").json()["results"]
    assert len(catalog.jobs) == len(JOBS)
    assert len(catalog.sessions) == len(catalog.users_per_session)
    return catalog


@contextmanager
def made_catalog(root: Path, start: datetime) -> Iterator[tuple[TestClient, Catalog]]:
    """A data directory ``root/data`` holding the catalog, made by the app and the local proxy's
    engine as time goes on from ``start`` (five minutes between runs); the app's client stays
    open until the block ends, when the catalog is closed (a server may then open it)."""
    clock = ManualClock(start)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KEEPSTONE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        env.delenv("KEEPSTONE_ADMIN_USER", raising=False)
        ctx = open_context(root / "data", clock)
        try:
            bootstrap(ctx, root / "data")
            local = next(p for p in catalog_service.list_proxies(ctx) if p.is_local)
            proxy = ProxyWorker(ctx, local.id, run_backup, renew_every=0)
            with TestClient(create_app(ctx), base_url=BASE_URL) as client:
                api = LongLivedApi(client, login(client, "admin", ADMIN_PASSWORD))
                yield client, build(api, proxy, root, lambda: clock.advance(timedelta(minutes=5)))
        finally:
            ctx.db.dispose()
