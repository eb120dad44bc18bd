"""A client of the Enterprise Manager dialect that checks every XML answer against RestAPI.xsd."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from keepstone.api.em.schema_names import entities_choices
from keepstone.api.em.xml import NS, SCHEMA_PATH, XSD, schema
from tests.conftest import ADMIN_PASSWORD

N = {"e": NS}
DECLARED = frozenset(
    str(name)
    for name in etree.parse(str(SCHEMA_PATH)).xpath("//xs:element/@name", namespaces={"xs": XSD})
)


def outside_schema(document: etree._Element) -> set[str]:
    """Elements the shipped RestAPI.xsd does not declare (anywhere, or, for a query result's
    entities, in ``EntitiesType``): the vendor's resources newer than it (agents, NAS, CDP,
    Cloud Connect failover, ...), which cannot be validated against it."""
    names = {etree.QName(e).localname for e in document.iter() if isinstance(e.tag, str)}
    undeclared = names - DECLARED
    entities = document.find("e:Entities/*", N)
    if entities is not None and etree.QName(entities).localname not in entities_choices():
        undeclared.add(etree.QName(entities).localname)
    return undeclared


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Em:
    def __init__(self, client: TestClient, token: str | None) -> None:
        self.client = client
        self.token = token
        self.location = ""  # the logon session's path, when known

    def request(self, method: str, path: str, **kw: Any) -> Any:
        headers = ({"X-RestSvcSessionId": self.token} if self.token else {}) | kw.pop("headers", {})
        response = self.client.request(method, path, headers=headers, **kw)
        kind = response.headers.get("content-type", "")
        if kind.startswith("application/xml") and response.content:
            document = etree.fromstring(response.content)
            if not outside_schema(document):
                assert schema().validate(document), (path, schema().error_log, response.text)
        return response

    def xml(self, method: str, path: str, **kw: Any) -> etree._Element:
        response = self.request(method, path, **kw)
        assert response.status_code < 300, response.text
        return etree.fromstring(response.content)

    def wait_for(self, task_href: str) -> etree._Element:
        path = task_href.split("://", 1)[1].split("/", 1)[1]
        deadline = time.monotonic() + 120  # generous: the machine may be loaded
        while time.monotonic() < deadline:
            task = self.xml("GET", "/" + path)
            if task.findtext("e:State", namespaces=N) == "Finished":
                return task
            time.sleep(0.02)
        raise AssertionError(f"task {task_href} did not finish")


@pytest.fixture
def em(client: TestClient) -> Em:
    response = client.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
    assert response.status_code == 201, response.text
    return Em(client, response.headers["X-RestSvcSessionId"])
