"""Enterprise Manager logon, jobs, actions, tasks, errors and XML safety."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from keepstone.clock import ManualClock
from tests.conftest import ADMIN_PASSWORD, BASE_URL, Api
from tests.em.conftest import Em, N, basic


def test_discovery_needs_no_logon(client: TestClient) -> None:
    em = Em(client, None)
    root = em.xml("GET", "/api/")
    assert root.tag.endswith("EnterpriseManager")
    creates = [link.get("Href") for link in root.iterfind(".//e:Link[@Rel='Create']", N)]
    assert f"{BASE_URL}/api/sessionMngr/?v=latest" in creates
    assert f"{BASE_URL}/api/sessionMngr/?v=v1_7" in creates


def test_logon_answers_201_with_token_cookie_location_and_session(client: TestClient) -> None:
    response = client.post("/api/sessionMngr/?v=v1_7", headers=basic("admin", ADMIN_PASSWORD))
    assert response.status_code == 201
    token = response.headers["X-RestSvcSessionId"]
    assert f"X-RestSvcSessionId={token}" in response.headers["set-cookie"]
    session = etree.fromstring(response.content)
    session_id = session.findtext("e:SessionId", namespaces=N)
    assert session.findtext("e:UserName", namespaces=N) == "admin"
    assert response.headers["location"] == f"{BASE_URL}/api/logonSessions/{session_id}"
    em = Em(client, token)
    assert em.xml("GET", f"/api/logonSessions/{session_id}").findtext("e:SessionId", namespaces=N)
    # the cookie alone works too
    cookie_only = client.get("/api/jobs", cookies={"X-RestSvcSessionId": token})
    assert cookie_only.status_code == 200
    assert em.request("DELETE", f"/api/logonSessions/{session_id}").status_code == 204
    assert em.request("GET", "/api/jobs").status_code == 401


@pytest.mark.parametrize(
    "headers", [basic("admin", "wrong"), basic("nobody", "x"), {}, {"Authorization": "Basic !!!"}]
)
def test_bad_credentials_are_401_with_the_basic_challenge(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post("/api/sessionMngr/?v=latest", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="RestSvc"'
    error = etree.fromstring(response.content)
    assert error.tag.endswith("Error") and error.get("StatusCode") == "401"


def test_sessions_expire_after_15_idle_minutes(em: Em, clock: ManualClock) -> None:
    clock.advance(timedelta(minutes=14, seconds=59))
    assert em.request("GET", "/api/jobs").status_code == 200  # and the idle clock restarts
    clock.advance(timedelta(minutes=14, seconds=59))
    assert em.request("GET", "/api/jobs").status_code == 200
    clock.advance(timedelta(minutes=15))
    expired = em.request("GET", "/api/jobs")
    assert expired.status_code == 401 and "expired" in expired.text


def test_jobs_as_references_and_entities(em: Em, job: dict[str, Any]) -> None:
    refs = em.xml("GET", "/api/jobs")
    [ref] = refs.findall("e:Ref", N)
    assert (ref.get("UID"), ref.get("Name"), ref.get("Type")) == (
        f"urn:veeam:Job:{job['id']}",
        "test_job",
        "JobReference",
    )
    entities = em.xml("GET", "/api/jobs?format=Entity")
    [entity] = entities.findall("e:Job", N)
    rels = {link.get("Rel") for link in entity.iterfind("e:Links/e:Link", N)}
    assert {"Up", "Alternate", "Edit", "Start", "Stop", "Retry"} <= rels
    assert entity.findtext("e:ScheduleEnabled", namespaces=N) == "true"
    assert entity.findtext("e:NextRun", namespaces=N) == job["nextRun"]
    assert entity.find("e:JobScheduleOptions", N) is not None
    one = em.xml("GET", f"/api/jobs/{job['id']}")
    assert one.tag.endswith("EntityRef")
    as_json = em.request("GET", "/api/jobs?format=Entity", headers={"Accept": "application/json"})
    assert as_json.json()["Jobs"][0]["Name"] == "test_job"
    assert isinstance(as_json.json()["Jobs"][0]["Links"], list)


def test_actions_answer_tasks_with_messages(em: Em, api: Api, job: dict[str, Any]) -> None:
    started = em.xml("POST", f"/api/jobs/{job['id']}?action=start")
    assert started.findtext("e:Operation", namespaces=N) == "StartJob"
    done = em.wait_for(started.get("Href") or "")
    assert done.findtext("e:Result/e:Message", namespaces=N) == 'Job "test_job" triggered to start.'
    assert len(api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()) == 1

    again = em.wait_for(em.xml("POST", f"/api/jobs/{job['id']}?action=start").get("Href") or "")
    result = again.find("e:Result", N)
    assert result is not None and result.get("Success") == "false"
    assert "already running" in (result.findtext("e:Message", namespaces=N) or "")

    toggled = em.wait_for(
        em.xml("POST", f"/api/jobs/{job['id']}?action=toggleScheduleEnabled").get("Href") or ""
    )
    assert toggled.findtext("e:Operation", namespaces=N) == "UpdateJob"
    assert api.get(f"/v2/Jobs/{job['id']}").json()["isEnabled"] is False

    clone = em.wait_for(em.xml("POST", f"/api/jobs/{job['id']}?action=clone").get("Href") or "")
    related = clone.find("e:Links/e:Link[@Rel='Related']", N)
    assert related is not None
    clone_id = (related.get("Href") or "").rsplit("/", 1)[1]
    assert api.get(f"/v2/Jobs/{clone_id}").json()["name"] == "test_job clone"
    assert em.request("POST", f"/api/jobs/{job['id']}?action=explode").status_code == 400

    listed = em.xml("GET", "/api/tasks")
    assert len(listed.findall("e:Task", N)) == 4
    number = listed.findtext("e:Task/e:TaskId", namespaces=N)
    assert em.request("DELETE", f"/api/tasks/{number}").status_code == 204
    assert em.request("GET", f"/api/tasks/{number}").status_code == 404


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Job [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Job xmlns="http://www.veeam.com/ent/v1.0" Href="x" Name="n" UID="urn:veeam:Job:x">
<Description>&xxe;</Description></Job>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Job xmlns="http://www.veeam.com/ent/v1.0" Href="x" Name="n" UID="urn:veeam:Job:x">
<Description>&lol2;</Description></Job>"""


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (XXE, "DOCTYPE"),
        (LAUGHS, "DOCTYPE"),
        (b"<Job", "not well-formed"),
        (b"", "body is required"),
        (b'<Job xmlns="urn:other" Href="x" Name="n" UID="urn:veeam:Job:x"/>', "namespace"),
        (b'<Backup xmlns="http://www.veeam.com/ent/v1.0" Href="x"/>', "root element"),
        (
            b'<Job xmlns="http://www.veeam.com/ent/v1.0" Href="x" Name="n" UID="urn:veeam:Job:x">'
            b"<Description>d</Description><JobType>Backup</JobType></Job>",
            "RestAPI.xsd",
        ),  # wrong order
        (
            b'<Job xmlns="http://www.veeam.com/ent/v1.0" Href="x" Name="n"/>',
            "RestAPI.xsd",
        ),  # no UID
    ],
)
def test_hostile_and_malformed_bodies_are_refused(
    em: Em, api: Api, job: dict[str, Any], body: bytes, says: str
) -> None:
    response = em.request("PUT", f"/api/jobs/{job['id']}", content=body)
    assert response.status_code == 400
    error = etree.fromstring(response.content)
    assert says in (error.get("Message") or ""), error.get("Message")
    assert "root:" not in response.text  # nothing of /etc/passwd
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == ""


def test_unknown_job_and_task_and_json_errors(em: Em) -> None:
    missing = em.request("GET", "/api/jobs/nope", headers={"Accept": "application/json"})
    assert missing.status_code == 404
    assert missing.json()["StatusCode"] == 404 and missing.json()["Message"]
    assert em.request("GET", "/api/tasks/task-999").status_code == 404
    assert em.request("GET", "/api/tasks/whatever").status_code == 400
    huge = em.request("PUT", "/api/jobs/x", content=b"<a>" + b"x" * (2 * 1024 * 1024) + b"</a>")
    assert huge.status_code == 400 and "limit" in huge.text


def test_read_only_users_cannot_edit(client: TestClient, reader: Api, job: dict[str, Any]) -> None:
    from tests.conftest import READER_PASSWORD

    response = client.post("/api/sessionMngr/?v=latest", headers=basic("reader", READER_PASSWORD))
    em = Em(client, response.headers["X-RestSvcSessionId"])
    assert em.request("GET", "/api/jobs").status_code == 200
    assert em.request("POST", f"/api/jobs/{job['id']}?action=start").status_code == 403


def test_tasks_and_logon_sessions_survive_a_restart(
    em: Em, job: dict[str, Any], ctx: Any, data_dir: Any, clock: ManualClock
) -> None:
    from keepstone.api.app import create_app
    from keepstone.server import open_context
    from keepstone.services import tasks

    done = em.wait_for(em.xml("POST", f"/api/jobs/{job['id']}?action=start").get("Href") or "")
    number = done.findtext("e:TaskId", namespaces=N)
    restarted = open_context(data_dir, clock, database=ctx.db.url)
    assert tasks.fail_interrupted(restarted, alone=True) == 0  # what serve does at start-up
    with TestClient(create_app(restarted), base_url=BASE_URL) as client:
        again = Em(client, em.token)  # the same logon session, after the restart
        task = again.xml("GET", f"/api/tasks/{number}")
        assert task.findtext("e:State", namespaces=N) == "Finished"
        assert (
            task.findtext("e:Result/e:Message", namespaces=N)
            == 'Job "test_job" triggered to start.'
        )
    restarted.db.dispose()


def test_a_deleted_task_number_is_never_reused(em: Em, job: dict[str, Any]) -> None:
    first = em.wait_for(
        em.xml("POST", f"/api/jobs/{job['id']}?action=toggleScheduleEnabled").get("Href") or ""
    )
    number = first.findtext("e:TaskId", namespaces=N)
    assert em.request("DELETE", f"/api/tasks/{number}").status_code == 204
    second = em.xml("POST", f"/api/jobs/{job['id']}?action=toggleScheduleEnabled")
    assert second.findtext("e:TaskId", namespaces=N) != number
