"""The Enterprise Manager dialect's query parameters match in any case, and an empty value of one
that may be null is not sent (api/query_names.py), as in the JSON dialect."""

from __future__ import annotations

from typing import Any

from lxml import etree

from tests.em.conftest import Em, N


def _root(document: etree._Element) -> str:
    return etree.QName(document).localname


def test_format_matches_in_any_case_on_lists_and_direct_routes(em: Em, job: dict[str, Any]) -> None:
    assert _root(em.xml("GET", "/api/jobs?FORMAT=Entity")) == "Jobs"
    assert _root(em.xml("GET", "/api/jobs?Format=")) == "EntityReferences"  # empty: not sent
    # a job by id is answered by a direct route (api/direct.py), which reads the query itself
    assert _root(em.xml("GET", f"/api/jobs/{job['id']}?fOrMaT=Entity")) == "Job"
    assert _root(em.xml("GET", f"/api/jobs/{job['id']}?format=")) == "EntityRef"


def test_the_query_service_s_names_match_in_any_case(em: Em, job: dict[str, Any]) -> None:
    found = em.xml("GET", "/api/query?TYPE=Job&PAGESIZE=1&Format=Entities")
    assert len(found.findall(".//e:Job", N)) == 1
    assert em.request("GET", "/api/query?type=Job&pageSize=").status_code == 400  # an int
