"""Seed 000: the Enterprise Manager PUT, verbatim, and the Task the client polls."""

from __future__ import annotations

from typing import Any

from lxml import etree
from sqlalchemy import update

from keepstone.services.context import Context
from keepstone.store.tables import Job
from tests.conftest import BASE_URL, Api
from tests.em.conftest import Em, N

SEED_JOB_ID = "115f560f-3a5f-4a88-b0c8-096c845bafcd"
SEED_BODY = b"""<?xml version="1.0" encoding="utf-8"?>
<Job Href="https://localhost:9398/api/jobs/115f560f-3a5f-4a88-b0c8-096c845bafcd?format=Entity" Type="Job" Name="vcloud" UID="urn:veeam:Job:115f560f-3a5f-4a88-b0c8-096c845bafcd" xmlns="http://www.veeam.com/ent/v1.0" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<Description>Changing job description</Description>
</Job>"""  # noqa: E501


def test_seed_example_exchange_verbatim(
    em: Em, api: Api, ctx: Context, job: dict[str, Any]
) -> None:
    with ctx.db.write() as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(id=SEED_JOB_ID, name="vcloud"))
    response = em.request(
        "PUT",
        f"/api/jobs/{SEED_JOB_ID}",
        content=SEED_BODY,
        headers={"Content-Type": "application/xml"},
    )
    assert response.status_code == 202
    task = etree.fromstring(response.content)
    assert task.tag == "{http://www.veeam.com/ent/v1.0}Task"
    assert task.get("Type") == "Task"
    task_id = task.findtext("e:TaskId", namespaces=N)
    assert task_id is not None and task_id.startswith("task-")
    assert task.get("Href") == f"{BASE_URL}/api/tasks/{task_id}"
    [link] = task.findall("e:Links/e:Link", namespaces=N)
    assert (link.get("Rel"), link.get("Type"), link.get("Href")) == (
        "Delete",
        "Task",
        task.get("Href"),
    )
    assert task.findtext("e:State", namespaces=N) == "Running"
    assert task.findtext("e:Operation", namespaces=N) == "EditJob"

    finished = em.wait_for(task.get("Href") or "")
    assert finished.findtext("e:State", namespaces=N) == "Finished"
    result = finished.find("e:Result", namespaces=N)
    assert result is not None and result.get("Success") == "true"
    assert result.findtext("e:Message", namespaces=N) == "Ok"

    # The edit is visible through both dialects; only what the body held changed.
    assert api.get(f"/v2/Jobs/{SEED_JOB_ID}").json()["description"] == "Changing job description"
    entity = em.xml("GET", f"/api/jobs/{SEED_JOB_ID}?format=Entity")
    assert entity.findtext("e:Description", namespaces=N) == "Changing job description"
    assert entity.get("Name") == "vcloud"
    assert api.get(f"/v2/Jobs/{SEED_JOB_ID}").json()["schedulePolicy"] == job["schedulePolicy"]


def test_put_with_action_edit_and_json_answers(em: Em, api: Api, job: dict[str, Any]) -> None:
    body = SEED_BODY.replace(SEED_JOB_ID.encode(), job["id"].encode())
    response = em.request(
        "PUT",
        f"/api/jobs/{job['id']}?action=edit",
        content=body,
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 202
    task = response.json()
    assert task["State"] == "Running" and task["Operation"] == "EditJob"
    assert task["Links"][0]["Rel"] == "Delete"
    em.wait_for(task["Href"])
    assert api.get(f"/v2/Jobs/{job['id']}").json()["description"] == "Changing job description"
