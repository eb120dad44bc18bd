"""A real ``keepstone serve --database postgresql://...``: it migrates the empty database, creates
its administrator, answers the API and runs a backup, with no SQLite file in its data directory;
a second start finds everything again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keepstone.server import DATABASE_FILE
from tests import process_helpers as processes
from tests.postgres_server import PostgresServer

PASSWORD = "serve on postgres 1"
DEADLINE = 120.0  # generous: the machine is shared


@pytest.fixture
def catalog(postgres: PostgresServer) -> Iterator[str]:
    name = postgres.create_database()
    yield postgres.url(name)  # as an operator writes it
    postgres.drop_database(name)


def _wait_for_session(client: httpx.Client, job_id: str) -> dict[str, object]:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        sessions = client.get(f"/v2/Jobs/{job_id}/JobSessions").json()
        if sessions and sessions[0]["status"] not in ("Queued", "Running"):
            session: dict[str, object] = sessions[0]
            return session
        time.sleep(0.2)
    raise AssertionError("the run did not end in time")


def test_serve_on_a_postgresql_catalog(catalog: str, tmp_path: Path) -> None:
    data, org = tmp_path / "data", tmp_path / "org"
    (org / "alice" / "Mail").mkdir(parents=True)
    (org / "alice" / "Mail" / "hello.eml").write_bytes(b"Subject: hi\r\n\r\nhello\r\n")
    env = processes.process_env(KEEPSTONE_ADMIN_PASSWORD=PASSWORD, KEEPSTONE_DATABASE=catalog)
    server = processes.start_server(tmp_path / "logs", data, env=env, ready_timeout=DEADLINE)
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            client.headers.update(processes.bearer(processes.login(client, "admin", PASSWORD)))
            repository = client.get("/v2/BackupRepositories").json()[0]["id"]
            job = processes.add_job(
                client, processes.add_local_organization(client, "pg.test", org), "j", repository
            )
            started = client.post(f"/v2/Jobs/{job}/Action", json={"start": None})
            assert started.status_code == 200, started.text
            assert _wait_for_session(client, job)["status"] == "Success"
    finally:
        assert server.stop() == 0, server.describe()
    assert not (data / DATABASE_FILE).exists()
    # a second start (the option this time) finds the catalog and its administrator again
    env = processes.process_env(KEEPSTONE_ADMIN_PASSWORD=None)
    again = processes.start_server(
        tmp_path / "logs", data, "--database", catalog, env=env, ready_timeout=DEADLINE
    )
    try:
        with httpx.Client(base_url=again.base_url, timeout=30) as client:
            client.headers.update(processes.bearer(processes.login(client, "admin", PASSWORD)))
            assert [j["id"] for j in client.get("/v2/Jobs").json()] == [job]
    finally:
        assert again.stop() == 0, again.describe()
