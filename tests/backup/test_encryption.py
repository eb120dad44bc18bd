"""Encrypted repositories through the API: created with a password kept outside the catalog,
backed up to unattended, unreadable on disk, and refused without the right password."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from keepstone.api.app import create_app
from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from keepstone.server import bootstrap, open_context
from keepstone.services.context import Context
from tests.conftest import ADMIN_PASSWORD, BASE_URL, Api, LongLivedApi, catalog_text, login
from tests.local_org import Organization, run_job

PASSWORD = "correct horse battery staple"


def test_an_encrypted_repository_end_to_end(
    ctx: Context,
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    data_dir: Path,
    tmp_path: Path,
    clock: ManualClock,
) -> None:
    path = tmp_path / "vault-repo"
    created = api.post(
        "/v2/BackupRepositories",
        {"name": "sealed", "path": str(path), "encryptionPassword": PASSWORD},
    )
    assert created.status_code == 200, created.text
    repo = created.json()
    assert repo["isEncrypted"] is True and "encryptionPassword" not in repo
    secret = data_dir / "secrets" / f"repository-{repo['id']}"
    assert secret.read_text() == PASSWORD and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert PASSWORD not in catalog_text(ctx, data_dir)

    assert api.put(f"/v2/Jobs/{org_job['id']}", {"repositoryId": repo["id"]}).status_code == 200
    session = run_job(api, org_job, backup_proxy)  # unattended: the kept password opens it
    assert session["status"] == "Success"
    everything = b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())
    assert b"Quarterly report" not in everything and b"the plan" not in everything

    explored = api.post(f"/v2/Jobs/{org_job['id']}/Action", {"explore": {}}).json()["id"]
    base = f"/v2/RestoreSessions/{explored}/Organization/OneDrives"
    alice = next(d for d in api.rows(base) if d["name"] == "alice")
    plan = next(
        d
        for d in api.get(f"{base}/{alice['id']}/Documents").json()["results"]
        if d["name"] == "plan.txt"
    )
    saved = api.post(f"{base}/{alice['id']}/Documents/{plan['id']}/save")
    assert saved.content == (organization.root / "alice/OneDrive/Documents/plan.txt").read_bytes()

    fresh_dir = tmp_path / "fresh"
    fresh = open_context(fresh_dir, clock)
    bootstrap(fresh, fresh_dir)
    with TestClient(create_app(fresh), base_url=BASE_URL) as client:
        other = LongLivedApi(client, login(client, "admin", ADMIN_PASSWORD))
        for attempt, expected in ((None, "is encrypted"), ("wrong password", "does not open")):
            body = {"name": "again", "path": str(path)} | (
                {"encryptionPassword": attempt} if attempt else {}
            )
            refused = other.post("/v2/BackupRepositories", body)
            assert refused.status_code == 400 and expected in refused.json()["message"]
            assert "encryptionPassword" in refused.json()["message"]
            assert len(other.get("/v2/BackupRepositories").json()) == 1  # nothing was kept
        attached = other.post(
            "/v2/BackupRepositories",
            {"name": "again", "path": str(path), "encryptionPassword": PASSWORD},
        )
        assert attached.status_code == 200
        assert len(other.get(f"/v2/RestorePoints?repositoryId={attached.json()['id']}").json()) == 1
        changed = other.put(
            f"/v2/BackupRepositories/{attached.json()['id']}", {"encryptionPassword": "new one"}
        )
        assert changed.status_code == 400
    fresh.db.dispose()
