"""Every operation Keepstone implements of the vendor's v6, v7 and v8 specs, exercised on real
data (an organization on disk, a backup that ran, a restore session that saved and restored),
with every response checked against that version's schema, and a check at the end that no
implemented operation was left out."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient

from keepstone.proxy.worker import ProxyWorker
from keepstone.services import auth
from keepstone.services.context import Context
from tests.conftest import ADMIN_PASSWORD, Api
from tests.contract.openapi import Operation, implemented_operations, spec
from tests.graph.test_org_contract import OFFICE365_OPERATIONS
from tests.local_org import Organization, backup_proxy, organization
from tests.s3_server import MotoServer, account_body, make_bucket, moto, storage_body

__all__ = ["backup_proxy", "moto", "organization"]  # fixtures


class Checked:
    """An API client for one version: checks each response against the spec, records what the
    scenario exercised (an operation counts once it succeeded)."""

    def __init__(self, api: Api, version: int) -> None:
        self.api, self.version, self.spec = api, version, spec(version)
        self.exercised: set[Operation] = set()

    def call(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        full = f"/v{self.version}{path}"
        if method == "delete" and body is not None:  # DELETE /ProxyPools/{id}/proxies has one
            headers = self.api._headers(None)
            response = self.api.client.request("DELETE", full, json=body, headers=headers)
        else:
            kwargs: dict[str, Any] = {} if method in ("get", "delete") else {"body": body}
            response = getattr(self.api, method)(full, **kwargs)
        content_type = response.headers.get("content-type", "")
        self.spec.check_response(method, full, response.status_code, content_type, response.content)
        if status is not None:
            assert response.status_code == status, response.text
        else:
            assert response.status_code < 300, f"{method.upper()} {full}: {response.text}"
        template = self.spec.match(method, full)
        assert template is not None
        if response.status_code < 300:
            self.exercised.add((method.upper(), template))
        return response

    def json(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        return self.call(method, path, body, status).json()

    def results(self, path: str) -> list[Any]:
        """A list (bare or paged), which must not be empty: the point is to check real data."""
        found = self.json("get", path)
        rows: list[Any] = found["results"] if isinstance(found, dict) else found
        assert rows, f"GET {path} listed nothing"
        return rows


@pytest.fixture
def setup(
    api: Api, organization: Organization, repo: dict[str, Any], backup_proxy: ProxyWorker
) -> Iterator[dict[str, Any]]:
    """An organization with a job that ran once, through v2: the versions under test read it."""
    org = api.post(
        "/v2/Organizations",
        {"type": "Local", "name": "acme", "localSettings": {"path": str(organization.root)}},
    ).json()
    job = api.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        {"name": "acme backup", "repositoryId": repo["id"], "schedulePolicy": {"type": "Daily"}},
    ).json()
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    assert backup_proxy.run_one()
    yield {"org": org, "job": job, "repo": repo, "proxy": backup_proxy}


@pytest.mark.parametrize("version", [6, 7, 8])
def test_every_implemented_operation_conforms(
    version: int,
    api: Api,
    client: TestClient,
    ctx: Context,
    setup: dict[str, Any],
    moto: MotoServer,
) -> None:
    v = Checked(api, version)
    org, job, repo = setup["org"], setup["job"], setup["repo"]
    _auth(v, client)
    _server(v, org)
    _roles(v, org, ctx)
    _organizations(v, org)
    _infrastructure(v, repo)
    _proxies_and_pools(v, repo)
    _object_storage(v, repo, moto.url)
    spare_job = _jobs(v, org, job, repo)
    _sessions(v, job, setup["proxy"])
    _copy_jobs(v, org, job, repo, setup["proxy"])
    _restore(v, org, job)
    _audit(v, org)
    _notifications_and_reports(v, org)
    v.call("delete", f"/Jobs/{spare_job}", status=204)

    # an Office365 organization's own operations need the fake Graph: test_org_contract's
    missing = (
        implemented_operations(client.app, version) - v.exercised - OFFICE365_OPERATIONS[version]
    )
    assert not missing, f"v{version} operations the scenario did not exercise: {sorted(missing)}"


def _auth(v: Checked, client: TestClient) -> None:
    issued = client.post(
        f"/v{v.version}/token",
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
        headers={"Accept": "*/*"},
    )
    v.spec.check_response(
        "POST",
        f"/v{v.version}/token",
        issued.status_code,
        issued.headers["content-type"],
        issued.content,
    )
    assert issued.headers["content-type"].startswith("application/json")
    v.exercised.add(("POST", v.spec.match("post", f"/v{v.version}/token") or ""))
    if v.version >= 7:
        session = Checked(Api(client, issued.json()["access_token"]), v.version)
        session.call("post", "/token/logout", status=204 if v.version >= 8 else 200)
        v.exercised |= session.exercised
        assert session.api.get(f"/v{v.version}/ServiceInstance").status_code == 401


def _server(v: Checked, org: dict[str, Any]) -> None:
    instance = v.json("get", "/ServiceInstance")
    assert uuid.UUID(instance["installationId"]) and instance["version"]
    assert v.json("get", "/RestorePortalSettings")["isEnabled"] is False
    licence = v.json("get", "/License")
    assert (licence["status"], licence["type"], licence["usedNumber"]) == ("Valid", "Community", 2)
    if v.version >= 8:
        report = v.json("get", "/Health")
        assert set(report["entries"]) == {"catalog", "repositories"}


def _roles(v: Checked, org: dict[str, Any], ctx: Context) -> None:
    auth.add_user(ctx, "operator", "operator password", auth.Role.NONE)
    user = next(u for u in auth.list_users(ctx) if u.name == "operator")
    people = {u["name"]: u["id"] for u in v.results(f"/Organizations/{org['id']}/Users")}
    created = v.json(
        "post",
        f"/Organizations/{org['id']}/RbacRoles",
        {
            "name": "mail desk",
            "roleType": "SpecificObjects",
            "operators": [{"type": "User", "id": user.id}],
            "selectedItems": [{"type": "User", "id": people["alice"]}],
        },
        status=201 if v.version >= 8 else 200,
    )
    role = f"/RbacRoles/{created['id']}"
    assert v.json("get", "/RbacRoles") == [created]
    assert v.json("get", f"/Organizations/{org['id']}/RbacRoles") == [created]
    assert v.json("get", role) == created
    (operator,) = v.json("get", f"{role}/operators")
    assert operator["user"]["name"] == "operator"
    v.json("get", f"{role}/operators/{operator['id']}")
    v.call("delete", f"{role}/operators?ids={user.id}", status=204)
    v.call("post", f"{role}/operators", [{"type": "User", "id": user.id}], status=204)
    bob = [{"type": "User", "id": people["bob"]}]
    for collection in ("selectedItems", "excludedItems"):
        v.call("post", f"{role}/{collection}", bob, status=204)
        listed = v.json("get", f"{role}/{collection}")
        assert people["bob"] in {item["id"] for item in listed}
        v.json("get", f"{role}/{collection}/{people['bob']}")
        v.call("delete", f"{role}/{collection}?ids={people['bob']}", status=204)
    v.call("put", role, {"name": "mail desk 2", "access": "ReadOnly"}, status=204)
    v.call("delete", role, status=204)


def _organizations(v: Checked, org: dict[str, Any]) -> None:
    listed = v.results("/Organizations")
    assert listed[0]["isBackedup"] is True and listed[0]["lastBackuptime"]
    v.json("get", f"/Organizations/{org['id']}")
    users = v.results(f"/Organizations/{org['id']}/Users")
    assert {u["name"] for u in users} == {"alice", "bob"}
    v.json("get", f"/Organizations/{org['id']}/Users/{users[0]['id']}")
    licensing = v.json("get", f"/Organizations/{org['id']}/LicensingInformation")
    assert licensing["licensedUsers"] == 2
    licensed = v.results(f"/LicensedUsers?organizationId={org['id']}")
    assert {u["name"] for u in licensed} == {"alice", "bob"}
    used = v.results(f"/Organizations/{org['id']}/usedRepositories")
    assert len(used) == 1 and used[0]["usedSpaceBytes"] > 0

    spare = v.call(
        "post",
        "/Organizations",
        {
            "type": "Local",
            "name": f"spare {v.version}",
            "localSettings": {"path": org["localSettings"]["path"]},
        },
        status=201 if v.version >= 8 else 200,
    ).json()
    v.call("put", f"/Organizations/{spare['id']}", {"description": "edited"}, status=204)
    v.call("delete", f"/Organizations/{spare['id']}", status=204)


def _infrastructure(v: Checked, repo: dict[str, Any]) -> None:
    proxies = v.results("/Proxies")
    v.json("get", f"/Proxies/{proxies[0]['id']}")
    v.call("put", f"/Proxies/{proxies[0]['id']}", {"description": "local"})
    repos = v.results("/BackupRepositories")
    assert "capacityBytes" in repos[0] and "capacity" not in repos[0]
    v.json("get", f"/BackupRepositories/{repo['id']}")
    v.call("put", f"/BackupRepositories/{repo['id']}", {"description": "edited"})
    sealed = v.call(
        "post",
        "/BackupRepositories",
        {
            "name": f"sealed {v.version}",
            # beside the data directory: nothing but the default repository may be inside it
            "path": str(Path(repo["path"]).parent.parent / f"sealed-{v.version}"),
            "encryptionPassword": "correct horse",
        },
        status=201 if v.version >= 8 else 200,
    ).json()
    keys = v.results("/EncryptionKeys")
    assert sealed["encryptionKeyId"] in {k["id"] for k in keys}
    v.json("get", f"/EncryptionKeys/{sealed['encryptionKeyId']}")
    v.call("delete", f"/BackupRepositories/{sealed['id']}", status=204)


def _proxies_and_pools(v: Checked, repo: dict[str, Any]) -> None:
    """A remote proxy added, maintained and removed; v8: a pool of two, its members changed,
    a repository it owns, the pool deleted once the repository is gone."""
    created = 201 if v.version >= 8 else 200
    added = v.json("post", "/Proxies", {"hostName": f"remote-{v.version}.example.test"}, created)
    assert added["status"] == "Offline" and added["type"] == "Workgroup"
    if v.version >= 8:
        v.call("post", f"/Proxies/{added['id']}/maintenance/enable", {}, status=204)
        v.call("post", f"/Proxies/{added['id']}/maintenance/disable", {}, status=204)
        other = v.json("post", "/Proxies", {"hostName": "other.example.test"}, 201)
        members = [{"proxyId": added["id"]}]
        pool = v.json(
            "post", "/ProxyPools", {"name": "pool", "description": "", "proxyIds": members}, 201
        )
        assert [p["id"] for p in v.results("/ProxyPools")] == [pool["id"]]
        v.json("get", f"/ProxyPools/{pool['id']}")
        v.call("post", f"/ProxyPools/{pool['id']}/proxies", [{"proxyId": other["id"]}], 204)
        assert len(v.results(f"/ProxyPools/{pool['id']}/proxies")) == 2
        v.call("delete", f"/ProxyPools/{pool['id']}/proxies", members, status=204)
        v.call("put", f"/ProxyPools/{pool['id']}", {"name": "renamed", "description": "x"}, 204)
        where = str(Path(repo["path"]).parent.parent / "pooled")
        body = {"name": "pooled", "path": where, "proxyPoolId": pool["id"]}
        owned = v.json("post", "/BackupRepositories", body, 201)
        assert (owned["proxyPoolId"], owned["proxyId"]) == (pool["id"], other["id"])
        v.call("delete", f"/BackupRepositories/{owned['id']}", status=204)
        v.call("delete", f"/ProxyPools/{pool['id']}", status=204)
        v.call("post", f"/Proxies/{other['id']}/Remove", {"force": False}, status=204)
    v.call("post", f"/Proxies/{added['id']}/Remove", {}, status=204 if v.version >= 8 else 200)


def _object_storage(v: Checked, repo: dict[str, Any], url: str) -> None:
    """Accounts; v6/v7 object storages by id, v8 inline; an S3 repository read and deleted."""
    account = v.call("post", "/Accounts", account_body(), status=201).json()
    v.results("/Accounts")
    v.json("get", f"/Accounts/{account['id']}")
    v.call("put", f"/Accounts/{account['id']}", {"description": "edited"})
    body = storage_body(url, make_bucket(url), account["id"])
    if v.version >= 8:
        inline = {"objectStorage": body}
    else:
        storage = v.json("post", "/objectstoragerepositories", body)
        v.results("/objectstoragerepositories")
        v.json("get", f"/objectstoragerepositories/{storage['id']}")
        v.call("put", f"/objectstoragerepositories/{storage['id']}", {"description": "edited"})
        inline = {"objectStorageId": storage["id"]}
    where = str(Path(repo["path"]).parent.parent / f"s3-cache-{v.version}")
    created = v.json(
        "post",
        "/BackupRepositories",
        {"name": f"s3 {v.version}", "path": where} | inline,
        status=201 if v.version >= 8 else 200,
    )
    v.json("get", f"/BackupRepositories/{created['id']}")
    v.call("delete", f"/BackupRepositories/{created['id']}", status=204)
    if v.version < 8:
        v.call("delete", f"/objectstoragerepositories/{storage['id']}", status=204)
    else:  # the inline object storage stays, and with it its account: delete a spare one
        account = v.call("post", "/Accounts", account_body(), status=201).json()
    v.call("delete", f"/Accounts/{account['id']}", status=204)


def _jobs(v: Checked, org: dict[str, Any], job: dict[str, Any], repo: dict[str, Any]) -> str:
    """Reads the job that ran; creates a spare one to edit and act on. Returns the spare's id."""
    listed = v.results("/Jobs")
    assert listed[0]["lastStatus"] == "Success"
    if v.version <= 7:
        v.results(f"/Organizations/{org['id']}/Jobs")
        assert "proxyId" not in listed[0]
    shown = v.json("get", f"/Jobs/{job['id']}")
    assert ("eTag" in shown) == (v.version >= 8)
    body = {"name": "spare", "repositoryId": repo["id"], "schedulePolicy": {"type": "ManualOnly"}}
    if v.version >= 8:
        spare = v.call("post", "/Jobs", body | {"organizationId": org["id"]}, status=201).json()
    else:
        spare = v.call("post", f"/Organizations/{org['id']}/Jobs", body, status=200).json()
    spare_id = spare["id"]
    v.call("put", f"/Jobs/{spare_id}", {"description": "edited"}, status=204)
    alice = {
        "type": "User",
        "user": {"id": str(uuid.uuid4()), "name": "alice", "displayName": "alice", "type": "User"},
        "mailbox": True,
    }
    for collection in ("SelectedItems", "ExcludedItems"):
        base = f"/Jobs/{spare_id}/{collection}"
        v.call("post", base, [alice, alice | {"oneDrive": True}], status=204)
        first, second = v.results(base)
        v.json("get", f"{base}/{first['id']}")
        v.call("put", f"{base}/{first['id']}", alice | {"archiveMailbox": True}, status=204)
        v.call("delete", f"{base}?ids={second['id']}", status=204)
        assert len(v.results(base)) == 1
    v.call("post", f"/Jobs/{spare_id}/disable", status=204)
    v.call("post", f"/Jobs/{spare_id}/enable", status=204)
    v.call(
        "post", f"/Jobs/{spare_id}/start", {"full": False}, status=200 if v.version >= 8 else 204
    )
    v.call("post", f"/Jobs/{spare_id}/stop", status=204)
    return spare_id


def _sessions(v: Checked, job: dict[str, Any], proxy: ProxyWorker) -> None:
    sessions = v.results(f"/JobSessions?jobId={job['id']}")
    ran = next(s for s in sessions if s["status"] == "Success")
    assert isinstance(ran["statistics"]["processedObjects"], int)
    if v.version <= 6:
        v.results(f"/Jobs/{job['id']}/JobSessions")
    v.json("get", f"/JobSessions/{ran['id']}")
    items = v.results(f"/JobSessions/{ran['id']}/LogItems")
    assert ("message" in items[0]) == (v.version >= 8) != ("title" in items[0])
    v.json("get", f"/JobSessions/{ran['id']}/LogItems/{items[0]['id']}")
    if v.version >= 7:
        processed = v.results(f"/JobSessions/{ran['id']}/ProcessedObjects")
        assert {p["status"] for p in processed} == {"Success"} and len(processed) == 2


def _copy_jobs(
    v: Checked, org: dict[str, Any], job: dict[str, Any], repo: dict[str, Any], proxy: ProxyWorker
) -> None:
    """A copy job of the job that ran, to a repository of its own: made, read, edited, run
    (its session read as a copy session), stopped, switched off and on, deleted."""
    target = v.call(
        "post",
        "/BackupRepositories",
        {"name": f"copies {v.version}", "path": str(Path(repo["path"]).parent.parent / "c")},
        status=201 if v.version >= 8 else 200,
    ).json()
    body = {"backupJobId": job["id"], "repositoryId": target["id"], "organizationId": org["id"]}
    created = 201 if v.version >= 8 else 200
    copy = v.json("post", "/CopyJobs", body | {"schedulePolicy": {"type": "Immediate"}}, created)
    assert [c["id"] for c in v.results("/CopyJobs")] == [copy["id"]]
    v.json("get", f"/CopyJobs/{copy['id']}")
    periodic = {"type": "Periodically", "periodicallyEvery": "Hours1"}
    v.call("put", f"/CopyJobs/{copy['id']}", {"schedulePolicy": periodic}, status=204)
    assert v.json("get", f"/Jobs/{job['id']}/CopyJob")["nextRun"] is not None
    assert v.json("get", f"/CopyJobs/{copy['id']}/BackupJob")["id"] == job["id"]
    start = {"full": False} if v.version == 6 else None
    v.call("post", f"/CopyJobs/{copy['id']}/start", start, status=200 if v.version >= 8 else 204)
    assert proxy.run_one()
    if v.version >= 7:
        (ran,) = v.results("/JobSessions?jobType=Copy")
        assert ran["jobType"] == "Copy" and ran["status"] == "Success"
    v.call("post", f"/CopyJobs/{copy['id']}/start", start)
    v.call("post", f"/CopyJobs/{copy['id']}/stop", status=204)
    v.call("post", f"/CopyJobs/{copy['id']}/disable", status=204)
    v.call("post", f"/CopyJobs/{copy['id']}/enable", status=204)
    v.call("delete", f"/CopyJobs/{copy['id']}", status=204)
    v.call("delete", f"/BackupRepositories/{target['id']}", status=204)


def _follows_folder_links(v: Checked, folders: list[dict[str, Any]], owner: str) -> None:
    """Each folder is read by id, and its links lead to itself and to its parent: a top-level
    folder (no parentId) has no parent link, which is how clients tell one."""
    nested = next(f for f in folders if f["parentId"] is not None)
    top = next(f for f in folders if f["parentId"] is None)
    assert "parent" not in top["_links"]
    for folder in (nested, top):
        assert v.json("get", f"{owner}/folders/{folder['id']}")["id"] == folder["id"]
    parent = v.json("get", nested["_links"]["parent"]["href"].removeprefix(f"/v{v.version}"))
    assert parent["id"] == nested["parentId"]


def _restore(v: Checked, org: dict[str, Any], job: dict[str, Any]) -> None:
    points = v.results(f"/RestorePoints?jobId={job['id']}")
    v.json("get", f"/RestorePoints/{points[0]['id']}")
    created = 201 if v.version >= 8 else 200
    by_job = v.call("post", f"/Jobs/{job['id']}/explore", {"type": "Vex"}, status=created).json()
    session = v.call(
        "post", f"/Organizations/{org['id']}/explore", {"type": "Vex"}, status=created
    ).json()
    base = f"/RestoreSessions/{session['id']}/organization"
    mailboxes = v.results(f"{base}/mailboxes")
    alice = next(m for m in mailboxes if m["name"] == "alice")
    assert v.json("get", f"{base}/mailboxes/{alice['id']}")["name"] == "alice"
    folders = v.results(f"{base}/mailboxes/{alice['id']}/folders")
    _follows_folder_links(v, folders, f"{base}/mailboxes/{alice['id']}")
    messages = v.results(f"{base}/mailboxes/{alice['id']}/items")
    one = messages[0]["id"]
    v.call("post", f"{base}/mailboxes/{alice['id']}/items/{one}/save")
    v.call("post", f"{base}/mailboxes/{alice['id']}/items/Save", {"ids": [one]})
    for action, extra in (
        ("restore", {}),
        ("restoreTo", {"userName": "bob", "folder": "From Alice"}),
    ):
        v.call("post", f"{base}/mailboxes/{alice['id']}/{action}", extra)
        v.call("post", f"{base}/mailboxes/{alice['id']}/items/{action}", extra | {"ids": [one]})
        v.call("post", f"{base}/mailboxes/{alice['id']}/items/{one}/{action}", extra)
    drives = f"/RestoreSessions/{by_job['id']}/Organization/OneDrives"
    v.call("post", f"/RestoreSessions/{by_job['id']}/stop", status=204 if v.version >= 8 else 200)
    files = v.call("post", f"/Jobs/{job['id']}/explore", {"type": "Veod"}, status=created).json()
    drives = f"/RestoreSessions/{files['id']}/Organization/OneDrives"
    owners = v.results(drives)
    owner = next(o for o in owners if o["name"] == "alice")
    assert v.json("get", f"{drives}/{owner['id']}")["name"] == "alice"
    _follows_folder_links(
        v, v.results(f"{drives}/{owner['id']}/Folders"), f"{drives}/{owner['id']}"
    )
    documents = v.results(f"{drives}/{owner['id']}/Documents")
    doc = documents[0]["id"]
    v.call("post", f"{drives}/{owner['id']}/Documents/{doc}/save")
    v.call("post", f"{drives}/{owner['id']}/Documents/save", {"ids": [doc]})
    for action, extra in (("restore", {}), ("copyTo", {"userName": "bob", "folder": "From Alice"})):
        v.call("post", f"{drives}/{owner['id']}/{action}", extra)
        v.call("post", f"{drives}/{owner['id']}/Documents/{action}", extra | {"ids": [doc]})
        v.call("post", f"{drives}/{owner['id']}/Documents/{doc}/{action}", extra)

    sessions = v.results("/RestoreSessions")
    assert session["id"] in {s["id"] for s in sessions}
    v.json("get", f"/RestoreSessions/{session['id']}")
    events = v.results(f"/RestoreSessions/{session['id']}/Events")
    assert {e["type"] for e in events} == {"Save", "Restore"}
    one = v.json("get", f"/RestoreSessions/{session['id']}/Events/{events[0]['id']}")
    assert one == events[0]
    explored = v.json("get", f"/RestoreSessions/{session['id']}/organization")
    assert (explored["id"], explored["type"]) == (org["id"], "OnPremises")
    if v.version >= 8:
        stats = v.json("get", f"/RestoreSessions/{session['id']}/Statistics")
        assert stats["restoredItemsCount"] > 0


def _notifications_and_reports(v: Checked, org: dict[str, Any]) -> None:
    """Mail settings and their test mail (to an SMTP server of the test's), v8's reports."""
    if v.version < 6:
        return

    class Accept:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(Accept(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        settings = {
            "enableNotification": True,
            "smtpServer": "127.0.0.1",
            "port": port,
            "from": "keepstone@example.test",
            "to": "ops@example.test",
        }
        v.json("get", "/VboEmailSettings")
        v.call("put", "/VboEmailSettings", settings, status=204 if v.version >= 8 else 200)
        test = "/VboEmailSettings/SendTestEmail" if v.version >= 8 else "/VboEmailSettings/SendTest"
        v.call("post", test, status=204 if v.version >= 8 else 200)
    finally:
        smtp.stop()
    protection = ["UserProtection", "MailboxProtection"] + ["OneDriveProtection"] * (v.version >= 8)
    for report in protection:
        v.call("post", f"/Reports/Generate{report}", {"organizationId": org["id"], "format": "CSV"})
    for report in ("StorageConsumption", "LicenseOverview"):
        v.call("post", f"/Reports/Generate{report}", {"format": "PDF"})


def _audit(v: Checked, org: dict[str, Any]) -> None:
    if v.version < 6:
        return
    items = v.results(f"/Organizations/{org['id']}/AuditItems")
    assert {i["user"]["name"] for i in items} == {"alice"}  # whose data _restore got out
    assert {i["type"] for i in items} == {"User"}
