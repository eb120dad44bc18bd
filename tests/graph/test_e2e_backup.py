"""End to end through the API: an Office365 organization created against the fake Graph, a job
run by the real proxy worker (`proxy.backup.run_backup`), mail and files changed in the fake
(add, delete, move, flag, modify, rename a folder), a second run, and every restore point put back
(in place, restoreTo, copyTo, saved as .eml/zip) and compared with what the fake held at that
point: bytes, flags, dates and folder trees."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from keepstone.proxy.backup import run_backup
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import catalog
from tests.graph.org_fixtures import (
    DOMAIN,
    SECRET,
    OrgEnv,
    _org_fake,
    _org_server,
    org_body,
    org_env,
)
from tests.graph.restore_fixtures import semantic, tree
from tests.graph_fake.drive import Drive
from tests.graph_fake.mailbox import Mailbox, MailFolder
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import RegisteredApp, User

__all__ = ["_org_fake", "_org_server", "org_env"]


def mime(n: int, subject: str, when: datetime) -> bytes:
    """A message whose Date is its delivery time (the fake reports sentDateTime = received)."""
    return (
        f"From: Alex <alex@example.com>\r\nTo: adele@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Message-ID: <e2e{n}@example.com>\r\nDate: {format_datetime(when)}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nbody {n}\r\n"
    ).encode()


@dataclass
class Tenant:
    """The fake tenant: adele (mail + OneDrive), bob (mail), restore (an empty mailbox)."""

    fake: FakeGraph
    app: RegisteredApp
    users: dict[str, User]
    mailboxes: dict[str, Mailbox]
    drive: Drive
    serial: int = 0

    def now(self) -> datetime:
        return self.fake.state.clock.now()

    def add(self, who: str, folder: MailFolder, subject: str, **changes: Any) -> str:
        self.serial += 1
        with self.fake.state.lock:
            box = self.mailboxes[who]
            when = self.now() - timedelta(days=self.serial)
            made = box.add_message(folder, mime(self.serial, subject, when), when)
            if changes:
                box.update_message(made.id, self.now(), **changes)
            return made.id


def make_tenant(fake: FakeGraph) -> Tenant:
    state = fake.state
    tenant = state.add_tenant(DOMAIN)
    users = {name: state.add_user(tenant, name) for name in ("adele", "bob", "restore")}
    mailboxes = {name: state.add_mailbox(user) for name, user in users.items()}
    drive = state.add_drive(users["adele"])
    state.add_drive(users["restore"])
    made = Tenant(fake, state.add_app(tenant, secret=SECRET), users, mailboxes, drive)
    inbox = mailboxes["adele"].folder("inbox")
    assert inbox is not None
    with state.lock:
        projects = mailboxes["adele"].add_folder("Projects")
        mailboxes["adele"].add_folder("Q3", parent=projects)
    for n in range(4):
        made.add("adele", inbox, f"inbox {n}", is_read=n % 2 == 0)
    made.add("adele", projects, "project plan", flag_status="flagged")
    made.add("bob", mailboxes["bob"].folder("inbox") or inbox, "for bob")
    with state.lock:
        docs = drive.add("Docs", made.now())
        drive.add("plan.txt", made.now(), b"plan v1", docs)
        drive.add("notes.md", made.now(), "notes — é".encode(), docs)
        drive.add("top.bin", made.now(), bytes(range(256)) * 40)
    return made


def mail_tree(box: Mailbox) -> dict[str, list[tuple[Any, ...]]]:
    """Messages by folder path: what they say (G9), read, flag, received, draft."""
    return {
        path: sorted(
            (
                repr(sorted(semantic(m.mime).items())),
                m.is_read,
                m.flag_status,
                m.received,
                m.is_draft,
            )
            for m in messages
        )
        for path, messages in tree(box).items()
    }


def mime_bytes(box: Mailbox) -> list[bytes]:
    return sorted(m.mime for m in box.messages.values())


def drive_files(drive: Drive) -> dict[str, bytes]:
    def path(item_id: str) -> str:
        item = drive.items[item_id]
        if item.parent_id is None:
            return ""
        parent = path(item.parent_id)
        return f"{parent}/{item.name}" if parent else item.name

    return {path(i.id): i.content for i in drive.items.values() if not i.is_folder}


@dataclass
class Point:
    """What the fake held when a restore point was taken."""

    at: datetime
    mail: dict[str, list[tuple[Any, ...]]]
    mime: list[bytes]
    files: dict[str, bytes]


@dataclass
class E2E:
    env: OrgEnv
    tenant: Tenant
    worker: ProxyWorker
    org_id: str = ""
    job_id: str = ""
    points: list[Point] = field(default_factory=list)

    def create(self) -> None:
        api = self.env.api
        created = api.post("/v8/Organizations", org_body(self.tenant.app))
        assert created.status_code == 201, created.text
        self.org_id = created.json()["id"]
        repo = api.get("/v2/BackupRepositories").json()[0]
        job = api.post(
            f"/v2/Organizations/{self.org_id}/Jobs",
            {"name": "m365", "backupType": "EntireOrganization", "repositoryId": repo["id"]},
        )
        assert job.status_code == 200, job.text
        self.job_id = job.json()["id"]

    def run(self) -> dict[str, Any]:
        api = self.env.api
        clock = self.env.ctx.clock
        assert hasattr(clock, "advance")
        clock.advance(timedelta(minutes=1))  # restore points in order
        started = api.post(f"/v2/Jobs/{self.job_id}/Action", {"start": None})
        assert started.status_code == 200, started.text
        assert self.worker.run_one()
        session: dict[str, Any] = api.get(f"/v2/Jobs/{self.job_id}/JobSessions").json()[0]
        with self.tenant.fake.state.lock:
            adele = self.tenant.mailboxes["adele"]
            point = Point(
                clock.now(),
                mail_tree(adele),
                mime_bytes(adele),
                drive_files(self.tenant.drive),
            )
        if session["status"] in ("Success", "Warning"):
            self.points.append(point)
        return session

    def log(self, session: dict[str, Any]) -> list[str]:
        items = self.env.api.get(f"/v2/JobSessions/{session['id']}/LogItems").json()
        return [item["title"] for item in items]

    def explore(self, point: Point) -> str:
        answer = self.env.api.post(
            f"/v2/Organizations/{self.org_id}/explore", {"dateTime": point.at.isoformat()}
        )
        assert answer.status_code in (200, 201), answer.text
        return str(answer.json()["id"])

    def owner(self, session: str, kind: str, name: str) -> str:
        rows = self.env.api.rows(f"/v2/RestoreSessions/{session}/Organization/{kind}")
        return str(next(r["id"] for r in rows if r["name"].split("@")[0] == name))

    def put_back(
        self, session: str, action: str, body: dict[str, Any], kind: str = "Mailboxes"
    ) -> dict[str, Any]:
        owner = self.owner(session, kind, "adele")
        answer = self.env.api.post(
            f"/v2/RestoreSessions/{session}/Organization/{kind}/{owner}/{action}", body
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def saved(self, session: str, kind: str, items: str) -> dict[str, bytes]:
        owner = self.owner(session, kind, "adele")
        base = f"/v2/RestoreSessions/{session}/Organization/{kind}/{owner}/{items}"
        ids = [row["id"] for row in self.env.api.rows(base)]
        answer = self.env.api.post(f"{base}/save", {"ids": ids})
        assert answer.status_code == 200, answer.text
        with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture
def e2e(org_env: OrgEnv) -> Iterator[E2E]:
    local = next(p for p in catalog.list_proxies(org_env.ctx) if p.is_local)
    catalog.heartbeat(org_env.ctx, local.id)
    worker = ProxyWorker(org_env.ctx, local.id, run_backup, renew_every=0)
    made = E2E(org_env, make_tenant(org_env.fake), worker)
    made.create()
    yield made
    # The module's server outlives the test: its organization goes, so the job goes first.
    gone = org_env.api.delete(f"/v2/Jobs/{made.job_id}")
    assert gone.status_code in (200, 204), gone.text


def change_everything(tenant: Tenant) -> None:
    """Add, delete, move, flag, read a message; rename a folder; add, modify, rename and delete
    files."""
    box = tenant.mailboxes["adele"]
    now = tenant.now()
    inbox, projects = (
        box.folder("inbox"),
        next(f for f in box.folders.values() if f.display_name == "Projects"),
    )
    assert inbox is not None
    tenant.add("adele", projects, "new in projects")
    with tenant.fake.state.lock:
        in_inbox = sorted(
            (m for m in box.messages.values() if m.folder_id == inbox.id), key=lambda m: m.received
        )
        box.delete_message(in_inbox[0].id)
        box.move_message(in_inbox[1].id, projects, now)
        box.update_message(in_inbox[2].id, now, flag_status="complete", is_read=True)
        projects.display_name = "Projects 2026"
        drive = tenant.drive
        by_name = {i.name: i for i in drive.items.values()}
        drive.change(by_name["plan.txt"].id, now, content=b"plan v2, longer")
        drive.change(by_name["notes.md"].id, now, name="notes-renamed.md")
        drive.delete(by_name["top.bin"].id)
        drive.add("new.txt", now, b"new file", by_name["Docs"])


def test_backup_change_backup_and_restore_every_point(e2e: E2E) -> None:
    users = e2e.env.api.rows(f"/v8/Organizations/{e2e.org_id}/Users")
    assert sorted(u["name"] for u in users) == [
        f"{n}@{DOMAIN}" for n in ("adele", "bob", "restore")
    ]
    first = e2e.run()
    assert first["status"] == "Success", e2e.log(first)
    change_everything(e2e.tenant)
    second = e2e.run()
    assert second["status"] == "Success", e2e.log(second)
    assert len(e2e.points) == 2 and e2e.points[0].mail != e2e.points[1].mail
    for n, point in enumerate(e2e.points):
        session = e2e.explore(point)
        # saved: the MIME byte for byte, the files byte for byte
        emls = e2e.saved(session, "Mailboxes", "Items")
        assert sorted(emls.values()) == point.mime
        files = e2e.saved(session, "OneDrives", "Documents")
        assert sorted(files.values()) == sorted(point.files.values())
        assert {name.split("/")[-1] for name in files} == {
            path.split("/")[-1] for path in point.files
        }
        # restoreTo another mailbox's folder, and copyTo: every message into that one folder
        flat = sorted(row for rows in point.mail.values() for row in rows)
        for action in ("restoreTo", "copyTo"):
            folder = f"{action}-{n}"
            e2e.put_back(session, action, {"userName": f"restore@{DOMAIN}", "folder": folder})
            with e2e.tenant.fake.state.lock:
                landed = mail_tree(e2e.tenant.mailboxes["restore"])
            assert landed[folder] == flat, (action, n)
        # the OneDrive put back into another user's drive, below a folder: paths and bytes
        folder = f"files-{n}"
        e2e.put_back(
            session, "restoreTo", {"userName": f"restore@{DOMAIN}", "folder": folder}, "OneDrives"
        )
        with e2e.tenant.fake.state.lock:
            other = e2e.tenant.fake.state.drives[e2e.tenant.users["restore"].id]
            landed_files = drive_files(other)
        assert {
            path.removeprefix(folder + "/"): data
            for path, data in landed_files.items()
            if path.startswith(folder + "/")
        } == point.files, n
        # in place, into the emptied mailbox: the point's folder tree, flags and dates
        adele = e2e.tenant.mailboxes["adele"]
        with e2e.tenant.fake.state.lock:
            for message_id in list(adele.messages):
                adele.delete_message(message_id)
        e2e.put_back(session, "restore", {})
        with e2e.tenant.fake.state.lock:
            assert mail_tree(adele) == point.mail, n
    # the latest OneDrive in place, into the emptied drive
    drive = e2e.tenant.drive
    with e2e.tenant.fake.state.lock:
        for child in drive.children(drive.root.id):
            drive.delete(child.id)
    e2e.put_back(e2e.explore(e2e.points[-1]), "restore", {}, "OneDrives")
    with e2e.tenant.fake.state.lock:
        assert drive_files(drive) == e2e.points[-1].files


def test_no_change_run_stores_nothing_new(e2e: E2E) -> None:
    assert e2e.run()["status"] == "Success"
    again = e2e.run()
    assert again["status"] == "Success", e2e.log(again)
    assert e2e.points[0].mail == e2e.points[1].mail
