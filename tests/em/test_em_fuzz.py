"""Property-based fuzz of the Enterprise Manager dialect: no body, path or query makes a 5xx.

Every write route under ``/api`` (enumerated from the app, so a new route is fuzzed the day it is
added) gets arbitrary bodies: random bytes, XML-ish text in random encodings, a real rendered Job
with random values put into its schema's elements and attributes, and JSON. The query service
gets arbitrary filters, sorts and pages. An administrator is logged on, and the catalog holds
real objects: a Local organization, a job that has run (a backup session and a restore point),
its clone, and tasks. Examples are bounded and derandomized so CI stays green and fast.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from lxml import etree

from keepstone.api.em.query import MAX_NESTING
from keepstone.api.em.query_service import QUERY_TYPE_NAMES
from keepstone.domain.text import xml_safe
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import auth, tasks
from keepstone.services.context import Context
from tests.conftest import ADMIN_PASSWORD, Api
from tests.em.conftest import Em, N, basic
from tests.local_org import backup_proxy, org_job, organization, run_job

__all__ = ["backup_proxy", "org_job", "organization"]  # fixtures this module uses

WRITES = {"POST", "PUT", "DELETE"}
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def write_routes(client: TestClient) -> list[tuple[str, str]]:
    """(method, path template) of every EM write route the app serves, from its OpenAPI
    document (which every route is in: included routers are resolved lazily)."""
    paths: dict[str, dict[str, Any]] = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/")
        for method in operations
        if method.upper() in WRITES
    )


# ---- the catalog under fuzz -------------------------------------------------------------------


class Catalog:
    """Real objects to aim at, and the ids the fuzz picks path parameters from."""

    def __init__(self, em: Em, api: Api, job: dict[str, Any], proxy: ProxyWorker) -> None:
        session = run_job(api, job, proxy)
        em.wait_for(em.xml("POST", f"/api/jobs/{job['id']}?action=clone").get("Href") or "")
        victim = em.client.post(
            "/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD)
        )
        tasks_now = em.xml("GET", "/api/tasks").findall("e:Task/e:TaskId", N)
        self.template = em.xml("GET", f"/api/jobs/{job['id']}?format=Entity")
        self.ids = [
            job["id"],
            session["id"],
            victim.headers["location"].rsplit("/", 1)[1],  # another logon session, not ours
            *(task.text or "" for task in tasks_now),
            "task-0",
            "task-99999999999999999999999",
        ]


@pytest.fixture
def catalog(em: Em, api: Api, org_job: dict[str, Any], backup_proxy: ProxyWorker) -> Catalog:
    return Catalog(em, api, org_job, backup_proxy)


@pytest.fixture
def after_fuzz(ctx: Context, em: Em) -> Iterator[None]:
    """After the fuzz: every task it started finishes, none by an unexpected exception."""
    own_session = auth.resume_logon(ctx, em.token or "")[1]
    yield
    deadline = time.monotonic() + 60
    while any(t.state != "Finished" for t in tasks.list_for(ctx, own_session)):
        assert time.monotonic() < deadline, "tasks did not finish"
        time.sleep(0.05)
    messages = [t.message for t in tasks.list_for(ctx, own_session)]
    assert not [m for m in messages if "unexpectedly" in m], messages


# ---- strategies -------------------------------------------------------------------------------

TEXT = st.text(max_size=60)
VALUES = st.one_of(
    TEXT,
    st.integers().map(str),
    st.sampled_from(
        ["true", "false", "1", "0", "", " ", "-1", "9" * 5000, "22:00:00", "25:61:00",
         "22:00:00+02:00", "00:00:00.0000001", "Everyday", "WeekDays", "SelectedDays", "Monday",
         "Funday", "Hours", "Minutes", "0,1,1", ",".join(["1"] * 24), ",".join(["0"] * 24),
         "\x00", "\ud800", "\ufffe", "😀", "x" * 10_000]
    ),
)  # fmt: skip
ENCODINGS = st.sampled_from(
    ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "latin-1"]
)
XMLISH = st.lists(
    st.one_of(
        st.sampled_from(
            ["<", ">", "/>", "</", "<?xml version='1.0'?>",
             '<?xml version="1.0" encoding="UTF-16"?>',
             "<!DOCTYPE x>", "<!ENTITY e 'x'>", "&e;", "&#0;", "&#x1;", "&#xD800;", "&amp;",
             "<![CDATA[", "]]>", "<!--", "-->", 'xmlns="http://www.veeam.com/ent/v1.0"',
             "Job", "Description", "JobScheduleOptions", "=", '"', " "]
        ),
        TEXT,
    ),
    max_size=40,
).map("".join)  # fmt: skip
JSON_BODIES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


def encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="surrogatepass" if "utf" in encoding else "replace")


def mutated_job(template: etree._Element, draw: Callable[[Any], Any]) -> bytes:
    """The rendered Job with random values in random leaves and attributes, some elements
    dropped: schema-shaped bodies that reach the edit's own rules. (lxml cannot hold what XML
    cannot carry, so such characters arrive as U+FFFD here; raw bytes cover them elsewhere.)"""
    document = etree.fromstring(etree.tostring(template))
    nodes = [node for node in document.iter() if isinstance(node.tag, str)]
    for node in draw(st.lists(st.sampled_from(nodes), max_size=8)):
        value = draw(VALUES)
        if node.attrib and draw(st.booleans()):
            node.set(draw(st.sampled_from(sorted(node.attrib))), xml_safe(value))
        elif len(node) == 0:
            node.text = xml_safe(value)
        elif node is not document and node.getparent() is not None and draw(st.booleans()):
            node.getparent().remove(node)  # type: ignore[union-attr]
    body = etree.tostring(document, encoding="unicode")
    if draw(st.booleans()):  # the same document with a DTD: entities for the ban to stop
        declaration = draw(st.sampled_from(DECLARATIONS))
        body = declaration + body.replace("</Description>", "&e;</Description>", 1)
    return encoded(body, draw(ENCODINGS))


DECLARATIONS = [
    '<!DOCTYPE Job [<!ENTITY e "x">]>',
    '<!DOCTYPE Job [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE Job [<!ENTITY e "x">]>',
    '<!doctype Job SYSTEM "http://127.0.0.1:9/x.dtd">',
]


@st.composite
def bodies(draw: Callable[[Any], Any], template: etree._Element) -> tuple[bytes, str | None]:
    kind = draw(st.sampled_from(["bytes", "xmlish", "job", "json", "none"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300)), draw(st.sampled_from([None, "application/xml"]))
    if kind == "xmlish":
        return encoded(draw(XMLISH), draw(ENCODINGS)), "text/xml"
    if kind == "job":
        return mutated_job(template, draw), draw(
            st.sampled_from(["application/xml", "application/xml; charset=utf-8", None])
        )
    if kind == "json":
        return json.dumps(draw(JSON_BODIES)).encode(), "application/json"
    return b"", None


def path_value(ids: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(ids), TEXT.filter(lambda t: t not in ("", ".", "..")))


QUERY_ACTIONS = ["edit", "start", "stop", "retry", "clone", "toggleScheduleEnabled", "explode", ""]


# ---- the fuzz ---------------------------------------------------------------------------------


def test_no_write_route_answers_5xx(em: Em, catalog: Catalog, after_fuzz: None) -> None:
    routes = write_routes(em.client)
    assert ("PUT", "/api/jobs/{job_id}") in routes and len(routes) >= 5, routes

    @FUZZ
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        method, template = data.draw(st.sampled_from(routes))
        path = re.sub(
            r"\{[^}]+\}",
            lambda _: quote(data.draw(path_value(catalog.ids)), safe=""),
            template,
        )
        action = data.draw(st.sampled_from(QUERY_ACTIONS) | TEXT)
        body, content_type = data.draw(bodies(catalog.template))
        headers = {"Content-Type": content_type} if content_type else {}
        if template == "/api/sessionMngr/":
            headers |= basic("admin", ADMIN_PASSWORD)
        note(f"{method} {path}?action={action!r} {content_type} {body[:300]!r}")
        response = em.request(
            method, path, params={"action": action}, content=body, headers=headers
        )
        assert response.status_code < 500, response.text
        assert em.request("GET", "/api/jobs").status_code == 200  # still logged on, listable

    fuzz()


FIELDS = [
    "Name", "UID", "JobType", "Description", "ScheduleEnabled", "NextRun", "CreationTime",
    "CreationTimeUTC", "EndTime", "State", "Result", "Progress", "IsRetry", "JobName",
    "BackupDate", "Capacity", "FreeSpace", "Port", "Version", "nosuchfield",
]  # fmt: skip
FILTER_PIECES = st.sampled_from(
    ["(", ")", ",", ";", "==", "!=", ">=", "<=", ">", "<", '"', " ", *FIELDS, "Success",
     "2026-06-10T10:00:00Z", "2026-06-10", "0001-01-01T00:00:00+14:00", "1e999", "nan", "-5",
     "\x01", "\ufffe"]
)  # fmt: skip
FILTERS = st.one_of(
    st.lists(FILTER_PIECES, max_size=60).map("".join),
    TEXT,
    st.integers(min_value=0, max_value=3 * MAX_NESTING).map(
        lambda n: "(" * n + "name==x" + ")" * n
    ),
    st.just("(" * 5000),
)
NUMBERS = st.one_of(
    st.integers(min_value=-5, max_value=5).map(str),
    st.sampled_from(["10000", "10001", "2147483648", "9" * 30, "x", "", "1.5"]),
)


def test_no_query_answers_5xx(em: Em, catalog: Catalog) -> None:
    @FUZZ
    @given(
        kind=st.sampled_from([*QUERY_TYPE_NAMES, "job", "Nothing", ""]),
        format=st.sampled_from(["Refs", "Entities", "entities", "x"]),
        filter=st.none() | FILTERS,
        sort=st.sampled_from(["sortAsc", "sortDesc"]),
        field=st.none() | st.sampled_from(FIELDS) | TEXT,
        page_size=st.none() | NUMBERS,
        page=st.none() | NUMBERS,
        accept=st.sampled_from(["application/xml", "application/json"]),
    )
    def fuzz(
        kind: str,
        format: str,
        filter: str | None,
        sort: str,
        field: str | None,
        page_size: str | None,
        page: str | None,
        accept: str,
    ) -> None:
        params = {
            name: value
            for name, value in (
                ("type", kind),
                ("format", format),
                ("filter", filter),
                (sort, field),
                ("pageSize", page_size),
                ("page", page),
            )
            if value is not None
        }
        note(repr(params))
        response = em.request("GET", "/api/query", params=params, headers={"Accept": accept})
        assert response.status_code < 500, response.text

    fuzz()
