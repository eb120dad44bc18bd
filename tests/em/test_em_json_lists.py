"""Every Enterprise Manager list answered as JSON keeps all its items, typed as RestAPI.xsd says.

A catalog with two jobs on two repositories, two backup runs (two sessions, two restore points)
and two tasks; each list is read as XML and as JSON, in its reference and entity formats, and
the JSON must hold as many items as the XML, under the vendor's names, with every value of the
XML and numbers and booleans typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from keepstone.api.em.json_form import forms
from keepstone.api.em.xsd import schema_document
from keepstone.proxy.worker import ProxyWorker
from tests.conftest import Api
from tests.em.conftest import Em, N
from tests.em.json_leaves import json_leaves, xml_leaves

JSON = {"Accept": "application/json"}


@dataclass(frozen=True)
class Catalog:
    jobs: list[dict[str, Any]]
    repositories: list[dict[str, Any]]


@pytest.fixture
def catalog(
    em: Em, api: Api, org: dict[str, Any], job: dict[str, Any], tmp_path: Path, worker: ProxyWorker
) -> Catalog:
    second = api.post("/v2/BackupRepositories", {"name": "second", "path": str(tmp_path / "r2")})
    assert second.status_code == 200, second.text
    other = api.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        {
            "name": "other_job",
            "backupType": "EntireOrganization",
            "repositoryId": second.json()["id"],
        },
    )
    assert other.status_code == 200, other.text
    both = [job, other.json()]
    for each in both:  # started through EM, so the logon session has two tasks
        em.wait_for(em.xml("POST", f"/api/jobs/{each['id']}?action=start").get("Href") or "")
        assert worker.run_one()
    return Catalog(both, api.get("/v2/BackupRepositories").json())


def both_forms(em: Em, path: str) -> tuple[etree._Element, Any]:
    """The XML and the JSON answer of one GET, after checking the JSON lost no value."""
    document = em.xml("GET", path)
    response = em.request("GET", path, headers=JSON)
    assert response.status_code == 200, response.text
    as_json = response.json()
    # Counts, not values: free space is read live from the disk and may change in between
    # (test_json_form checks the values themselves on fixed documents).
    assert json_leaves(as_json).total() == xml_leaves(document).total(), path
    return document, as_json


def items(document: etree._Element, path: str) -> list[etree._Element]:
    return document.findall(path, N)


def check_jobs(em: Em, catalog: Catalog) -> None:
    refs, as_json = both_forms(em, "/api/jobs")
    assert [r["Name"] for r in as_json["Refs"]] == [r.get("Name") for r in items(refs, "e:Ref")]
    assert len(as_json["Refs"]) == len(catalog.jobs) == 2
    entities, as_json = both_forms(em, "/api/jobs?format=Entity")
    assert len(as_json["Jobs"]) == len(items(entities, "e:Job")) == 2
    assert all(isinstance(j["ScheduleEnabled"], bool) for j in as_json["Jobs"])
    assert all(isinstance(j["Links"], list) and j["Links"] for j in as_json["Jobs"])


def check_backup_sessions(em: Em, catalog: Catalog) -> None:
    _, as_json = both_forms(em, "/api/backupSessions")
    assert len(as_json["Refs"]) == 2
    _, as_json = both_forms(em, "/api/backupSessions?format=Entity")
    sessions = as_json["BackupJobSessions"]
    assert sorted(s["JobName"] for s in sessions) == ["other_job", "test_job"]
    assert all(s["IsRetry"] is False for s in sessions)
    for each in catalog.jobs:
        _, per_job = both_forms(em, f"/api/jobs/{each['id']}/backupSessions?format=Entity")
        assert [s["JobName"] for s in per_job["BackupJobSessions"]] == [each["name"]]


def check_repositories(em: Em, catalog: Catalog) -> None:
    _, as_json = both_forms(em, "/api/repositories")
    assert len(as_json["Refs"]) == len(catalog.repositories) == 2
    _, as_json = both_forms(em, "/api/repositories?format=Entity")
    capacities = {r["Name"]: r["Capacity"] for r in as_json["Repositories"]}
    assert capacities == {r["name"]: r["capacity"] for r in catalog.repositories}
    assert all(isinstance(r["FreeSpace"], int) for r in as_json["Repositories"])


def check_restore_points(em: Em, catalog: Catalog) -> None:
    _, as_json = both_forms(em, "/api/restorePoints")
    assert len(as_json["Refs"]) == 2
    _, as_json = both_forms(em, "/api/restorePoints?format=Entity")
    assert len(as_json["RestorePoints"]) == 2
    assert all(p["BackupDateUTC"].endswith("Z") for p in as_json["RestorePoints"])


def check_tasks(em: Em, catalog: Catalog) -> None:
    _, as_json = both_forms(em, "/api/tasks")
    assert [t["Operation"] for t in as_json["Tasks"]] == ["StartJob", "StartJob"]
    assert all(t["Result"]["Success"] is True for t in as_json["Tasks"])


def check_queries(em: Em, catalog: Catalog) -> None:
    # The vendor nests query results one level deeper than lists: Refs.Refs[] and
    # Entities.<List>.<List>[] (issue 11; QueryResultType and EntitiesType in RestAPI.xsd).
    for kind, plural in (
        ("Job", "Jobs"),
        ("BackupJobSession", "BackupJobSessions"),
        ("Repository", "Repositories"),
        ("RestorePoint", "RestorePoints"),
    ):
        _, refs = both_forms(em, f"/api/query?type={kind}")
        assert len(refs["Refs"]["Refs"]) == 2, kind
        assert refs["PagingInfo"]["PagesCount"] == 1
        _, entities = both_forms(em, f"/api/query?type={kind}&format=Entities")
        assert len(entities["Entities"][plural][plural]) == 2, kind
    _, one_page = both_forms(em, "/api/query?type=Job&format=Entities&pageSize=1")
    assert len(one_page["Entities"]["Jobs"]["Jobs"]) == 1  # an array even for one item
    assert one_page["PagingInfo"]["PageSize"] == 1


def check_repository_report(em: Em, catalog: Catalog) -> None:
    _, as_json = both_forms(em, "/api/reports/summary/repository")
    periods = as_json["Periods"]
    assert sorted(p["Name"] for p in periods) == sorted(r["name"] for r in catalog.repositories)
    assert all(isinstance(p[k], int) for p in periods for k in ("Capacity", "BackupSize"))


def check_backup_servers(em: Em, catalog: Catalog) -> None:
    # Keepstone is one backup server: the list has one item, still an array.
    _, overview = both_forms(em, "/api/reports/summary/overview")
    assert overview["BackupServers"] == 1 and overview["RepositoryServers"] == 2
    document, as_json = both_forms(em, "/api/backupServers")
    listed = as_json.get("Refs", as_json.get("BackupServers"))
    assert isinstance(listed, list) and len(listed) == len(document) == 1
    _, queried = both_forms(em, "/api/query?type=BackupServer&format=Entities")
    [server] = queried["Entities"]["BackupServers"]["BackupServers"]
    assert isinstance(server["Port"], int)


CHECKS: list[Callable[[Em, Catalog], None]] = [
    check_jobs,
    check_backup_sessions,
    check_repositories,
    check_restore_points,
    check_tasks,
    check_queries,
    check_repository_report,
    check_backup_servers,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__[len("check_") :])
def test_json_lists_keep_every_item(
    em: Em, catalog: Catalog, check: Callable[[Em, Catalog], None]
) -> None:
    check(em, catalog)


def test_the_json_form_is_read_from_the_schema_once(em: Em, catalog: Catalog) -> None:
    forms.cache_clear()
    for path in ("/api/jobs?format=Entity", "/api/repositories", "/api/tasks") * 3:
        assert em.request("GET", path, headers=JSON).status_code == 200
    # seven answers made in JSON (the jobs' entities are made once, then kept by their jobs)
    assert forms.cache_info().misses == 1 and forms.cache_info().hits >= 6
    assert schema_document.cache_info().misses == 1
