"""A job's answer is kept by the stored row it is made from (api/answer_memo.py): asked again, it
is not made again; any change of the row, through the API or not (a run's status leaves the
job's version as it is), is a new answer at once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from keepstone.api.answer_memo import AnswerMemo
from keepstone.api.em import jobs as em_jobs
from keepstone.api.vb365 import views
from keepstone.services.context import Context
from keepstone.store.tables import Job
from tests.conftest import ADMIN_PASSWORD
from tests.em.conftest import basic


def test_an_answer_is_made_once_per_stored_row(
    api: Any, ctx: Context, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    real = views.job

    def counted(row: Job, version: Any) -> dict[str, Any]:
        made.append(row.last_status or "")
        return real(row, version)

    monkeypatch.setattr(views, "job", counted)
    path = f"/v8/Jobs/{job['id']}"
    first, again = api.get(path), api.get(path)
    assert first.content == again.content and first.headers["etag"] == again.headers["etag"]
    assert len(made) == 1  # the second answer was the kept one
    kept = 1
    with ctx.db.write() as s:  # as a run ends: the status changes, the version does not
        s.execute(update(Job).where(Job.id == job["id"]).values(last_status="Warning"))
    changed = api.get(path)
    assert changed.json()["lastStatus"] == "Warning" and made[kept:] == ["Warning"]
    assert changed.headers["etag"] == first.headers["etag"]
    assert api.get(path.replace("/v8/", "/v7/")).json()["lastStatus"] == "Warning"
    assert made[kept:] == ["Warning", "Warning"]  # each version its own answer
    assert api.put(path, {"description": "edited"}).status_code == 204  # v8: no body
    edited = api.get(path)
    assert edited.json()["description"] == "edited" and len(made) == kept + 3


def test_a_memo_keeps_a_bounded_number_of_answers() -> None:
    memo: AnswerMemo[str] = AnswerMemo(capacity=3)
    made: list[int] = []

    def make(n: int) -> str:
        made.append(n)
        return f"answer {n}"

    for n in (1, 2, 3, 1, 4, 1):
        assert memo.get(n, lambda n=n: make(n)) == f"answer {n}"  # type: ignore[misc]
    assert made == [1, 2, 3, 4, 1] and len(memo) == 3  # 1 went first when 4 came
    assert memo.get(None, lambda: make(0)) == "answer 0" and memo.get(None, lambda: make(0))
    assert made[-2:] == [0, 0] and len(memo) == 3  # no key: never kept


def test_a_list_of_references_is_made_again_only_when_a_job_s_id_or_name_changes(
    client: TestClient,
    api: Any,
    org: dict[str, Any],
    repo: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[str] = []
    real = em_jobs.JobXml.reference

    def counted(self: em_jobs.JobXml, job: Any, parent: Any = None) -> Any:
        made.append(job.name)
        return real(self, job, parent)

    monkeypatch.setattr(em_jobs.JobXml, "reference", counted)
    body = {"name": "alpha", "backupType": "EntireOrganization", "repositoryId": repo["id"]}
    alpha = api.post(f"/v2/Organizations/{org['id']}/Jobs", body).json()
    logon = client.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
    em = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
    first, again = client.get("/api/jobs", headers=em), client.get("/api/jobs", headers=em)
    assert first.content == again.content and made == ["alpha"]
    assert api.put(f"/v2/Jobs/{alpha['id']}", {"name": "beta"}).status_code == 200
    renamed = client.get("/api/jobs", headers=em)
    assert 'Name="beta"' in renamed.text and made == ["alpha", "beta"]
    as_json = client.get("/api/jobs", headers=em | {"Accept": "application/json"})
    assert as_json.json() and made == ["alpha", "beta", "beta"]  # each form its own answer
