"""Backup task sessions: one per protected user of a run, written by the real engine, with the
state, result, times and sizes of what the run did for that user; served by the EM dialect
(XML valid against RestAPI.xsd, links in the vendor's order) and by VB365's ProcessedObjects."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Engine, event, select

from keepstone.clock import ManualClock
from keepstone.domain.jobs import SessionStatus
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import restore_points, runs, task_sessions
from keepstone.services.context import Context
from keepstone.store.tables import TaskSession
from tests.backup.test_odd_names_and_bad_items import fault_at_open
from tests.conftest import Api
from tests.em.conftest import Em, N
from tests.local_org import Organization, backup_proxy, org_job, organization, run_job

__all__ = ["backup_proxy", "org_job", "organization"]  # fixtures

NAME = re.compile(r"^(alice|bob)@\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def text(node: etree._Element, name: str) -> str:
    return node.findtext(f"e:{name}", namespaces=N) or ""


def rows_of(ctx: Context, session_id: str) -> dict[str, TaskSession]:
    with ctx.db.read() as s:
        found = s.scalars(select(TaskSession).where(TaskSession.session_id == session_id))
        return {row.name: row for row in found}


def user_bytes(organization: Organization, user: str) -> int:
    return sum(len(data) for path, data in organization.contents().items() if path.startswith(user))


def run_with_a_bad_item(
    api: Api, organization: Organization, job: dict[str, Any], proxy: Any
) -> Any:
    """A run where one of alice's files cannot be read (a FIFO) and everything else can."""
    os.mkfifo(organization.root / "alice" / "OneDrive" / "Documents" / "pipe")
    session = run_job(api, job, proxy)
    assert session["status"] == "Warning"
    return session


def test_one_task_session_per_user_says_what_the_run_did_for_that_user(
    api: Api,
    em: Em,
    ctx: Context,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
) -> None:
    session = run_with_a_bad_item(api, organization, org_job, backup_proxy)
    document = em.xml("GET", f"/api/backupSessions/{session['id']}/taskSessions?format=Entity")
    tasks = {t.get("VmDisplayName", ""): t for t in document.findall("e:BackupTaskSession", N)}
    assert set(tasks) == {"alice", "bob"}
    alice, bob = tasks["alice"], tasks["bob"]
    assert (text(alice, "State"), text(alice, "Result")) == ("Stopped", "Warning")
    assert (text(bob, "State"), text(bob, "Result")) == ("Stopped", "Success")
    assert "Documents/pipe" in text(alice, "Reason") and text(bob, "Reason") == ""
    ran = runs.get_session(ctx, session["id"])
    for user, task in tasks.items():
        assert NAME.match(task.get("Name", "")) and task.get("Name", "").startswith(user)
        assert text(task, "JobSessionUid") == f"urn:veeam:BackupJobSession:{session['id']}"
        assert ran.creation_time <= clock.now() and text(task, "EndTimeUTC")
        assert int(text(task, "TotalSize")) == user_bytes(organization, user) > 0

    point = restore_points.list_points(ctx, job_id=org_job["id"])[0]
    rows = rows_of(ctx, session["id"])
    assert sum(r.total_bytes for r in rows.values()) == point.size
    assert sum(r.items for r in rows.values()) == point.item_count
    for row in rows.values():
        assert ran.creation_time <= row.creation_time <= row.end_time  # type: ignore[operator]
        assert row.end_time <= ran.end_time  # type: ignore[operator]
        assert row.read_bytes == row.total_bytes  # a first run reads everything
        assert row.written_bytes > 0

    # The next run reads nothing unchanged and writes nothing new; the sizes stay the same.
    clock.advance(timedelta(minutes=10))
    later = run_job(api, org_job, backup_proxy)
    again = rows_of(ctx, later["id"])
    assert {u: r.total_bytes for u, r in again.items()} == {
        u: r.total_bytes for u, r in rows.items()
    }
    assert [(r.read_bytes, r.written_bytes) for r in again.values()] == [(0, 0), (0, 0)]
    everything = em.xml("GET", "/api/backupTaskSessions")
    assert len(everything.findall("e:Ref", N)) == 4


def test_references_link_up_to_the_server_and_the_job_session_first(
    api: Api,
    em: Em,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
) -> None:
    session = run_with_a_bad_item(api, organization, org_job, backup_proxy)
    listing = em.xml("GET", f"/api/backupSessions/{session['id']}/taskSessions")
    assert listing.tag == f"{{{N['e']}}}EntityReferences"
    refs = listing.findall("e:Ref", N)
    assert len(refs) == 2
    for ref in refs:
        found = [
            (link.get("Rel"), link.get("Type"), link.get("Name"))
            for link in ref.findall("e:Links/e:Link", N)
        ]
        assert found[0] == ("Up", "BackupServerReference", "backup.example.test")
        assert found[1][:2] == ("Up", "BackupJobSessionReference")
        assert found[1][2] and found[1][2].startswith("acme backup@")
        assert found[2] == ("Alternate", "BackupTaskSession", ref.get("Name"))
        path = "/" + ref.get("Href", "").split("://", 1)[1].split("/", 1)[1]
        one = em.xml("GET", path)
        assert (one.tag, one.get("UID")) == (f"{{{N['e']}}}EntityRef", ref.get("UID"))
        entity = em.xml("GET", f"{path}?format=Entity")
        assert entity.get("UID") == ref.get("UID") and entity.get("Name") == ref.get("Name")
        links = entity.findall("e:Links/e:Link", N)
        assert [link.get("Type") for link in links] == [
            "BackupServerReference",
            "BackupJobSessionReference",
            "BackupTaskSessionReference",
        ]
    as_json = em.request(
        "GET", "/api/backupTaskSessions?format=Entity", headers={"Accept": "application/json"}
    )
    assert as_json.status_code == 200 and "alice" in as_json.text


def test_unknown_task_sessions_and_job_sessions_are_404(em: Em) -> None:
    assert em.request("GET", "/api/backupTaskSessions/nope").status_code == 404
    assert em.request("GET", "/api/backupSessions/nope/taskSessions").status_code == 404
    assert len(em.xml("GET", "/api/backupTaskSessions").findall("e:Ref", N)) == 0


def test_processed_objects_are_one_per_user_even_with_warnings(
    api: Api, organization: Organization, org_job: dict[str, Any], backup_proxy: ProxyWorker
) -> None:
    """Before task sessions, a user with a warning was listed once per log line about it."""
    session = run_with_a_bad_item(api, organization, org_job, backup_proxy)
    processed = api.get(f"/v7/JobSessions/{session['id']}/ProcessedObjects").json()["results"]
    assert sorted((p["name"], p["status"]) for p in processed) == [
        ("alice", "Warning"),
        ("bob", "Success"),
    ]


def test_the_query_service_finds_task_sessions_by_their_fields(
    api: Api,
    em: Em,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
) -> None:
    session = run_with_a_bad_item(api, organization, org_job, backup_proxy)
    found = em.xml("GET", "/api/query?type=BackupTaskSession&filter=Result==Warning")
    assert [r.get("Name", "").split("@")[0] for r in found.findall("e:Refs/e:Ref", N)] == ["alice"]
    uid = f"urn:veeam:BackupJobSession:{session['id']}"
    entities = em.xml(
        "GET", f'/api/query?type=BackupTaskSession&format=Entities&filter=JobSessionUid=="{uid}"'
    )
    assert len(entities.findall("e:Entities/e:BackupTaskSessions/e:BackupTaskSession", N)) == 2


# ---- runs that do not finish ------------------------------------------------------------------


def test_a_run_stopped_during_a_user_closes_that_users_task_as_stopped(
    api: Api,
    em: Em,
    ctx: Context,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The stop arrives while alice's plan.txt is being opened: alice's task never finishes.
    def stop(_: int) -> None:
        runs.stop_job(ctx, org_job["id"])

    fault_at_open(monkeypatch, "plan.txt", stop)
    session = run_job(api, org_job, backup_proxy)
    assert session["status"] == "Stopped"
    rows = rows_of(ctx, session["id"])
    assert set(rows) == {"alice"}  # bob was never started
    alice = rows["alice"]
    assert (alice.status, alice.reason) == ("Stopped", "Job stopped by user")
    assert alice.end_time is not None
    task = em.xml("GET", f"/api/backupTaskSessions/{alice.id}?format=Entity")
    assert (text(task, "State"), text(task, "Result")) == ("Stopped", "Failed")


def test_a_crashed_attempt_fails_its_running_users_and_its_retry_takes_their_rows_over(
    em: Em, ctx: Context, worker: ProxyWorker, job: dict[str, Any]
) -> None:
    runs.start_job(ctx, job["id"], "test")
    claimed = runs.claim_next(ctx, worker.proxy_id)
    assert claimed is not None
    task_id = task_sessions.start(ctx, claimed.session_id, ("u-1", "alice"))
    running = em.xml("GET", f"/api/backupTaskSessions/{task_id}?format=Entity")
    assert (text(running, "State"), text(running, "Result")) == ("Working", "None")
    assert running.find("e:EndTimeUTC", N) is None
    assert runs.abandon_runs_of(ctx, worker.proxy_id) == 1  # the proxy restarted mid-run
    row = rows_of(ctx, claimed.session_id)["alice"]
    assert row.status == "Failed" and "restarted" in row.reason and row.end_time is not None
    assert runs.get_session(ctx, claimed.session_id).status == "Queued"  # to be retried

    assert task_sessions.start(ctx, claimed.session_id, ("u-1", "alice")) == task_id
    task_sessions.finish(ctx, task_id, SessionStatus.SUCCESS, task_sessions.UserTally(1, 2, 3, 4))
    (only,) = rows_of(ctx, claimed.session_id).values()
    assert (only.status, only.items, only.total_bytes, only.reason) == ("Success", 1, 2, "")


# ---- cost: O(users) writes, listings in a constant number of statements -----------------------


class Statements:
    """Every SQL statement this process sends while counting (all engines)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __enter__(self) -> Statements:
        event.listen(Engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(statement)

    def about(self, table: str) -> int:
        return sum(table in statement for statement in self.seen)


def _session_with_users(ctx: Context, job_id: str, users: int) -> str:
    session = runs.start_job(ctx, job_id, "test")
    assert session is not None
    for n in range(users):
        task = task_sessions.start(ctx, session.id, (f"id-{n}", f"user{n}"))
        task_sessions.finish(ctx, task, SessionStatus.SUCCESS, task_sessions.UserTally(n, n, n, n))
    runs.stop_job(ctx, job_id)
    return session.id


@pytest.mark.parametrize(
    "path", ["/api/backupTaskSessions?format=Entity", "/api/backupSessions/{id}/taskSessions"]
)
def test_listing_task_sessions_costs_the_same_statements_for_n_and_4n_users(
    em: Em, ctx: Context, job: dict[str, Any], path: str
) -> None:
    counts = []
    for users in (5, 20):
        session_id = _session_with_users(ctx, job["id"], users)
        # the logon session remembered (services/credential_cache.py): only the listing counts
        assert em.request("GET", "/api/jobs").status_code == 200
        with Statements() as statements:
            response = em.request("GET", path.format(id=session_id))
        assert response.status_code == 200 and response.text.count("user") >= users
        counts.append(len(statements.seen))
    assert counts[0] > 0
    assert counts[0] == counts[1], counts


def test_the_engine_writes_task_sessions_per_user_not_per_item(
    api: Api,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
    clock: ManualClock,
) -> None:
    counts = []
    for files in (5, 20):
        for n in range(files):
            organization.file("bob", f"many/{files}-{n}.txt", f"file {n} of {files}\n".encode())
        clock.advance(timedelta(minutes=10))
        with Statements() as statements:
            run_job(api, org_job, backup_proxy)
        counts.append(statements.about("task_sessions"))
    # Per user: a look-up and an insert at its start, a look-up and an update at its end; one
    # update closes what is left Running when the session ends.
    assert 0 < counts[0] == counts[1] <= 2 * 4 + 1, counts
