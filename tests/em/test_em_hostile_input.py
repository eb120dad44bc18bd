"""Hostile and malformed input to the Enterprise Manager dialect: a 4xx naming what was wrong, in
the dialect's Error format, never a 500; and no stored text can make a listing fail."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from keepstone.api.em.xml import request_parser
from keepstone.services.context import Context
from keepstone.store.tables import Job, Repository
from tests.conftest import Api
from tests.em.conftest import Em, N

JOB_OPEN = '<Job xmlns="http://www.veeam.com/ent/v1.0" Href="x" Name="n" UID="urn:veeam:Job:x">'
LAUGHS = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    f"{JOB_OPEN}<Description>&lol3;</Description></Job>"
)
EXTERNAL = (
    '<!DOCTYPE Job [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    f"{JOB_OPEN}<Description>&xxe;</Description></Job>"
)
WIDE = ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]
BOMS = {
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}


def wide_bodies(document: str) -> list[tuple[str, bytes]]:
    """``document`` in each UTF-16/32 byte order: without and with a BOM, and each of those
    with an XML declaration naming the encoding."""
    bodies = []
    for encoding in WIDE:
        family = encoding[:6].upper()  # UTF-16 or UTF-32
        declared = f'<?xml version="1.0" encoding="{family}"?>{document}'
        for label, text in (("bare", document), ("declared", declared)):
            bodies.append((f"{encoding} {label}", text.encode(encoding)))
            bodies.append((f"{encoding} {label} BOM", BOMS[encoding] + text.encode(encoding)))
    return bodies


def refused(response: Any, status: int, *says: str) -> str:
    """The EM Error's message, after checking its status and that it names ``says``."""
    assert response.status_code == status, response.text
    error = etree.fromstring(response.content)
    assert error.tag == "{http://www.veeam.com/ent/v1.0}Error"
    assert error.get("StatusCode") == str(status)
    message = error.get("Message") or ""
    for text in says:
        assert text in message, message
    return message


def unchanged(api: Api, job: dict[str, Any]) -> None:
    after = api.get(f"/v2/Jobs/{job['id']}").json()
    assert after["description"] == "" and after["name"] == "test_job"


XML_TYPE = {"Content-Type": "application/xml"}


def put_job(em: Em, job: dict[str, Any], body: bytes, headers: dict[str, str]) -> Any:
    return em.request("PUT", f"/api/jobs/{job['id']}?action=edit", content=body, headers=headers)


@pytest.mark.parametrize("encoding", WIDE)
def test_doctype_is_refused_in_every_encoding(
    em: Em, api: Api, job: dict[str, Any], encoding: str
) -> None:
    attacks = [(f"billion laughs {c}", b) for c, b in wide_bodies(LAUGHS) if encoding in c]
    attacks += [(f"external entity {c}", b) for c, b in wide_bodies(EXTERNAL) if encoding in c]
    assert len(attacks) == 8
    for case, body in attacks:
        response = put_job(em, job, body, XML_TYPE)
        message = refused(response, 400, "DOCTYPE")
        assert "root:" not in message and "lollol" not in response.text, case
    unchanged(api, job)


def test_the_parser_alone_neither_expands_nor_fetches_entities(tmp_path: Path) -> None:
    """Behind the DOCTYPE ban, the parser is safe on its own: entities stay unexpanded
    references and an external one is never read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    external = EXTERNAL.replace("file:///etc/passwd", secret.as_uri()).encode()
    for body in (LAUGHS.encode(), external):
        try:
            document = etree.fromstring(body, request_parser())
        except etree.XMLSyntaxError:
            continue  # refusing the document outright is safe too
        text = etree.tostring(document)
        assert b"TOP SECRET" not in text and b"lollol" not in text


def test_valid_wide_bodies_are_read(em: Em, api: Api, job: dict[str, Any]) -> None:
    for n, (case, _) in enumerate(wide_bodies(JOB_OPEN)):
        _, body = wide_bodies(f"{JOB_OPEN}<Description>wide ✓ {n}</Description></Job>")[n]
        response = put_job(em, job, body, XML_TYPE)
        assert response.status_code == 202, (case, response.text)
        em.wait_for(response.headers["location"])
        assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == f"wide ✓ {n}", case


def test_the_content_type_charset_is_honoured(em: Em, api: Api, job: dict[str, Any]) -> None:
    body = f"{JOB_OPEN}<Description>café</Description></Job>".encode("latin-1")
    response = put_job(em, job, body, {"Content-Type": "application/xml; charset=ISO-8859-1"})
    assert response.status_code == 202, response.text
    em.wait_for(response.headers["location"])
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == "café"


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_xml_sent_with_another_type_is_read(
    em: Em, api: Api, job: dict[str, Any], content_type: str
) -> None:
    """``curl -d @job.xml`` declares a form: the XML is read all the same."""
    body = f"{JOB_OPEN}<Description>sent as {content_type}</Description></Job>".encode()
    response = put_job(em, job, body, {"Content-Type": content_type})
    assert response.status_code == 202, response.text
    em.wait_for(response.headers["location"])
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == f"sent as {content_type}"


HUGE_ATTRIBUTE = f'<Job xmlns="http://www.veeam.com/ent/v1.0" Href="{"h" * 900_000}" '
MALFORMED: list[tuple[str, bytes, str, str]] = [  # case, body, Content-Type, what the message says
    ("empty", b"", "application/xml", "body is required"),
    ("only spaces", b"  \r\n ", "application/xml", "body is required"),
    ("truncated", JOB_OPEN.encode() + b"<Descrip", "application/xml", "not well-formed"),
    ("cut mid-tag", JOB_OPEN.encode()[:30], "application/xml", "not well-formed"),
    (
        "control character",
        f"{JOB_OPEN}<Description>a\x01b</Description></Job>".encode(),
        "application/xml",
        "not well-formed",
    ),
    (
        "control character reference",
        f"{JOB_OPEN}<Description>a&#x1;b</Description></Job>".encode(),
        "application/xml",
        "not well-formed",
    ),
    ("invalid UTF-8", JOB_OPEN.encode() + b"\xff\xfe\xfa</Job>", "text/xml", "not valid"),
    ("lone surrogate in UTF-16", b"\xff\xfe<\x00\x00\xd8>\x00", "text/xml", "not valid"),
    (
        "unknown declared encoding",
        b'<?xml version="1.0" encoding="klingon"?><Job/>',
        "application/xml",
        "klingon",
    ),
    (
        "UTF-16 declared on 8-bit bytes",
        b'<?xml version="1.0" encoding="UTF-16"?><Job/>',
        "application/xml",
        "UTF-16",
    ),
    ("unknown charset", JOB_OPEN.encode(), "application/xml; charset=ebcdic-x", "Content-Type"),
    ("wrong root", b'<Task xmlns="http://www.veeam.com/ent/v1.0"/>', "text/xml", "<Job>"),
    ("no namespace", b'<Job Href="x" Name="n" UID="u"/>', "application/xml", "namespace"),
    ("JSON", b'{"Description": "x"}', "application/json", "Content-Type"),
    ("JSON by suffix", b'{"Description": "x"}', "application/problem+json", "Content-Type"),
    ("form that is not XML", b"Description=x", "application/x-www-form-urlencoded", "well-formed"),
    (
        "huge attribute",
        (HUGE_ATTRIBUTE + 'Name="n" UID="u"><Description>x</Description></Job>').encode(),
        "application/xml",
        "RestAPI.xsd",
    ),
    ("huge unclosed attribute", HUGE_ATTRIBUTE.encode(), "application/xml", "not well-formed"),
    ("binary", bytes(range(256)) * 100, "application/xml", "body"),
]


def test_malformed_bodies_are_400_naming_the_problem(em: Em, api: Api, job: dict[str, Any]) -> None:
    wrong = []
    for case, body, content_type, says in MALFORMED:
        response = put_job(em, job, body, {"Content-Type": content_type})
        message = response.text
        if response.status_code == 400 and response.headers["content-type"].startswith(
            "application/xml"
        ):
            message = etree.fromstring(response.content).get("Message") or ""
        if response.status_code != 400 or says not in message:
            wrong.append((case, response.status_code, message[:200]))
    assert wrong == []
    unchanged(api, job)


def test_errors_have_a_json_form(em: Em, job: dict[str, Any]) -> None:
    response = em.request(
        "PUT",
        f"/api/jobs/{job['id']}?action=edit",
        content="<Job/>".encode("utf-16"),
        headers={"Content-Type": "application/xml", "Accept": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["StatusCode"] == 400 and "root element" in response.json()["Message"]


TASK_IDS = [
    ("task-99999999999999999999999", 404),
    ("task-9223372036854775808", 404),  # 2**63: one beyond SQLite's INTEGER
    ("task-" + "9" * 5000, 404),
    ("task-00000000000000000000000000001", 404),
    ("task-²", 400),
    ("task-١٢", 400),  # Arabic-Indic digits: isdigit() is true, but not a task id
    ("task--1", 400),
    ("task-1x", 400),
    ("task-", 400),
    ("whatever", 400),
]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_task_ids_out_of_range_or_malformed_are_404_or_400(em: Em, method: str) -> None:
    for task_id, status in TASK_IDS:
        refused(em.request(method, f"/api/tasks/{task_id}"), status, "task")


# ---- text stored before the input rule (or by any other path) --------------------------------

STORED = "bad\x07name\x00\x1b\ufffe\uffff"


def store_bad_text(ctx: Context, job: dict[str, Any], repo: dict[str, Any]) -> None:
    """What an older server (or a hand-edited catalog) may hold: written straight into it."""
    with ctx.db.write() as s:
        row = s.get(Job, job["id"])
        assert row is not None
        row.name, row.description = STORED, f"line 1\nline\x0c2 {STORED}"
        repository = s.get(Repository, repo["id"])
        assert repository is not None
        repository.name = f"repo {STORED}"


LISTINGS = [
    "/api/jobs",
    "/api/jobs?format=Entity",
    "/api/query?type=Job",
    "/api/query?type=Job&format=Entities",
    "/api/query?type=Job&sortAsc=name",
    "/api/query?type=Job&filter=name!=x",
    "/api/query?type=BackupJobSession&format=Entities",
    "/api/query?type=Repository&format=Entities",
    "/api/repositories",
    "/api/repositories?format=Entity",
    "/api/backupSessions",
    "/api/backupSessions?format=Entity",
    "/api/restorePoints?format=Entity",
    "/api/tasks",
]


@pytest.mark.parametrize("accept", ["application/xml", "application/json"])
def test_a_stored_control_character_breaks_no_listing(
    em: Em, ctx: Context, job: dict[str, Any], repo: dict[str, Any], accept: str
) -> None:
    em.wait_for(em.xml("POST", f"/api/jobs/{job['id']}?action=start").get("Href") or "")
    store_bad_text(ctx, job, repo)
    em.wait_for(em.xml("POST", f"/api/jobs/{job['id']}?action=clone").get("Href") or "")
    for path in [*LISTINGS, f"/api/jobs/{job['id']}?format=Entity"]:
        response = em.request("GET", path, headers={"Accept": accept})  # XML checked vs. XSD
        assert response.status_code == 200, (path, response.text)
        assert "\x07" not in response.text and "\x00" not in response.text
    jobs = em.xml("GET", "/api/jobs?format=Entity")
    names = [entity.get("Name") for entity in jobs.findall("e:Job", N)]
    shown = "bad\ufffdname\ufffd\ufffd\ufffd\ufffd"
    assert names == [shown, f"{shown} clone"]
    description = jobs.findtext("e:Job/e:Description", namespaces=N)
    assert description == f"line 1\nline\ufffd2 {shown}"


def test_error_messages_quoting_bad_input_stay_valid_xml(em: Em) -> None:
    response = em.request("GET", "/api/query", params={"type": "Job", "filter": "name \x01\x7f"})
    message = refused(response, 400, "filter")
    assert "\x01" not in message and "\ufffd" in message


@pytest.mark.parametrize(
    ("query", "prop"),
    [
        ("page=2147483648", "page"),  # PageNum is an xsd:int
        ("page=99999999999999999999999999", "page"),
        ("page=0", "page"),
        ("pageSize=10001", "pageSize"),
        ("pageSize=99999999999999999999999999", "pageSize"),
        ("pageSize=x", "pageSize"),
    ],
)
def test_pages_out_of_range_are_400_naming_the_parameter(em: Em, query: str, prop: str) -> None:
    refused(em.request("GET", f"/api/query?type=Job&{query}"), 400, prop)


def test_the_last_representable_page_is_valid_xml(em: Em) -> None:
    paging = em.xml("GET", "/api/query?type=Job&page=2147483647").find("e:PagingInfo", N)
    assert paging is not None and paging.get("PageNum") == "2147483647"
