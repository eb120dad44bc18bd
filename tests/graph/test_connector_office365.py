"""An Office365 organization backed up end to end through the product: created over the API
(its users cached by the create's sync), a job selecting mailboxes, In-Place Archives and
OneDrives, run by the proxy's real executor (``run_backup`` dispatching on the organization's
type), and the restore point's bytes compared with the fake's."""

from __future__ import annotations

from typing import Any

from keepstone.proxy.backup import run_backup
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import catalog, m365_directory, restore_points, vault
from tests.graph.fake_mail import mime_of
from tests.graph.org_fixtures import OrgEnv, _org_fake, _org_server, org_body, org_env
from tests.graph_fake.mailbox import Mailbox
from tests.graph_fake.state import User

__all__ = ["_org_fake", "_org_server", "org_env"]


def _fill(org_env: OrgEnv, mailbox: Mailbox, n: int, archive: bool = False) -> None:
    state = org_env.fake.state
    with state.lock:
        box = mailbox.archive if archive else mailbox
        assert box is not None
        inbox = box.folder("inbox")
        assert inbox is not None
        for i in range(n):
            box.add_message(inbox, mime_of(i + (100 if archive else 0)), state.clock.now())


def test_an_office365_job_backs_up_mailboxes_archives_and_onedrives(org_env: OrgEnv) -> None:
    state = org_env.fake.state
    tenant = state.add_tenant("contoso.onmicrosoft.com")
    people: list[tuple[User, Mailbox]] = []
    for name in ("adele", "bianca"):
        user = state.add_user(tenant, name)
        mailbox = state.add_mailbox(user)
        drive = state.add_drive(user)
        with state.lock:
            drive.add(f"{name}.txt", state.clock.now(), f"notes of {name}".encode())
        people.append((user, mailbox))
    with state.lock:
        people[0][1].add_archive(tenant.id)
    _fill(org_env, people[0][1], 5)
    _fill(org_env, people[0][1], 3, archive=True)
    _fill(org_env, people[1][1], 4)
    app = state.add_app(tenant, secret="app-secret-Zq8~not-in-any-file")
    api = org_env.api
    created = api.post("/v8/Organizations", org_body(app))
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    m365_directory.SYNCS.wait(30)  # the create's sync fills the user cache
    users = {
        u["name"].split("@")[0]: u
        for u in api.get(f"/v8/Organizations/{org_id}/Users").json()["results"]
    }
    repo = api.get("/v2/BackupRepositories").json()[0]
    selected: list[dict[str, Any]] = [
        {
            "type": "User",
            "user": {"id": users["adele"]["id"]},
            "mailbox": True,
            "archiveMailbox": True,
            "oneDrive": True,
        },
        {"type": "User", "user": {"id": users["bianca"]["id"]}, "mailbox": True},
    ]
    job = api.post(
        f"/v2/Organizations/{org_id}/Jobs",
        {
            "name": "m365",
            "backupType": "SelectedItems",
            "repositoryId": repo["id"],
            "selectedItems": selected,
        },
    )
    assert job.status_code == 200, job.text
    ctx = org_env.ctx
    local = next(p for p in catalog.list_proxies(ctx) if p.is_local)
    catalog.heartbeat(ctx, local.id)
    assert api.post(f"/v2/Jobs/{job.json()['id']}/Action", {"start": None}).status_code == 200
    assert ProxyWorker(ctx, local.id, run_backup, renew_every=0).run_one()
    session = api.get(f"/v2/Jobs/{job.json()['id']}/JobSessions").json()[0]
    assert session["status"] == "Success", api.get(
        f"/v2/JobSessions/{session['id']}/LogItems"
    ).json()

    processed = api.get(f"/v8/JobSessions/{session['id']}/ProcessedObjects").json()
    rows = processed["results"] if isinstance(processed, dict) else processed
    # the users processed are named by the ids the organization's user list gives them
    assert {(o["id"], o["status"]) for o in rows} == {
        (users["adele"]["id"], "Success"),
        (users["bianca"]["id"], "Success"),
    }

    repository = vault.open_repository(ctx, repo["id"], repo["path"])
    point = next(
        s.id
        for s in repository.snapshots()
        if s.tags.get(restore_points.TAG_JOB) == job.json()["id"]
    )
    stored = {i.key: (i, b"".join(repository.read(i))) for i in repository.items(point)}
    mail = {k: v for k, (i, v) in stored.items() if i.kind == "mail"}
    expected: dict[str, bytes] = {}
    for user, mailbox in people:
        name = user.user_principal_name.lower()
        expected |= {f"{name}/graph-mail/primary/{i}": m.mime for i, m in mailbox.messages.items()}
    archive = people[0][1].archive
    assert archive is not None
    adele = people[0][0].user_principal_name.lower()
    expected |= {f"{adele}/graph-mail/archive/{i}": m.mime for i, m in archive.messages.items()}
    assert mail == expected
    files = {i.path: v for k, (i, v) in stored.items() if i.kind == "file"}
    assert files == {"adele.txt": b"notes of adele"}  # bianca's OneDrive was not selected
