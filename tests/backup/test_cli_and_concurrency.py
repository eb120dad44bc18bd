"""The repository and restore commands from a terminal, and two runs writing one repository."""

from __future__ import annotations

import math
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from keepstone.cli.main import app
from keepstone.proxy.worker import ProxyWorker
from keepstone.services.context import Context
from keepstone.services.save_tree import SaveTree, stamp
from tests.conftest import Api
from tests.local_org import Organization, run_job

runner = CliRunner()


def cli(data_dir: Path, *args: str) -> Any:
    return runner.invoke(app, [*args, "--data-dir", str(data_dir)])


def test_restore_commands_save_and_put_back_items(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    # A saved file keeps the permission bits and the time, as restic and a put-back do; never
    # setuid, setgid or sticky.
    photo = organization.root / "alice/OneDrive/Documents/Photos/cat.jpg"
    photo.chmod(0o6751)
    os.utime(photo, (1_600_000_000.25, 1_600_000_000.25))
    message = next((organization.root / "alice/Mail").rglob("cur/*"))
    message.chmod(0o640)
    os.utime(message, (1_500_000_000, 1_500_000_000))
    run_job(api, org_job, backup_proxy)
    listed = cli(data_dir, "restore", "points")
    assert listed.exit_code == 0, listed.output
    [point] = api.get("/v2/RestorePoints").json()
    assert point["id"] in listed.output

    out = tmp_path / "saved"
    saved = cli(data_dir, "restore", "save", point["id"], "--user", "alice", "--to", str(out))
    assert saved.exit_code == 0, saved.output
    assert "Saved 7 items of alice" in saved.output
    copy = out / "alice/OneDrive/Documents/Photos/cat.jpg"
    assert copy.read_bytes() == photo.read_bytes()
    assert (stat.S_IMODE(copy.stat().st_mode), copy.stat().st_mtime) == (0o751, 1_600_000_000.25)
    messages = [p.stat() for p in (out / "alice/Mail").rglob("*.eml")]
    assert len(messages) == 4
    assert [stat.S_IMODE(m.st_mode) for m in messages if m.st_mtime == 1_500_000_000] == [0o640]

    photo.unlink()
    back = cli(
        data_dir, "restore", "put-back", point["id"], "--user", "alice", "--collision", "skip"
    )
    assert back.exit_code == 0, back.output
    assert "Restored 1, skipped 6, failed 0 items" in back.output
    assert photo.read_bytes() == (out / "alice/OneDrive/Documents/Photos/cat.jpg").read_bytes()


@pytest.mark.parametrize("mtime", [math.nan, math.inf, -math.inf, 1e30, -1e30])
def test_a_time_the_system_cannot_hold_leaves_the_saved_file_at_its_writing(
    tmp_path: Path, mtime: float
) -> None:
    with SaveTree(tmp_path) as tree:
        path, out = tree.create(["alice", "OneDrive", "odd.txt"])
        with out:
            out.write(b"content")
            stamp(out, 0o100644, mtime)
    assert path.read_bytes() == b"content"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert abs(path.stat().st_mtime - time.time()) < 3600


def test_repo_commands_verify_attach_and_retention(
    api: Api,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    repo: dict[str, Any],
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_job(api, org_job, backup_proxy)
    ok = cli(data_dir, "repo", "verify", repo["name"])
    assert ok.exit_code == 0 and "is intact" in ok.output, ok.output

    other = tmp_path / "other-server"
    with monkeypatch.context() as elsewhere:  # another server: its own (SQLite) catalog
        elsewhere.delenv("KEEPSTONE_DATABASE", raising=False)
        attached = cli(other, "repo", "attach", repo["path"], "--name", "found")
        assert attached.exit_code == 0, attached.output
        assert "with 1 restore points" in attached.output
        assert cli(other, "repo", "retention", "found").exit_code == 0

    pack = next(p for p in (Path(repo["path"]) / "packs").rglob("*") if p.is_file())
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    damaged = cli(data_dir, "repo", "verify", repo["id"])
    assert damaged.exit_code == 1
    assert "DAMAGED" in damaged.output and pack.name in damaged.output
    assert cli(data_dir, "repo", "verify", "no-such-repo").exit_code == 1


def test_two_jobs_write_one_repository_at_once_and_share_data(
    ctx: Context,
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    repo: dict[str, Any],
) -> None:
    shared = organization.rng.randbytes(3 * 1024 * 1024)
    organization.file("alice", "shared.bin", shared)
    organization.file("bob", "shared.bin", shared)
    org = org_job["organization"]
    users = {u["name"]: u for u in api.get(f"/v2/Organizations/{org['id']}/Users").json()}
    jobs = []
    for name in ("alice", "bob"):
        job = api.post(
            f"/v2/Organizations/{org['id']}/Jobs",
            {
                "name": f"{name} only",
                "repositoryId": repo["id"],
                "backupType": "SelectedItems",
                "selectedItems": [{"type": "User", "user": {"id": users[name]["id"]}}],
                "schedulePolicy": {"type": "ManualOnly"},
            },
        ).json()
        assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
        jobs.append(job)
    proxy_id = api.get("/v2/Proxies").json()[0]["id"]
    workers = [ProxyWorker(ctx, proxy_id) for _ in jobs]  # two proxies, one repository
    threads = [threading.Thread(target=w.run_one) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for job in jobs:
        [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
        assert session["status"] == "Success"
    assert len(api.get(f"/v2/RestorePoints?repositoryId={repo['id']}").json()) == 2
    assert api.post(f"/v2/BackupRepositories/{repo['id']}/verify").json()["ok"] is True
    # Later runs deduplicate against both: the shared file is stored no more than twice.
    stored = sum(p.stat().st_size for p in Path(repo["path"]).rglob("*") if p.is_file())
    assert stored < 2 * len(shared) + 4 * 1024 * 1024
