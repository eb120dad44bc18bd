"""Every GET the JSON dialect serves, v2 to v8, read as monitoring tools read it, on a catalog
with several organizations, jobs that ran, two repositories, restore points and restore sessions.

Checked for every version: no served path answers 404 (every parameter is filled from the API's
own lists); no list loses an item (a page read to its end through ``next`` links holds as many
items as the catalog, each once); v6-v8 answers conform to the vendor's schema; and v6-v8 answers
carry no ``null`` where Keepstone knows the value (``KNOWN_UNKNOWN`` says why each null is one).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from keepstone.clock import ManualClock
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import auth, catalog, licensing, runs
from keepstone.services.context import Context
from keepstone.store.tables import (
    CopyJob,
    Job,
    JobSession,
    LogItem,
    Proxy,
    ProxyPool,
    RbacRole,
    Repository,
    RestorePoint,
    RestoreSession,
)
from keepstone.store.tables import (
    Organization as OrganizationRow,
)
from tests.conftest import BASE_URL, Api
from tests.contract.crawl import Crawl, Crawler, get_templates, null_fields
from tests.contract.openapi import spec
from tests.graph.test_org_contract import OFFICE365_ONLY_GETS
from tests.local_org import Organization, api, backup_proxy
from tests.s3_server import MotoServer, account_body, make_bucket, moto, storage_body

__all__ = [
    "api",
    "backup_proxy",
    "moto",
]  # fixtures: a client that logs in again as the clock moves

PASSWORD = "correct horse battery"
ALL_VERSIONS = range(2, 9)
SPEC_VERSIONS = (6, 7, 8)
USERS = {"acme": ("alice", "bob"), "globex": ("carol", "dave", "erin")}


def _write_organization(root: Path, users: tuple[str, ...]) -> Organization:
    org = Organization(root)
    for n, user in enumerate(users):
        org.user(user)
        for i in range(n + 2):  # users differ in size: lists of items span pages differently
            org.mail(user, "", f"Hello {user} #{i}")
        org.mail(user, ".Sent", f"Sent by {user}")
        org.file(user, f"Documents/{user}.txt", f"{user}'s notes\n".encode())
        org.file(user, "Photos/one.bin", size=1024 + n)
    return org


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def _run(api: Api, job_id: str, proxy: ProxyWorker, clock: ManualClock) -> None:
    assert api.post(f"/v2/Jobs/{job_id}/Action", {"start": None}).status_code == 200
    assert proxy.run_one()
    clock.advance(timedelta(minutes=10))  # the next run is a distinct restore point


def _copy(api: Api, job: dict[str, Any], target: dict[str, Any], proxy: ProxyWorker) -> None:
    schedule = {"type": "Periodically", "periodicallyEvery": "Hours8"}
    body = {"backupJobId": job["id"], "repositoryId": target["id"], "schedulePolicy": schedule}
    copy = _created(api.post("/v6/CopyJobs", body))
    assert api.post(f"/v8/CopyJobs/{copy['id']}/start").status_code == 200
    assert proxy.run_one()


@pytest.fixture
def populated(
    api: Api,
    tmp_path: Path,
    repo: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
    moto: MotoServer,
    ctx: Context,
) -> dict[str, Any]:
    """Two organizations (2 and 3 users), three jobs over two repositories (one encrypted),
    each job run twice, restore sessions of mail and files, one task, an S3 account with an
    object storage, and a role in each organization."""
    auth.add_user(ctx, "operator", "operator password", auth.Role.NONE)
    remote = _created(api.post("/v8/Proxies", {"hostName": "remote.example.test"}))
    members = [{"proxyId": remote["id"]}]
    _created(api.post("/v8/ProxyPools", {"name": "pool", "description": "", "proxyIds": members}))
    account = _created(api.post("/v6/Accounts", account_body()))
    storage = storage_body(moto.url, make_bucket(moto.url), account["id"])
    _created(api.post("/v6/objectstoragerepositories", storage))
    orgs = {
        name: _created(
            api.post(
                "/v2/Organizations",
                {
                    "type": "Local",
                    "name": name,
                    "localSettings": {
                        "path": str(_write_organization(tmp_path / name, users).root)
                    },
                },
            )
        )
        for name, users in USERS.items()
    }
    sealed = _created(
        api.post(
            "/v2/BackupRepositories",
            {
                "name": "sealed",
                "path": str(Path(repo["path"]).parent.parent / "sealed"),
                "encryptionPassword": PASSWORD,
            },
        )
    )
    plans = (
        ("acme", "acme all", repo),
        ("acme", "acme sealed", sealed),
        ("globex", "globex", repo),
    )
    jobs = [
        _created(
            api.post(
                f"/v2/Organizations/{orgs[org]['id']}/Jobs",
                {"name": name, "repositoryId": target["id"], "schedulePolicy": {"type": "Daily"}},
            )
        )
        for org, name, target in plans
    ]
    for org in orgs.values():  # a role in each organization, with an operator and a scope
        people = api.rows(f"/v8/Organizations/{org['id']}/Users")
        role = {
            "name": f"{org['name']} desk",
            "operators": [{"type": "User", "user": {"name": "operator"}}],
            "selectedItems": [{"type": "User", "id": people[0]["id"]}],
            "excludedItems": [{"type": "User", "id": people[1]["id"]}],
        }
        _created(api.post(f"/v8/Organizations/{org['id']}/RbacRoles", role))
    alice = {"type": "User", "user": {"id": "alice", "name": "alice", "type": "User"}}
    picked = api.post(f"/v8/Jobs/{jobs[1]['id']}/SelectedItems", [alice | {"mailbox": True}])
    assert picked.status_code == 204, picked.text
    bob = {"type": "User", "user": {"id": "bob", "name": "bob", "type": "User"}, "oneDrive": True}
    left_out = api.post(f"/v8/Jobs/{jobs[1]['id']}/ExcludedItems", [bob])
    assert left_out.status_code == 204, left_out.text
    for job in jobs * 2:
        _run(api, job["id"], backup_proxy, clock)
    for job, (_, _, source) in zip(jobs, plans, strict=True):  # each copied to the other one
        _copy(api, job, sealed if source is repo else repo, backup_proxy)
    explored = [_created(api.post(f"/v8/Jobs/{j['id']}/explore", {"type": "Vex"})) for j in jobs]
    explored.append(_created(api.post(f"/v8/Jobs/{jobs[0]['id']}/explore", {"type": "Veod"})))
    for session in explored:  # an event in each, whichever ones the crawl reads
        _save_first_item(api, session["id"], session["type"])
    verify = api.post(
        f"/v8/BackupRepositories/{repo['id']}/verify", headers={"Prefer": "respond-async"}
    )
    assert verify.status_code == 202, verify.text
    return {"orgs": orgs, "jobs": jobs, "repos": [repo, sealed], "task": verify.json()["id"]}


def _save_first_item(api: Api, session_id: str, kind: str) -> None:
    owners, items = ("Mailboxes", "Items") if kind == "Vex" else ("OneDrives", "Documents")
    base = f"/v8/RestoreSessions/{session_id}/Organization/{owners}"
    owner = api.rows(base)[0]["id"]
    item = api.rows(f"{base}/{owner}/{items}")[0]["id"]
    saved = api.post(f"{base}/{owner}/{items}/{item}/save")
    assert saved.status_code == 200, saved.text


def crawl(client: TestClient, api: Api, populated: dict[str, Any], version: int) -> Crawl:
    crawler = Crawler(api, version, {"task_id": [populated["task"]]})
    return crawler.read(get_templates(client.app, version))


# ---- what the catalog holds: the count each list must reach ----------------------------------


def _count(ctx: Context, table: Any, *where: Any) -> int:
    with ctx.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


Truth = Callable[[Context, dict[str, str]], int]
CATALOG: dict[str, Truth] = {
    "/Organizations": lambda ctx, _: _count(ctx, OrganizationRow),
    "/Organizations/{org_id}/Users": lambda ctx, p: len(
        catalog.organization_users(ctx, p["org_id"])
    ),
    "/Organizations/{org_id}/Jobs": lambda ctx, p: _count(
        ctx, Job, Job.organization_id == p["org_id"]
    ),
    "/Jobs": lambda ctx, _: _count(ctx, Job),
    "/JobSessions": lambda ctx, _: _count(ctx, JobSession),
    "/Jobs/{job_id}/JobSessions": lambda ctx, p: _count(  # its own: not its copy job's
        ctx, JobSession, JobSession.job_id == p["job_id"], runs.BACKUP_RUNS
    ),
    "/CopyJobs": lambda ctx, _: _count(ctx, CopyJob),
    "/JobSessions/{session_id}/LogItems": lambda ctx, p: _count(
        ctx, LogItem, LogItem.session_id == p["session_id"]
    ),
    "/RestorePoints": lambda ctx, _: _count(ctx, RestorePoint),
    "/Jobs/{job_id}/RestorePoints": lambda ctx, p: _count(
        ctx, RestorePoint, RestorePoint.job_id == p["job_id"]
    ),
    "/Proxies": lambda ctx, _: _count(ctx, Proxy),
    "/ProxyPools": lambda ctx, _: _count(ctx, ProxyPool),
    "/ProxyPools/{pool_id}/proxies": lambda ctx, p: _count(
        ctx, Proxy, Proxy.pool_id == p["pool_id"]
    ),
    "/BackupRepositories": lambda ctx, _: _count(ctx, Repository),
    "/RestoreSessions": lambda ctx, _: _count(ctx, RestoreSession),
    "/LicensedUsers": lambda ctx, _: len(licensing.licensed_users(ctx)),
    "/RbacRoles": lambda ctx, _: _count(ctx, RbacRole),
    "/Organizations/{org_id}/usedRepositories": lambda ctx, p: len(
        _targets_and_holders(ctx, p["org_id"])
    ),
}


def _targets_and_holders(ctx: Context, org_id: str) -> set[str]:
    """The repositories an organization's jobs write to or that hold its restore points."""
    with ctx.db.read() as s:
        targets = s.scalars(select(Job.repository_id).where(Job.organization_id == org_id))
        holders = s.scalars(
            select(RestorePoint.repository_id).where(RestorePoint.organization_id == org_id)
        )
        return {*targets, *holders}


def _params(template: str, path: str) -> dict[str, str]:
    names = re.findall(r"\{([^}]+)\}", template)
    pattern = re.sub(r"\\\{[^}]+\\\}", "([^/?]+)", re.escape(template))
    match = re.match(pattern, path)
    assert match is not None, (template, path)
    return dict(zip(names, match.groups(), strict=True))


def _version_less(template: str) -> str:
    return re.sub(r"^/v\d+", "", template)


# ---- the tests --------------------------------------------------------------------------------


def test_every_served_get_answers_and_loses_no_item(
    client: TestClient, api: Api, ctx: Context, populated: dict[str, Any]
) -> None:
    for version in ALL_VERSIONS:
        _check_every_get(client, api, ctx, populated, version)


def _check_every_get(
    client: TestClient, api: Api, ctx: Context, populated: dict[str, Any], version: int
) -> None:
    read = crawl(client, api, populated, version)
    failures = [f"{r.path}: {r.status} {r.body[:200]!r}" for r in read.responses if r.status != 200]
    assert not failures, "\n".join(failures)
    # a Local organization has no groups, sites or teams to reach: test_org_contract's
    reachable = {
        t for t in get_templates(client.app, version) if _version_less(t) not in OFFICE365_ONLY_GETS
    }
    assert {r.template for r in read.responses} == reachable

    if version in SPEC_VERSIONS:
        for response in read.responses:
            if spec(version).match("GET", response.path) is not None:
                spec(version).check_response(
                    "GET", response.path, 200, response.content_type, response.body
                )

    counted = set()
    for template, path, items in read.lists():
        ids = [item["id"] for item in items if isinstance(item, dict) and "id" in item]
        assert len(ids) == len(set(ids)), f"{path} lists an item twice: {ids}"
        first = next(r.json for r in read.responses if r.path == path)
        if isinstance(first, dict) and "totalCount" in first:
            assert first["totalCount"] == len(items), f"{path}: pages hold {len(items)}"
        truth = CATALOG.get(_version_less(template))
        if truth is not None:
            expected = truth(ctx, _params(template, path))
            assert len(items) == expected, f"{path}: {len(items)} listed, catalog has {expected}"
            counted.add(_version_less(template))
    assert {"/Organizations", "/Jobs", "/RestorePoints", "/RestoreSessions"} <= counted


# Nulls that are Keepstone's true answer: (collection, property of an item) -> why. A collection
# is the route without its last parameter, so a list and its entities share their entries.
KNOWN_UNKNOWN: dict[tuple[str, str], str] = {
    ("/License", "/licenseExpires"): "Keepstone's licence never expires (the spec's null)",
    ("/License", "/gracePeriodExpires"): "no expiry, so no grace period after one",
    ("/License", "/expirationDate"): "v6: Keepstone's licence never expires",
    ("/License", "/supportExpirationDate"): "v6: there is no support contract to expire",
    ("/BackupRepositories", "/encryptionKeyId"): "an unencrypted repository has no key",
    **{
        (collection, f"/{reported}"): "v8: what a proxy reports of itself (its heartbeat "
        "writes it to its row); none yet from one that has not registered or reported"
        for collection in ("/Proxies", "/ProxyPools/{pool_id}/proxies")
        for reported in ("version", "cpuUsagePercent", "memoryUsagePercent")
    },
    ("/RestoreSessions", "/endTime"): "a restore session still open has not ended",
    (
        "/RestoreSessions/{session_id}/Organization/Mailboxes/{owner_id}/Folders",
        "/parentId",
    ): "a top-level folder has no parent",
    (
        "/RestoreSessions/{session_id}/Organization/OneDrives/{owner_id}/Folders",
        "/parentId",
    ): "a top-level folder has no parent",
    ("/Organizations/{org_id}/SyncState", "/lastSyncState"): "v8: a Local organization never syncs",
    ("/Organizations/{org_id}/SyncState", "/lastSyncTime"): "v7: a Local organization never syncs",
    ("/Organizations/{org_id}/SyncState", "/error"): "v7: no sync, so no sync error",
    ("/Organizations/{org_id}/usedRepositories", "/protectedObjectsCount"): "v8: the vendor "
    "counts the protected objects of object storage repositories; Keepstone keeps no count of "
    "the users each repository holds",
}


def _null_key(template: str, pointer: str) -> tuple[str, str]:
    collection = re.sub(r"/\{[^}]+\}$", "", _version_less(template))
    return collection, pointer.removeprefix("/results").removeprefix("/[]")


def test_no_null_where_keepstone_knows_the_value(
    client: TestClient, api: Api, populated: dict[str, Any]
) -> None:
    found = {
        _null_key(response.template, pointer)
        for version in SPEC_VERSIONS
        for response in crawl(client, api, populated, version).responses
        if response.json is not None
        for pointer in null_fields(response.json)
    }
    unexplained = sorted(found - set(KNOWN_UNKNOWN))
    assert not unexplained, "null where Keepstone knows the value:\n" + "\n".join(
        f"  {route} {pointer}" for route, pointer in unexplained
    )


def test_v2_lists_have_the_v2_shapes(api: Api, populated: dict[str, Any]) -> None:
    """v2 answers restore sessions, and a restore session's mailboxes, OneDrives and folders,
    as pages; its other lists as bare arrays (see PAGED_SINCE in api/vb365/versions.py for the
    vendor's pages that say so)."""
    sessions = api.get("/v2/RestoreSessions").json()
    assert {"offset", "limit", "results"} <= set(sessions) and len(sessions["results"]) == 4
    session = next(s for s in sessions["results"] if s["type"] == "Vex")["id"]
    base = f"/v2/RestoreSessions/{session}/Organization/Mailboxes"
    mailboxes = api.get(base).json()
    assert {"offset", "limit", "results"} <= set(mailboxes)
    folders = api.get(f"{base}/{mailboxes['results'][0]['id']}/Folders").json()
    assert {"offset", "limit", "results"} <= set(folders)
    for bare in ("/v2/Jobs", "/v2/Organizations", "/v2/Proxies", "/v2/BackupRepositories"):
        assert isinstance(api.get(bare).json(), list), bare
    org = populated["orgs"]["globex"]["id"]
    users = api.get(f"/v2/Organizations/{org}/Users").json()
    assert isinstance(users, list) and len(users) == 3
    one = api.get(f"/v3/Organizations/{org}/Users/{users[0]['id']}")  # a v3 resource
    assert one.status_code == 200 and one.json()["name"] == users[0]["name"]
    assert api.get(f"/v2/Organizations/{org}/LicensingInformation").json() == {
        "licensedUsers": 3,
        "newUsers": 0,
    }
    for version in (2, 5, 8):  # a page of restore sessions reads to its end in every version
        _reads_to_its_end(api, version)
    # the archived references' pages: a session's events from v2, licensed users from v3 (a
    # v3/v4 self-service portal reads their `results`)
    events = api.get(f"/v2/RestoreSessions/{session}/Events").json()
    assert {"offset", "limit", "results"} <= set(events)
    stranger = api.get(f"/v2/RestoreSessions/{session}/Events/{populated['task']}")
    assert stranger.status_code == 404 and "has no event" in stranger.json()["message"]
    licensed = api.get(f"/v3/LicensedUsers?organizationId={org}").json()
    assert len(licensed["results"]) == 3
    assert {u["backedUpOrganizationId"] for u in licensed["results"]} == {org}
    explored = api.get(f"/v2/RestoreSessions/{session}/Organization").json()
    assert explored["type"] == "Local" and explored["name"] in USERS
    assert api.get(f"/v4/RestoreSessions/{session}/Organization").json()["type"] == "OnPremises"


def _reads_to_its_end(api: Api, version: int) -> None:
    first = api.get(f"/v{version}/RestoreSessions?limit=3").json()
    assert (first["offset"], first["limit"], first["totalCount"]) == (0, 3, 4)
    rest = api.get(first["_links"]["next"]["href"].removeprefix(BASE_URL)).json()
    ids = [s["id"] for s in first["results"] + rest["results"]]
    assert len(ids) == len(set(ids)) == 4 and "next" not in rest["_links"]
