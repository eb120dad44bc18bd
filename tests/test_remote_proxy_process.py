"""Real ``keepstone proxy`` processes against a real ``keepstone serve``: registration with a token
from ``keepstone admin proxy-token``, the proxy in ``/v8/Proxies`` with its load and version, a
Local organization's job on it restored byte for byte (SQLite; PostgreSQL with an S3 repository
reached with the credentials the server delivered), and ``kill -9`` mid-run: another proxy takes
the run over in the same session and stores only what the first one had not finished."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient

from keepstone.server import DATABASE_FILE
from tests import process_helpers as processes
from tests.backup.test_backup_restore import by_subject, everything_in, explore
from tests.conftest import Api
from tests.local_org import Organization
from tests.postgres_server import PostgresServer
from tests.proxy_process import (
    ProxyProcess,
    local_job,
    local_repository,
    registration_token,
    start_proxy,
)
from tests.s3_faults import Fault, FaultProxy
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, MotoServer, account_body, moto
from tests.s3_server import storage_body as s3_storage_body
from tests.test_postgres_serve import _wait_for_session

__all__ = ["moto"]

PASSWORD = "remote proxies 1"
DEADLINE = 120.0  # generous: the machine is shared
MiB = 1024 * 1024


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


class Setup:
    """A server with a logged-in API client, and the proxies a test starts."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp = tmp_path
        self.env = env
        self.data = tmp_path / "data"
        self.server = processes.start_server(
            tmp_path / "logs", self.data, env=env, ready_timeout=DEADLINE
        )
        self.http = httpx.Client(base_url=self.server.base_url, timeout=60)
        self.http.headers.update(processes.bearer(processes.login(self.http, "admin", PASSWORD)))
        self.api = Api(cast(TestClient, self.http), None)  # the token is in the client's headers
        self.proxies: list[ProxyProcess] = []

    def proxy(self, name: str, server_url: str | None = None, **env: str) -> ProxyProcess:
        token = registration_token(self.data, self.env)
        started = start_proxy(
            self.tmp / "logs",
            server_url or self.server.base_url,
            name,
            token,
            self.tmp / "state" / name,
            env=processes.process_env(**env),
        )
        self.proxies.append(started)
        return started

    def proxy_id(self, name: str) -> str:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            found = [p for p in self.api.rows("/v8/Proxies") if p["hostName"] == name]
            if found:
                return str(found[0]["id"])
            time.sleep(0.2)
        raise AssertionError(f"proxy {name} is not listed")

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
        self.http.close()
        assert self.server.stop() == 0, self.server.describe()


def server(tmp_path: Path, env: dict[str, str], request: pytest.FixtureRequest) -> Setup:
    """A server for this test, closed (with its proxies) before the fixtures it uses."""
    setup = Setup(tmp_path, env)
    request.addfinalizer(setup.close)
    return setup


def run_to_end(api: Api, job: str) -> dict[str, Any]:
    assert api.post(f"/v2/Jobs/{job}/Action", {"start": None}).status_code == 200
    return _wait_for_session(setup_client(api), job)


def setup_client(api: Api) -> httpx.Client:
    return cast(httpx.Client, api.client)


def titles(api: Api, session: dict[str, Any]) -> list[str]:
    return [i["title"] for i in api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()]


def restored(api: Api, job: str) -> dict[str, bytes]:
    return everything_in(api, explore(api, {"id": job}))


def small_organization(root: Path) -> Organization:
    org = Organization(root)
    for user in ("alice", "bob"):
        org.user(user)
        org.mail(user, "", f"Hello {user}")
        org.file(user, "Documents/data.bin", size=200_000)
    org.file("alice", "empty.txt", b"")
    return org


def backup_to_s3(setup: Setup, proxy_id: str, moto: MotoServer) -> None:
    """A job into an S3 repository of the remote proxy: it reaches the bucket with the
    credentials and password the server delivered in the work package."""
    tmp_path = setup.tmp
    bucket = f"ks-{secrets.token_hex(6)}"
    s3 = boto3.client(
        "s3",
        endpoint_url=moto.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
    )
    s3.create_bucket(Bucket=bucket)
    account = setup.api.post("/v6/Accounts", account_body())
    assert account.status_code == 201, account.text
    storage = setup.api.post(
        "/v6/objectstoragerepositories", s3_storage_body(moto.url, bucket, account.json()["id"])
    )
    assert storage.status_code == 200, storage.text
    repo = setup.api.post(
        "/v6/BackupRepositories",
        {
            "name": "s3",
            "path": str(tmp_path / "cache"),
            "proxyId": proxy_id,
            "objectStorageId": storage.json()["id"],
            "objectStorageEncryptionEnabled": True,
            "encryptionPassword": "s3 repository password",
        },
    )
    assert repo.status_code == 200, repo.text
    organization = small_organization(tmp_path / "s3-acme")
    job = local_job(setup.api, organization, repo.json()["id"], "s3")
    session = run_to_end(setup.api, job)
    assert session["status"] == "Success", titles(setup.api, session)
    assert any("on proxy edge-1" in t for t in titles(setup.api, session))
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert any("/packs/" in o["Key"] for o in listed)
    assert any("/snapshots/" in o["Key"] for o in listed)
    assert not (tmp_path / "cache" / "packs").exists()  # nothing went to the path
    assert restored(setup.api, job) == by_subject(organization)


@pytest.mark.parametrize("catalog", ["sqlite", "postgresql"])
def test_a_remote_proxy_registers_reports_and_backs_up(
    catalog: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = processes.process_env(KEEPSTONE_ADMIN_PASSWORD=PASSWORD)
    if catalog == "postgresql":
        env["KEEPSTONE_DATABASE"] = request.getfixturevalue("postgres_url")
    setup = server(tmp_path, env, request)
    edge = setup.proxy("edge-1")
    proxy_id = setup.proxy_id("edge-1")
    state = tmp_path / "state" / "edge-1" / "proxy.json"
    assert state.stat().st_mode & 0o777 == 0o600 and state.parent.stat().st_mode & 0o777 == 0o700
    [listed] = [p for p in setup.api.rows("/v8/Proxies") if p["id"] == proxy_id]
    assert (listed["hostName"], listed["status"]) == ("edge-1", "Online")

    organization = small_organization(tmp_path / "acme")
    job = local_job(
        setup.api, organization, local_repository(setup.api, tmp_path / "far", proxy_id)
    )
    session = run_to_end(setup.api, job)
    assert session["status"] == "Success", titles(setup.api, session)
    assert any("on proxy edge-1" in t for t in titles(setup.api, session))
    assert restored(setup.api, job) == by_subject(organization)
    if catalog == "sqlite":  # the row holds what the proxy reported
        with sqlite3.connect(f"file:{setup.data / DATABASE_FILE}?mode=ro", uri=True) as db:
            version, cpu, memory = db.execute(
                "SELECT version, cpu_percent, memory_percent FROM proxies WHERE id = ?",
                (proxy_id,),
            ).fetchone()
        assert version and cpu is not None and 0 < memory <= 100

    if catalog == "postgresql":  # the scale-out setting: PostgreSQL and S3
        backup_to_s3(setup, proxy_id, request.getfixturevalue("moto"))
    assert edge.stop() == 0, edge.describe()  # SIGTERM: it finishes and says so
    assert "stopped" in edge.output
    if catalog != "sqlite":
        return  # the rest is the proxy's own, whatever the catalog
    # A restart needs no token: the credential is in the state file.
    again = start_proxy(
        tmp_path / "logs", setup.server.base_url, "edge-1", None, state.parent, env=env
    )
    setup.proxies.append(again)
    organization.mail("alice", "", "After the restart")
    assert run_to_end(setup.api, job)["status"] == "Success"
    assert restored(setup.api, job) == by_subject(organization)


def test_a_killed_proxys_run_is_taken_over_without_storing_twice(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = processes.process_env(KEEPSTONE_ADMIN_PASSWORD=PASSWORD, KEEPSTONE_RUN_LEASE_SECONDS="5")
    setup = server(tmp_path, env, request)
    organization = Organization(tmp_path / "acme")
    users = [f"user{n}" for n in range(1, 6)]
    for user in users:
        organization.user(user)
        organization.file(user, "big.bin", size=MiB)
    # The first proxy reaches the server through a relay that holds its third user's start
    # (each user is a task started, then finished: the fifth POST .../tasks).
    relay = FaultProxy(setup.server.base_url)
    relay.add(Fault("delay", method="POST", path_contains="/tasks", times=4, seconds=0))
    relay.add(Fault("delay", method="POST", path_contains="/tasks", times=1, seconds=300))
    try:
        first = setup.proxy("edge-1", relay.url, KEEPSTONE_CHECKPOINT_SECONDS="0")
        first_id = setup.proxy_id("edge-1")
        repository = tmp_path / "far"
        job = local_job(setup.api, organization, local_repository(setup.api, repository, first_id))
        assert setup.api.post(f"/v2/Jobs/{job}/Action", {"start": None}).status_code == 200
        deadline = time.monotonic() + DEADLINE
        while relay.injected["delay"] < 5:
            assert time.monotonic() < deadline, first.describe()
            time.sleep(0.1)
        first.kill()  # kill -9 while it waits to start its third user
        stored_by_first = _pack_bytes(repository)
        assert 2 * MiB <= stored_by_first < 3 * MiB  # two users, durable and indexed

        setup.proxy("edge-2", KEEPSTONE_CHECKPOINT_SECONDS="0")
        second_id = setup.proxy_id("edge-2")
        moved = setup.api.put(f"/v2/Jobs/{job}", {"proxyId": second_id})
        assert moved.status_code in (200, 204), moved.text
        session = _wait_for_session(setup.http, job)
    finally:
        relay.close()
    assert (session["status"], session["retryCount"]) == ("Success", 0), titles(setup.api, session)
    [only] = setup.api.get(f"/v2/Jobs/{job}/JobSessions").json()  # the same session
    log = titles(setup.api, session)
    assert any(
        "Proxy edge-1 stopped renewing; the run continues on another proxy" in t for t in log
    )
    assert any("on proxy edge-2" in t for t in log)
    # The second proxy stored only the three users the first had not finished.
    with sqlite3.connect(f"file:{setup.data / DATABASE_FILE}?mode=ro", uri=True) as db:
        [statistics] = db.execute(
            "SELECT statistics FROM job_sessions WHERE id = ?", (only["id"],)
        ).fetchone()
    transferred = json.loads(statistics)["transferred_bytes"]
    assert 3 * MiB <= transferred < 4 * MiB, transferred
    assert 5 * MiB <= _pack_bytes(repository) < 6 * MiB  # every user stored once
    assert len(setup.api.get(f"/v2/RestorePoints?jobId={job}").json()) == 1
    assert restored(setup.api, job) == by_subject(organization)
    verified = processes.run_cli(
        "repo", "verify", str(repository), "--data-dir", str(setup.data), env=setup.env
    )
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stdout


def _pack_bytes(repository: Path) -> int:
    return sum(p.stat().st_size for p in (repository / "packs").rglob("*") if p.is_file())
