"""Files at rest are private: a real ``keepstone serve`` started with a permissive umask on a data
directory an older version left world-readable, backing up into its default repository and into
an attached (encrypted) repository whose files were world-readable, leaves nothing but 0600 files
and 0700 directories where it wrote."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from pathlib import Path

import httpx

from keepstone.engine import LocalStore, Repository
from tests.local_org import Organization
from tests.process_helpers import (
    add_job,
    add_local_organization,
    bearer,
    login,
    process_env,
    start_server,
)

PASSWORD = "an attached repository's password"
RUN_DEADLINE = 60.0
ADMIN_PASSWORD = "admin password"


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """``mask`` for the processes started inside (children inherit the umask)."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def make_world_readable(root: Path) -> set[Path]:
    """What an older version (or another tool) left: 0755 directories and 0644 files."""
    found = {root}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(Path(folder, name), 0o755)
            found.add(Path(folder, name))
        for name in files:
            os.chmod(Path(folder, name), 0o644)
            found.add(Path(folder, name))
    os.chmod(root, 0o755)
    return found


def wider_than_private(root: Path, old: AbstractSet[Path] = frozenset()) -> list[str]:
    """Every path below ``root`` (not in ``old``) whose mode is not 0700 (dirs) or 0600 (files)."""
    wrong = []
    for folder, dirs, files in os.walk(root):
        for path, expected in [(Path(folder, n), 0o700) for n in dirs] + [
            (Path(folder, n), 0o600) for n in files
        ]:
            if path not in old and mode(path) != expected:
                wrong.append(f"{path.relative_to(root)}: {oct(mode(path))}")
    return wrong


def run_to_success(client: httpx.Client, job_id: str) -> None:
    assert client.post(f"/v2/Jobs/{job_id}/Action", json={"start": None}).status_code == 200
    deadline = time.monotonic() + RUN_DEADLINE
    status = None
    while time.monotonic() < deadline and status != "Success":
        time.sleep(0.1)
        runs = client.get(f"/v2/Jobs/{job_id}/JobSessions").json()
        status = runs[0]["status"] if runs else None
        assert status not in ("Failed", "Warning"), runs
    assert status == "Success"


def test_a_backup_under_a_permissive_umask_leaves_only_private_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    sqlite3.connect(data_dir / "keepstone.db").close()  # an older, world-readable catalog
    os.chmod(data_dir / "keepstone.db", 0o644)
    attached = tmp_path / "attached"
    Repository.init(LocalStore(attached), PASSWORD)
    old_files = make_world_readable(attached)
    org = Organization(tmp_path / "org")
    org.user("alice")
    org.mail("alice", "", "hello")
    org.file("alice", "docs/report.txt", size=50_000)

    with umask(0o000):
        server = start_server(
            tmp_path / "logs", data_dir, env=process_env(KEEPSTONE_ADMIN_PASSWORD=ADMIN_PASSWORD)
        )
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            client.headers.update(bearer(login(client, "admin", ADMIN_PASSWORD)))
            org_id = add_local_organization(client, "acme", org.root)
            default = client.get("/v2/BackupRepositories").json()[0]
            second = client.post(
                "/v2/BackupRepositories",
                json={"name": "old", "path": str(attached), "encryptionPassword": PASSWORD},
            )
            assert second.status_code == 200, second.text
            for number, repository in enumerate((default, second.json())):
                run_to_success(client, add_job(client, org_id, f"job{number}", repository["id"]))
        # While the server runs, SQLite's WAL and shared-memory files exist beside the catalog.
        catalog = [data_dir / f"keepstone.db{suffix}" for suffix in ("", "-wal", "-shm")]
        assert {p.name: oct(mode(p)) for p in catalog} == {p.name: oct(0o600) for p in catalog}
    finally:
        server.stop()

    assert mode(data_dir) == 0o700
    assert wider_than_private(data_dir / "repository") == []
    assert mode(data_dir / "repository") == 0o700
    assert wider_than_private(data_dir / "secrets") == []
    assert mode(data_dir / "secrets") == 0o700
    assert mode(attached) == 0o700  # so the files an older version left are out of reach
    new_files = {p for p in attached.rglob("*")} - old_files
    assert any(p.name.startswith("snapshots") or "snapshots" in p.parts for p in new_files)
    assert wider_than_private(attached, old_files) == []
