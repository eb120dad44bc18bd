"""Two backed-up organizations and a user without a global role, for the tests of organization
roles: ``acme`` (alice, bob) and ``globex`` (carol), each with a job that ran once, and a restore
session an administrator opened on globex's point."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from keepstone.proxy.worker import ProxyWorker
from keepstone.services import auth
from keepstone.services.context import Context
from tests.conftest import Api, login
from tests.local_org import Organization, run_job

OPERATOR_PASSWORD = "operator password"


@dataclass
class Org:
    body: dict[str, Any]
    job: dict[str, Any]
    point: str
    session: str  # a restore session an administrator opened on the point
    owners: dict[str, str] = field(default_factory=dict)  # user name -> mailbox owner id
    users: dict[str, str] = field(default_factory=dict)  # user name -> organization user id

    @property
    def id(self) -> str:
        return str(self.body["id"])


@dataclass
class World:
    admin: Api
    acme: Org
    globex: Org


def backed_up(
    api: Api,
    proxy: ProxyWorker | None,
    root: Path,
    name: str,
    users: list[str],
    repo: dict[str, Any],
) -> Org:
    """The organization with its job; run once, with a restore session on its point, unless
    ``proxy`` is None (the tests of the roles API need users, not backups)."""
    org = Organization(root)
    for user in users:
        org.user(user)
        org.mail(user, "", f"{user}'s secret report")
        org.file(user, "notes.md", f"{user} notes\n".encode())
    created = api.post(
        "/v2/Organizations", {"type": "Local", "name": name, "localSettings": {"path": str(root)}}
    )
    assert created.status_code == 200, created.text
    job = api.post(
        f"/v2/Organizations/{created.json()['id']}/Jobs",
        {
            "name": f"{name} backup",
            "repositoryId": repo["id"],
            "schedulePolicy": {"type": "ManualOnly"},
        },
    )
    assert job.status_code == 200, job.text
    org_id = created.json()["id"]
    people = {u["name"]: u["id"] for u in api.rows(f"/v8/Organizations/{org_id}/Users")}
    if proxy is None:
        return Org(created.json(), job.json(), "", "", users=people)
    run_job(api, job.json(), proxy)
    (point,) = [p["id"] for p in api.rows(f"/v8/RestorePoints?organizationId={org_id}")]
    session = api.post(f"/v8/Organizations/{org_id}/explore", {"type": "Vex"})
    assert session.status_code == 201, session.text
    found = Org(created.json(), job.json(), point, session.json()["id"], users=people)
    mailboxes = api.rows(f"/v8/RestoreSessions/{found.session}/Organization/Mailboxes")
    found.owners = {m["name"]: m["id"] for m in mailboxes}
    return found


def world(api: Api, proxy: ProxyWorker | None, tmp_path: Path, repo: dict[str, Any]) -> World:
    acme = backed_up(api, proxy, tmp_path / "acme", "acme", ["alice", "bob"], repo)
    globex = backed_up(api, proxy, tmp_path / "globex", "globex", ["carol"], repo)
    return World(api, acme, globex)


def operator(client: TestClient, ctx: Context, name: str = "operator") -> Api:
    """A user with no global role, logged in."""
    auth.add_user(ctx, name, OPERATOR_PASSWORD, auth.Role.NONE)
    return Api(client, login(client, name, OPERATOR_PASSWORD))


def give_role(
    admin: Api,
    org: Org,
    operators: list[str],
    *,
    access: str = "Restore",
    selected: list[str] | None = None,
    excluded: list[str] | None = None,
    name: str = "restorers",
) -> dict[str, Any]:
    """A role of ``org`` for the named operators, scoped to the named users of the organization."""
    body: dict[str, Any] = {
        "name": name,
        "access": access,
        "operators": [{"type": "User", "user": {"name": n}} for n in operators],
    }
    if selected is not None:
        body["selectedItems"] = [{"type": "User", "id": org.users[u]} for u in selected]
    if excluded is not None:
        body["excludedItems"] = [{"type": "User", "id": org.users[u]} for u in excluded]
    created = admin.post(f"/v8/Organizations/{org.id}/RbacRoles", body)
    assert created.status_code == 201, created.text
    role: dict[str, Any] = created.json()
    return role
