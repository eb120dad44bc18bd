"""SIGTERM during a backup: a real ``keepstone serve`` stops its backup and waits for it before it
releases the data-directory lock, so a server started next can never run beside it.

The backup reads an organization of sparse files (gigabytes to read and chunk, nothing to store:
a slow source that costs no disk). The test watches the server's own read counter
(``/proc/<pid>/io``): once the test holds the data-directory lock, the server must read nothing
more.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.local_org import Organization
from tests.process_helpers import (
    ServerProcess,
    add_job,
    add_local_organization,
    bearer,
    login,
    process_env,
    start_server,
)

ADMIN_PASSWORD = "stop test password"
SPARSE_FILES = 40
SPARSE_SIZE = 256 * 1024 * 1024
DEADLINE = 180.0
# What a server may still read once it no longer holds the lock: far less than one source file.
QUIET_BYTES = 16 * 1024 * 1024

pytestmark = pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs /proc/<pid>/io")


def bytes_read(pid: int) -> int | None:
    """The process's ``rchar`` (bytes read through any read call), or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(next(line for line in text.splitlines() if line.startswith("rchar:")).split()[1])


def slow_organization(root: Path) -> Organization:
    org = Organization(root)
    drive = org.user("alice") / "OneDrive"
    for number in range(SPARSE_FILES):
        with (drive / f"zeros-{number:02d}.bin").open("wb") as handle:
            handle.truncate(SPARSE_SIZE)
    return org


def start_backup(server: ServerProcess, org: Organization) -> str:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        client.headers.update(bearer(login(client, "admin", ADMIN_PASSWORD)))
        org_id = add_local_organization(client, "slow", org.root)
        repository = client.get("/v2/BackupRepositories").json()[0]
        job_id = add_job(client, org_id, "long", repository["id"])
        started = client.post(f"/v2/Jobs/{job_id}/Action", json={"start": None})
        assert started.status_code == 200, started.text
        return job_id


def wait_until_reading(pid: int, at_least: int) -> None:
    start = bytes_read(pid) or 0
    deadline = time.monotonic() + DEADLINE
    while (bytes_read(pid) or 0) - start < at_least:
        assert time.monotonic() < deadline, "the backup never started reading"
        time.sleep(0.05)


def take_lock(lock_path: Path, server: ServerProcess) -> tuple[int, int | None]:
    """Poll for the data-directory lock; returns its descriptor (held) and the server's read
    counter at the moment the lock was ours (None if the server was already gone)."""
    deadline = time.monotonic() + DEADLINE
    fd = os.open(lock_path, os.O_RDWR)
    while True:
        counter = bytes_read(server.process.pid)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            assert time.monotonic() < deadline, "the server never released its lock"
            time.sleep(0.01)
            continue
        # Read after taking the lock: anything the server reads from here on is a violation.
        return fd, bytes_read(server.process.pid) if counter is not None else None


def reads_until_exit(server: ServerProcess) -> int | None:
    """The server's last read counter before it exited."""
    last = None
    deadline = time.monotonic() + DEADLINE
    while server.process.poll() is None:
        last = bytes_read(server.process.pid) or last
        assert time.monotonic() < deadline, "the server did not exit"
        time.sleep(0.01)
    return last


def test_sigterm_stops_the_backup_before_the_lock_is_released(tmp_path: Path) -> None:
    org = slow_organization(tmp_path / "org")
    data_dir = tmp_path / "data"
    env = process_env(KEEPSTONE_ADMIN_PASSWORD=ADMIN_PASSWORD)
    server = start_server(tmp_path / "logs", data_dir, env=env)
    try:
        job_id = start_backup(server, org)
        wait_until_reading(server.process.pid, 2 * SPARSE_SIZE)
        server.process.send_signal(signal.SIGTERM)
        fd, at_lock = take_lock(data_dir / "keepstone.lock", server)
        try:
            last = reads_until_exit(server)
        finally:
            os.close(fd)
        assert server.process.returncode == 0, server.describe()
    finally:
        server.stop()

    if at_lock is not None and last is not None:
        assert last - at_lock < QUIET_BYTES, (
            f"the server read {last - at_lock} bytes after releasing the data-directory lock"
        )
    output = server.stderr  # the structured log
    stopped = output.index("background work stopped")
    assert stopped < output.index("data directory released"), output[-3000:]

    with sqlite3.connect(data_dir / "keepstone.db") as db:
        [(status,)] = db.execute("SELECT status FROM job_sessions WHERE job_id = ?", (job_id,))
        messages = [m for (m,) in db.execute("SELECT message FROM log_items")]
    assert status in ("Failed", "Queued"), status  # ended, not left Running for a restart to reap
    assert any("The server was stopped during this run" in m for m in messages), messages
