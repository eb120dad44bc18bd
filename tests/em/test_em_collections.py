"""Item 3 of issue 11: every collection a read-only client may GET answers, in the vendor's
shape, filled from Keepstone's objects or empty where it has none."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import event

from keepstone.api.em.directory import SERVED_ELSEWHERE, collections
from keepstone.api.em.empty_collections import entity_list_root
from keepstone.api.em.hypermedia import SERVER_ID
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import auth
from keepstone.services.context import Context
from tests.conftest import READER_PASSWORD, Api
from tests.em.conftest import Em, N, basic, outside_schema

READABLE = [c for c in collections() if c.path not in SERVED_ELSEWHERE]


def root(document: etree._Element) -> str:
    return etree.QName(document).localname


@pytest.mark.parametrize("collection", READABLE, ids=lambda c: c.path)
def test_every_collection_answers_references_and_entities(em: Em, collection: Any) -> None:
    refs = em.xml("GET", f"/api/{collection.path}")
    assert root(refs) == "EntityReferences"
    entities = em.xml("GET", f"/api/{collection.path}?format=Entity")
    assert root(entities) == entity_list_root(collection.item)
    as_json = em.request("GET", f"/api/{collection.path}", headers={"Accept": "application/json"})
    assert as_json.status_code == 200, as_json.text


def test_list_roots_are_the_schemas_or_the_vendors_names(em: Em) -> None:
    for path, expected in (
        ("replicaSessions", "ReplicaJobSessions"),
        ("replicaTaskSessions", "ReplicaTaskSessions"),
        ("catalog/vms", "CatalogVms"),
        ("cloud/publicIpAddresses", "CloudPublicIpAddresses"),
        ("vmReplicaPoints", "VmReplicaPoints"),
    ):
        document = em.xml("GET", f"/api/{path}?format=Entity")
        assert root(document) == expected and not outside_schema(document), path
    # Newer than the shipped schema: the vendor's plural, outside it.
    for path, expected in (
        ("agents/discoveredComputers", "DiscoveredComputers"),
        ("nas/jobs", "NasJobs"),
        ("nas/backupSessions", "BackupJobSessions"),
        ("externalRepositories", "ExternalRepositories"),
    ):
        assert root(em.xml("GET", f"/api/{path}?format=Entity")) == expected, path
    assert root(em.xml("GET", "/api/agents")) == "Agents"
    assert root(em.xml("GET", "/api/nas")) == "NASService"


def test_lists_without_a_format_are_references(em: Em, job: dict[str, Any]) -> None:
    for path in ("backupServers", "jobs", "repositories", "backupSessions", "restorePoints"):
        assert root(em.xml("GET", f"/api/{path}")) == "EntityReferences", path
    server = f"/api/backupServers/{SERVER_ID}"
    [job_ref] = em.xml("GET", f"{server}/jobs").findall("e:Ref", N)
    assert job_ref.get("UID") == f"urn:veeam:Job:{job['id']}"
    assert len(em.xml("GET", f"{server}/repositories").findall("e:Ref", N)) == 1
    assert len(em.xml("GET", f"{server}/jobs?format=Entity").findall("e:Job", N)) == 1
    assert root(em.xml("GET", f"{server}/managedServers?format=Entity")) == "ManagedServers"
    assert em.request("GET", "/api/backupServers/other/jobs").status_code == 404
    assert root(em.xml("GET", f"/api/jobs/{job['id']}/includes")) == "ObjectsInJob"


def test_logon_sessions_are_the_callers_or_everyones_for_an_administrator(
    em: Em, client: TestClient, ctx: Context
) -> None:
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    logon = client.post("/api/sessionMngr/", headers=basic("reader", READER_PASSWORD))
    client.cookies.clear()  # the clients share a cookie jar; each sends its own header
    reader = Em(client, logon.headers["X-RestSvcSessionId"])
    mine = reader.xml("GET", "/api/logonSessions").findall("e:LogonSession", N)
    assert [s.findtext("e:UserName", namespaces=N) for s in mine] == ["reader"]
    assert (
        mine[0].findtext("e:SessionId", namespaces=N) == logon.headers["location"].rsplit("/")[-1]
    )
    everyone = em.xml("GET", "/api/logonSessions").findall("e:LogonSession", N)
    assert sorted(s.findtext("e:UserName", namespaces=N) or "" for s in everyone) == [
        "admin",
        "reader",
    ]
    reader.request("DELETE", f"/api/logonSessions/{mine[0].findtext('e:SessionId', namespaces=N)}")
    assert len(em.xml("GET", "/api/logonSessions").findall("e:LogonSession", N)) == 1


def test_the_reports_index(em: Em) -> None:
    # reports_summary.html: one Down ReportFrame link per report, named
    report = em.xml("GET", "/api/reports/summary")
    assert root(report) == "SummaryReport"
    assert [link.get("Name") for link in report.findall("e:Links/e:Link", N)] == [
        "Overview",
        "VmsOverview",
        "JobStatistics",
        "ProcessedVms",
        "Repositories",
    ]


def test_backups_are_the_jobs_with_restore_points(
    em: Em, api: Api, job: dict[str, Any], repo: dict[str, Any], worker: ProxyWorker
) -> None:
    assert em.xml("GET", "/api/backups").findall("e:Ref", N) == []  # no run, no backup yet
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    worker.run_one()
    [backup] = em.xml("GET", "/api/backups?format=Entity").findall("e:Backup", N)
    assert backup.get("UID") == f"urn:veeam:Backup:{job['id']}"
    assert backup.get("Name") == "test_job"
    stored = backup.find("e:Ref", N)
    assert stored is not None and stored.get("UID") == f"urn:veeam:Repository:{repo['id']}"
    points = em.xml("GET", f"/api/backups/{job['id']}/restorePoints").findall("e:Ref", N)
    assert len(points) == len(em.xml("GET", "/api/restorePoints").findall("e:Ref", N)) == 1
    in_repository = em.xml("GET", f"/api/repositories/{repo['id']}/backups").findall("e:Ref", N)
    assert [r.get("UID") for r in in_repository] == [backup.get("UID")]
    assert em.request("GET", "/api/backups/nope").status_code == 404


def count_statements(ctx: Context, em: Em, path: str) -> int:
    """The statements of one request of ``path`` by a logon session the server remembers (the
    request before it made it remember: see the trust period of services/credential_cache.py)."""
    engines = {ctx.db._reader, ctx.db._writer}  # the engines a request's reads run on
    seen: list[str] = []
    assert em.request("GET", path).status_code == 200

    def record(*args: Any) -> None:
        seen.append(args[2])

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        assert em.request("GET", path).status_code == 200
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    return len(seen)


def test_listing_backups_and_restore_points_costs_the_same_for_n_and_4n_jobs(
    em: Em, api: Api, org: dict[str, Any], repo: dict[str, Any], worker: ProxyWorker, ctx: Context
) -> None:

    def add_runs(count: int) -> None:
        for number in range(count):
            made = api.post(
                f"/v2/Organizations/{org['id']}/Jobs",
                {"name": f"job{number}-{count}", "repositoryId": repo["id"]},
            ).json()
            api.post(f"/v2/Jobs/{made['id']}/Action", {"start": None})
            worker.run_one()

    paths = ("/api/backups?format=Entity", "/api/restorePoints?format=Entity")
    add_runs(2)
    few = [count_statements(ctx, em, p) for p in paths]
    assert all(few)
    add_runs(6)
    assert len(em.xml("GET", "/api/backups").findall("e:Ref", N)) == 8
    assert [count_statements(ctx, em, p) for p in paths] == few
