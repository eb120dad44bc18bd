"""The Enterprise Manager dialect against the vendor's reference, on a catalog with several of
everything (``tests/contract/em_catalog.py``: three organizations, four jobs, two repositories,
runs made by the real engine and one failed run).

Every GET collection of the resource list (``reference/em-rest-resources.tsv``) that the
generated table marks served or empty is read in XML and JSON, in its reference and
``format=Entity`` forms, and so is every entity and list reached from them by ``Href`` and
``Up``/``Down``/``Alternate`` links. Each XML answer whose root RestAPI.xsd declares must be valid;
each JSON answer must be what ``tests/contract/em_json_check.py`` (``xmlschema`` reading the XSD,
not the app's converter) makes of the XML answer. Counts must equal the catalog's, and the query
service must filter, sort and page consistently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from keepstone.api.em.xml import NS
from tests.conftest import ADMIN_PASSWORD, START
from tests.contract import em_json_check
from tests.contract.em_catalog import FAILED_JOB, Catalog, made_catalog
from tests.contract.em_compat_table import EMPTY, SERVED, Resource, app_operations, rows
from tests.em.conftest import basic

XML, JSON = "application/xml", "application/json"
N = {"e": NS}
# Link relations a read-only client follows with GET (the others name actions).
FOLLOWED = {"Up", "Down", "Alternate"}


class Reader:
    """A logged-on EM client that collects every answer that breaks the contract."""

    def __init__(self, client: TestClient) -> None:
        logon = client.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
        assert logon.status_code == 201, logon.text
        self.client = client
        self.token = logon.headers["X-RestSvcSessionId"]
        self.logon_href = logon.headers["Location"]
        self.problems: list[str] = []

    def get(self, url: str, accept: str = XML) -> Any:
        path = _path(url)
        headers = {"X-RestSvcSessionId": self.token, "Accept": accept}
        return self.client.get(path, headers=headers)

    def xml(self, url: str) -> etree._Element | None:
        """The XML answer, checked against the schema; None (and a problem) unless it is 200."""
        response = self.get(url)
        if response.status_code != 200:
            self.problems.append(f"GET {_path(url)}: {response.status_code} {response.text:.200}")
            return None
        document = etree.fromstring(response.content)
        if em_json_check.declared(document):
            try:
                em_json_check.validate(document)
            except Exception as invalid:  # xmlschema's validation errors
                self.problems.append(f"GET {_path(url)}: invalid against the XSD: {invalid}")
        return document

    def json_matches(self, url: str, document: etree._Element) -> Any:
        """The JSON answer, checked against the XSD's reading of the XML answer."""
        response = self.get(url, JSON)
        if response.status_code != 200:
            self.problems.append(f"GET {_path(url)} (JSON): {response.status_code}")
            return None
        body = response.json()
        if em_json_check.declared(document):
            expected = em_json_check.expected_json(document)
            for difference in em_json_check.differences(expected, body):
                self.problems.append(f"GET {_path(url)} (JSON): {difference}")
        return body

    def both(self, url: str) -> etree._Element | None:
        document = self.xml(url)
        if document is not None:
            self.json_matches(url, document)
        return document


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Catalog]]:
    """One catalog for the module's tests, which only read it."""
    with made_catalog(tmp_path_factory.mktemp("em-contract"), START) as made:
        yield made


@pytest.fixture
def catalog(made: tuple[TestClient, Catalog]) -> Catalog:
    return made[1]


@pytest.fixture
def reader(made: tuple[TestClient, Catalog]) -> Reader:
    return Reader(made[0])


def _documented(statuses: tuple[str, ...]) -> list[tuple[Resource, str]]:
    return [
        (row.resource, row.status)
        for row in rows(app_operations())
        if row.status in statuses and "GET" in row.resource.methods
    ]


def _ids(reader: Reader, catalog: Catalog) -> dict[str, str]:
    """An id to put in each kind of ``{ID}`` the catalog has objects of."""
    server = reader.xml("/api/backupServers")
    assert server is not None
    [ref] = [child for child in server if isinstance(child.tag, str)][:1]
    worked = next(session for session, users in catalog.users_per_session.items() if users)
    return {
        "backupServers": (ref.get("UID") or "").rsplit(":", 1)[-1],
        "jobs": catalog.jobs[0]["id"],
        "backupSessions": worked,
        "restorePoints": catalog.restore_points[0]["id"],
        "repositories": catalog.repositories[0]["id"],
        "logonSessions": _path(reader.logon_href).rstrip("/").rsplit("/", 1)[-1],
    }


def _url(resource: Resource, ids: dict[str, str]) -> str | None:
    """``/api`` + the resource's path with its ``{ID}`` filled in, or None when there is no
    object of that kind to address."""
    parts = resource.path.strip("/").split("/")
    for index, part in enumerate(parts):
        if part.startswith("{"):
            owner = parts[index - 1] if index else ""
            if owner not in ids:
                return None
            parts[index] = ids[owner]
    return "/api/" + "/".join(parts) if parts != [""] else "/api/"


def _items(document: etree._Element) -> list[etree._Element]:
    """The listed objects of a list document (its children but ``Links``)."""
    return [c for c in document if isinstance(c.tag, str) and etree.QName(c).localname != "Links"]


def test_every_documented_collection_answers_valid_xml_and_the_xsds_json(
    reader: Reader, catalog: Catalog
) -> None:
    ids = _ids(reader, catalog)
    read = 0
    for resource, status in _documented((SERVED, EMPTY)):
        url = _url(resource, ids)
        if url is None or resource.path.endswith("}") or resource.path == "/query":
            continue  # an entity (reached below, from the lists) or the query service
        forms = [("", resource.root)]
        if resource.entity_root:
            forms.append(("?format=Entity", resource.entity_root))
        for query, root in forms:
            document = reader.both(url + query)
            read += 1
            if document is None:
                continue
            got = etree.QName(document).localname
            # a list answers EntityReferences without a format (issue 11); an entity list's
            # root is checked where the resource's page shows it
            documented = root == "EntityReferences" or resource.source == "page"
            if documented and got != root:
                reader.problems.append(f"GET {url}{query}: root <{got}>, documented <{root}>")
            if status == EMPTY and _items(document):
                reader.problems.append(f"GET {url}{query}: marked empty, lists items")
    assert not reader.problems, "\n".join(reader.problems)
    assert read > 20


def test_every_entity_and_list_reached_by_links_answers(reader: Reader, catalog: Catalog) -> None:
    starts = [
        "/api/jobs",
        "/api/backupSessions",
        "/api/restorePoints",
        "/api/repositories",
        "/api/backupServers",
        "/api/backupTaskSessions",
    ]
    seen: set[str] = set()
    queue = [start + form for start in starts for form in ("", "?format=Entity")]
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        document = reader.both(url)
        if document is not None:
            queue.extend(path for path in map(_path, _followed(document)) if path not in seen)
    entities = [url for url in seen if re.fullmatch(r"/api/\w+/[^/?]+\?format=Entity", url)]
    assert len(entities) >= len(catalog.jobs) + len(catalog.sessions), sorted(seen)
    assert not reader.problems, "\n".join(reader.problems)


def _followed(document: etree._Element) -> Iterator[str]:
    """Every href a read-only client would GET from a document: listed objects' own ``Href``
    and their (and the document's) ``Up``/``Down``/``Alternate`` links."""
    for node in document.iter():
        if not isinstance(node.tag, str):
            continue
        href = node.get("Href")
        if href is None or "action=" in href:
            continue
        if etree.QName(node).localname == "Link":
            if node.get("Rel") in FOLLOWED:
                yield href
        elif node is not document:
            yield href


LISTS = {
    "/api/jobs": "jobs",
    "/api/backupSessions": "sessions",
    "/api/restorePoints": "restore_points",
    "/api/repositories": "repositories",
}


@pytest.mark.parametrize("form", ["", "?format=Entity"])
def test_no_item_is_lost(reader: Reader, catalog: Catalog, form: str) -> None:
    expected = {url: len(getattr(catalog, field)) for url, field in LISTS.items()}
    expected["/api/backupTaskSessions"] = catalog.task_sessions
    server = _ids(reader, catalog)["backupServers"]
    expected[f"/api/backupServers/{server}/jobs"] = len(catalog.jobs)
    expected[f"/api/backupServers/{server}/repositories"] = len(catalog.repositories)
    for session, users in catalog.users_per_session.items():
        expected[f"/api/backupSessions/{session}/taskSessions"] = len(users)
    for job, runs in catalog.sessions_per_job.items():
        expected[f"/api/jobs/{job}/backupSessions"] = runs
    for url, count in expected.items():
        document = reader.both(url + form)
        if document is None:
            continue
        if len(_items(document)) != count:
            reader.problems.append(f"GET {url}{form}: {len(_items(document))} items, not {count}")
        body = reader.get(url + form, JSON).json()
        if _json_items(body) != count:
            reader.problems.append(
                f"GET {url}{form} (JSON): {_json_items(body)} items, not {count}"
            )
    assert not reader.problems, "\n".join(reader.problems)


def _json_items(body: Any) -> int | None:
    """The length of a JSON list document's array (its one array property but ``Links``)."""
    arrays = [v for k, v in body.items() if k != "Links" and isinstance(v, list)]
    return len(arrays[0]) if len(arrays) == 1 else None


def test_a_backup_sessions_first_link_names_its_backup_server(
    reader: Reader, catalog: Catalog
) -> None:
    server = reader.xml("/api/backupServers?format=Entity")
    assert server is not None
    [entity] = _items(server)
    for session in catalog.sessions:
        url = f"/api/backupSessions/{session['id']}?format=Entity"
        document = reader.xml(url)
        assert document is not None, reader.problems
        first = document.find("e:Links/e:Link", N)
        assert first is not None, url
        assert (first.get("Rel"), first.get("Type")) == ("Up", "BackupServerReference"), url
        assert first.get("Name") == entity.get("Name") and first.get("Name"), url
        body = reader.get(url, JSON).json()
        assert body["Links"][0]["Name"] == entity.get("Name"), body["Links"]
        assert body["Links"][0]["Type"] == "BackupServerReference"


def test_the_failed_run_is_reported_failed(reader: Reader, catalog: Catalog) -> None:
    listed = reader.get("/api/backupSessions?format=Entity", JSON).json()
    sessions = listed.get("BackupJobSessions", [])
    failed = [s for s in sessions if s.get("Result") == "Failed"]
    assert [s["JobName"] for s in failed] == [FAILED_JOB], sessions
    assert all(isinstance(s["IsRetry"], bool) for s in sessions)


QUERY_TYPES: dict[str, Callable[[Catalog], int]] = {
    "Job": lambda c: len(c.jobs),
    "BackupJobSession": lambda c: len(c.sessions),
    "Repository": lambda c: len(c.repositories),
    "BackupServer": lambda c: 1,
    "RestorePoint": lambda c: len(c.restore_points),
    "BackupTaskSession": lambda c: c.task_sessions,
}


@pytest.mark.parametrize("kind", sorted(QUERY_TYPES))
@pytest.mark.parametrize("form", ["Refs", "Entities"])
def test_the_query_service_pages_every_type(
    reader: Reader, catalog: Catalog, kind: str, form: str
) -> None:
    total = QUERY_TYPES[kind](catalog)
    whole = reader.both(f"/api/query?type={kind}&format={form}&pageSize=1000")
    assert whole is not None, reader.problems
    everything = [item.get("UID") for item in _query_items(whole)]
    assert len(everything) == len(set(everything)) == total, everything
    pages = max(1, math.ceil(total / 2))
    paged: list[str | None] = []
    for page in range(1, pages + 1):
        document = reader.both(f"/api/query?type={kind}&format={form}&pageSize=2&page={page}")
        assert document is not None, reader.problems
        info = document.find("e:PagingInfo", N)
        assert info is not None
        assert (info.get("PageNum"), info.get("PagesCount")) == (str(page), str(pages))
        paged += [item.get("UID") for item in _query_items(document)]
    assert sorted(map(str, paged)) == sorted(map(str, everything))
    assert not reader.problems, "\n".join(reader.problems)


def _query_items(result: etree._Element) -> list[etree._Element]:
    """``Refs/Ref`` or ``Entities/<Plural>/<Entity>`` of a QueryResult."""
    found = result.findall("e:Refs/e:Ref", N)
    return found or result.findall("e:Entities/*/*", N)


def test_the_query_service_filters_by_a_time_without_zone_and_sorts(
    reader: Reader, catalog: Catalog
) -> None:
    created = sorted(s["creationTime"] for s in catalog.sessions)
    middle = created[len(created) // 2]
    url = (
        f"/api/query?type=BackupJobSession&format=Entities&filter=CreationTime>={_no_zone(middle)}"
        "&sortAsc=CreationTime"
    )
    document = reader.both(url)
    assert document is not None, reader.problems
    times = [item.findtext("e:CreationTimeUTC", namespaces=N) for item in _query_items(document)]
    assert times == [t for t in created if t >= middle], times
    assert not reader.problems, "\n".join(reader.problems)


# query type -> its creation time: the filter's name (vendor's query pages), the entity's element
TIMED = {
    "BackupJobSession": "CreationTimeUTC",
    "BackupTaskSession": "CreationTimeUTC",
    "RestorePoint": "BackupDateUTC",
}


@pytest.mark.parametrize("kind", sorted(TIMED))
def test_a_filtered_sorted_query_is_the_matching_part_of_the_whole(
    reader: Reader, kind: str
) -> None:
    def entities(query: str) -> list[tuple[str, str]]:
        document = reader.both(f"/api/query?type={kind}&format=Entities&pageSize=1000{query}")
        assert document is not None, reader.problems
        return [
            (item.get("UID") or "", item.findtext(f"e:{TIMED[kind]}", namespaces=N) or "")
            for item in _query_items(document)
        ]

    ascending = entities("&sortAsc=CreationTime")
    assert ascending, f"the query service lists no {kind}"
    assert [t for _, t in ascending] == sorted(t for _, t in ascending), ascending
    descending = entities("&sortDesc=CreationTime")
    assert [t for _, t in descending] == sorted((t for _, t in ascending), reverse=True)
    assert sorted(descending) == sorted(ascending)
    middle = ascending[len(ascending) // 2][1]
    since = entities(f"&filter=CreationTime>={_no_zone(middle)}&sortAsc=CreationTime")
    assert since == [(uid, t) for uid, t in ascending if _instant(t) >= _instant(middle)]
    assert not reader.problems, "\n".join(reader.problems)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _no_zone(text: str) -> str:
    """A UTC time as EM clients write it in a filter: no zone, whole seconds."""
    return _instant(text).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize("kind", ["ReplicaJobSession", "VmRestorePoint", "ReplicaTaskSession"])
def test_query_types_keepstone_has_no_objects_of_answer_empty(reader: Reader, kind: str) -> None:
    for form in ("Refs", "Entities"):
        document = reader.both(f"/api/query?type={kind}&format={form}")
        assert document is not None, reader.problems
        assert _query_items(document) == []
    assert not reader.problems, "\n".join(reader.problems)


def test_every_user_of_a_run_is_a_task_session(reader: Reader, catalog: Catalog) -> None:
    for session, users in catalog.users_per_session.items():
        document = reader.both(f"/api/backupSessions/{session}/taskSessions?format=Entity")
        assert document is not None, reader.problems
        listed = _items(document)
        names = sorted(item.get("VmDisplayName") or "" for item in listed)
        assert len(names) == len(users), (session, names)
        for user, name in zip(sorted(users), names, strict=True):
            assert user in name.lower(), (session, names)
        for item in listed:
            uid = item.findtext("e:JobSessionUid", namespaces=N)
            assert uid == f"urn:veeam:BackupJobSession:{session}", uid
            assert item.findtext("e:Result", namespaces=N) == "Success"
    assert not reader.problems, "\n".join(reader.problems)
