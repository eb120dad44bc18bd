"""A real Local organization on disk: Maildir++ mailboxes and OneDrive trees, and the helpers to
change it between backups."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.proxy.backup import run_backup
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import catalog
from keepstone.services.context import Context
from tests.conftest import ADMIN_PASSWORD, Api, LongLivedApi, login


def message(n: int, subject: str, body: str = "") -> bytes:
    return (
        f"From: sender{n}@example.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
        f"Date: Wed, 10 Jun 2026 09:{n % 60:02d}:00 +0000\r\nMessage-ID: <{n}@example.test>\r\n"
        f"\r\n{body or f'Body of message {n}.'}\r\n"
    ).encode()


@dataclass
class Organization:
    """Writes a Maildir++/OneDrive organization and remembers what each item holds."""

    root: Path
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    serial: int = 0

    def user(self, name: str) -> Path:
        base = self.root / name
        for folder in ("", ".Sent", ".Archive.2024"):
            for sub in ("cur", "new", "tmp"):
                (base / "Mail" / folder / sub).mkdir(parents=True, exist_ok=True)
        (base / "OneDrive").mkdir(parents=True, exist_ok=True)
        return base

    def mail(self, user: str, folder: str, subject: str, flags: str = "S", body: str = "") -> Path:
        self.serial += 1
        unique = f"17800000{self.serial:02d}.M{self.serial}P1.host"
        path = self.root / user / "Mail" / folder / "cur" / f"{unique}:2,{flags}"
        path.write_bytes(message(self.serial, subject, body))
        return path

    def file(self, user: str, relative: str, data: bytes | None = None, size: int = 0) -> Path:
        path = self.root / user / "OneDrive" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if data is not None else self.rng.randbytes(size))
        return path

    def contents(self) -> dict[str, bytes]:
        """Everything the organization holds now, by a path that ignores flags."""
        found: dict[str, bytes] = {}
        for path in sorted(self.root.rglob("*")):
            relative = path.relative_to(self.root)
            if path.is_file() and "tmp" not in relative.parts and relative.name != "maildirfolder":
                found[str(relative).split(":2,")[0]] = path.read_bytes()
        return found


@pytest.fixture
def organization(tmp_path: Path) -> Organization:
    org = Organization(tmp_path / "acme")
    org.user("alice")
    org.user("bob")
    org.mail("alice", "", "Quarterly report")
    org.mail("alice", "", "Lunch?", flags="")
    org.mail("alice", ".Sent", "Re: Lunch?", flags="RS")
    org.mail("alice", ".Archive.2024", "Old news")
    org.mail("bob", "", "Hello Bob")
    org.file("alice", "Documents/plan.txt", b"the plan\n" * 1000)
    org.file("alice", "Documents/Photos/cat.jpg", size=3 * 1024 * 1024 + 17)
    org.file("alice", "empty.txt", b"")
    org.file("bob", "notes.md", b"# notes\n")
    return org


@pytest.fixture
def api(client: TestClient) -> Api:
    return LongLivedApi(client, login(client, "admin", ADMIN_PASSWORD))


@pytest.fixture
def backup_proxy(ctx: Context) -> ProxyWorker:
    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    return ProxyWorker(ctx, local.id, run_backup, renew_every=0)


@pytest.fixture
def org_job(api: Api, organization: Organization, repo: dict[str, Any]) -> dict[str, Any]:
    org = api.post(
        "/v2/Organizations",
        {"type": "Local", "name": "acme", "localSettings": {"path": str(organization.root)}},
    )
    assert org.status_code == 200, org.text
    job = api.post(
        f"/v2/Organizations/{org.json()['id']}/Jobs",
        {
            "name": "acme backup",
            "repositoryId": repo["id"],
            "schedulePolicy": {"type": "ManualOnly"},
        },
    )
    assert job.status_code == 200, job.text
    body: dict[str, Any] = job.json() | {"organization": org.json()}
    return body


def run_job(api: Api, job: dict[str, Any], proxy: ProxyWorker) -> dict[str, Any]:
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    assert proxy.run_one()
    session: dict[str, Any] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()[0]
    return session


def chmod_denies_root() -> bool:
    return os.geteuid() != 0
