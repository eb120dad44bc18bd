"""Item 2 of issue 11: the query service's entry point, its types and its shapes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from lxml import etree

from keepstone.api.em.query_types import QUERY_TYPE_NAMES
from keepstone.proxy.worker import ProxyWorker
from tests.conftest import Api
from tests.em.conftest import Em, N


def local(element: etree._Element) -> str:
    return etree.QName(element).localname


def test_query_svc_lists_the_vendors_queries(em: Em) -> None:
    # querysvc.html: Up to the caller's logon session, then one Down link per query type
    service = em.xml("GET", "/api/querySvc")
    assert (local(service), service.get("Type")) == ("QuerySvc", "QueryService")
    links = service.findall("e:Links/e:Link", N)
    assert (links[0].get("Rel"), links[0].get("Type")) == ("Up", "LogonSession")
    assert [link.get("Type") for link in links[1:6]] == [
        "VmRestorePointList",
        "VAppRestorePointList",
        "VmReplicaPointList",
        "TaskList",
        "JobList",
    ]
    assert len(links) == 40
    for link in links[1:]:
        parts = urlsplit(link.get("Href", ""))
        assert em.request("GET", f"{parts.path}?{parts.query}").status_code == 200, parts.query


@pytest.mark.parametrize("kind", QUERY_TYPE_NAMES)
def test_every_documented_type_answers_in_both_formats(em: Em, kind: str) -> None:
    for format in ("Refs", "Entities"):
        result = em.xml("GET", f"/api/query?type={kind}&format={format}")
        assert local(result) == "QueryResult"
        assert result.find("e:PagingInfo", N) is not None


def test_an_unknown_type_is_a_400_naming_type(em: Em) -> None:
    answer = em.request("GET", "/api/query?type=NoSuchThing")
    assert answer.status_code == 400 and "type" in answer.text


def test_entities_nest_as_the_schema_nests_them(
    em: Em, api: Api, job: dict[str, Any], worker: ProxyWorker
) -> None:
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    worker.run_one()
    for kind, path in (
        ("BackupJobSession", "e:Entities/e:BackupJobSessions/e:BackupJobSession"),
        ("Repository", "e:Entities/e:Repositories/e:Repository"),
        ("BackupServer", "e:Entities/e:BackupServers/e:BackupServer"),
        ("RestorePoint", "e:Entities/e:RestorePoints/e:RestorePoint"),
        ("Backup", "e:Entities/e:Backups/e:Backup"),
        ("Job", "e:Entities/e:Jobs/e:Job"),
    ):
        result = em.xml("GET", f"/api/query?type={kind}&format=Entities")
        assert len(result.findall(path, N)) == 1, kind
        [ref] = em.xml("GET", f"/api/query?type={kind}").findall("e:Refs/e:Ref", N)
        assert ref.get("Type") == f"{kind}Reference"
    # A type Keepstone has none of: the empty list the schema names (even its odd names).
    for kind, holder in (
        ("ReplicaJobSession", "ReplicaJobSessions"),
        ("VmRestorePoint", "VmRestorePoints"),
        ("Passwords", "Passwords"),
        ("vAppRestorePoint", "VAppRestorePoints"),
    ):
        result = em.xml("GET", f"/api/query?type={kind}&format=Entities")
        [listing] = result.findall("e:Entities/*", N)
        assert (local(listing), len(listing)) == (holder, 0), kind
        assert em.xml("GET", f"/api/query?type={kind}").findall("e:Refs/e:Ref", N) == []


def test_tasks_are_resources(em: Em, job: dict[str, Any]) -> None:
    em.wait_for(
        em.xml("POST", f"/api/jobs/{job['id']}?action=toggleScheduleEnabled").get("Href") or ""
    )
    result = em.xml("GET", "/api/query?type=Task&filter=Operation==UpdateJob")
    [task] = result.findall("e:Resources/e:Tasks/e:Task", N)
    assert task.findtext("e:State", namespaces=N) == "Finished"


def test_a_filter_date_without_a_zone_is_utc(
    em: Em, api: Api, job: dict[str, Any], worker: ProxyWorker
) -> None:
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    worker.run_one()
    [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    created = datetime.fromisoformat(session["creationTime"].replace("Z", "+00:00"))

    def matches(operator: str, moment: datetime) -> int:
        wanted = moment.strftime("%Y-%m-%dT%H:%M:%S")  # no zone, as clients write it
        result = em.xml(
            "GET",
            "/api/query",
            params={"type": "BackupJobSession", "filter": f"CreationTime{operator}{wanted}"},
        )
        return len(result.findall("e:Refs/e:Ref", N))

    second = timedelta(seconds=1)
    assert matches(">=", created - second) == 1
    assert matches(">=", created + second) == 0
    assert matches("<=", created + second) == 1
    assert matches("<", created - second) == 0


def test_paging_links_keep_a_filter_with_spaces_quotes_and_ampersands(
    em: Em, api: Api, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    for name in ("a & b one", "a & b two", "other"):
        api.post(f"/v2/Organizations/{org['id']}/Jobs", {"name": name, "repositoryId": repo["id"]})
    params = {"type": "Job", "filter": 'name>="a & b";name<"a & c"', "sortAsc": "name"}
    first = em.xml("GET", "/api/query", params=params | {"pageSize": "1"})
    assert [r.get("Name") for r in first.findall("e:Refs/e:Ref", N)] == ["a & b one"]
    [following] = [
        link
        for link in first.findall("e:PagingInfo/e:Links/e:Link", N)
        if link.get("Rel") == "Next"
    ]
    parts = urlsplit(following.get("Href", ""))
    second = em.xml("GET", f"{parts.path}?{parts.query}")
    assert [r.get("Name") for r in second.findall("e:Refs/e:Ref", N)] == ["a & b two"]
