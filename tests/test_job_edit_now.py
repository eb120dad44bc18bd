"""``services.jobs.edit_job_now``, the job edit the API makes on the event loop: the row it
leaves is the row ``edit_job`` (the ORM's flush) leaves, value for value; its errors are
``edit_job``'s, with nothing written; it declines (``None``, nothing written) whatever it cannot
do at once or without a lookup; an edit that changes nothing writes nothing; and a PUT of the
seed body costs the same few DBAPI statements each time, none of them through SQLAlchemy."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect

from keepstone.api.vb365.jobs import NoOpEdits
from keepstone.clock import ManualClock
from keepstone.domain.errors import InvalidInput, NotFound, PreconditionFailed
from keepstone.domain.jobs import BackupType, JobEdit, ScheduleEdit
from keepstone.domain.policy import ScheduleType
from keepstone.server import DATABASE_FILE
from keepstone.services import jobs
from keepstone.services.context import Context
from keepstone.store.codecs import policy_from_record
from keepstone.store.tables import Job
from tests.conftest import START, Api, LongLivedApi
from tests.work import catalog_work

pytestmark = pytest.mark.sqlite_catalog  # the edit on the event loop is SQLite's (the last test)

ITEMS = [{"type": "User", "user": {"id": "u1"}, "mailbox": True, "id": "item-1"}]
EDITS = [
    JobEdit(description="edited"),
    JobEdit(description="", is_enabled=False),
    JobEdit(is_enabled=True, schedule=ScheduleEdit(type=ScheduleType.DAILY, retry_number=5)),
    JobEdit(backup_type=BackupType.SELECTED_ITEMS, selected_items=ITEMS),
    JobEdit(excluded_items=ITEMS),
    JobEdit(),  # nothing but the version (and the next run, recomputed)
]


def _row(ctx: Context, job_id: str) -> dict[str, Any]:
    with ctx.db.read() as s:
        job = s.get_one(Job, job_id)
        return {c.key: getattr(job, c.key) for c in inspect(Job).columns if c.key != "id"}


def _another_process_writes(data_dir: Path, job_id: str, *, version: bool = True) -> None:
    """Another process sets the job's description to 'theirs' (and its next version)."""
    bump = ", version = version + 1" if version else ""
    other = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)
    try:
        other.execute(f"UPDATE jobs SET description = 'theirs'{bump} WHERE id = ?", (job_id,))
    finally:
        other.close()


def _twin(api: Api, org: dict[str, Any], repo: dict[str, Any]) -> str:
    """A second job of the ``job`` fixture's organization, equal to it but for id and name."""
    body = {"name": "twin", "backupType": "EntireOrganization", "repositoryId": repo["id"]}
    created = api.post(f"/v2/Organizations/{org['id']}/Jobs", body)
    assert created.status_code == 200, created.text
    twin: str = created.json()["id"]
    return twin


def test_the_row_is_the_row_the_orm_writes(
    ctx: Context,
    clock: ManualClock,
    api: Api,
    org: dict[str, Any],
    repo: dict[str, Any],
    job: dict[str, Any],
) -> None:
    twin = _twin(api, org, repo)
    for edit in EDITS:
        clock.advance(timedelta(hours=7))  # the next run moves on
        jobs.edit_job(ctx, job["id"], edit)
        now = jobs.edit_job_now(ctx, twin, edit)
        assert now is not None, edit  # made at once: no lookup, the writer free
        assert now.started is None
        ours, theirs = _row(ctx, twin), _row(ctx, job["id"])
        assert ours.pop("name") == "twin" and theirs.pop("name") == job["name"]
        assert ours == theirs, edit
        assert {c: getattr(now.job, c) for c in ours} == ours  # the answer is the row stored


def test_errors_are_edit_job_s_and_nothing_is_written(ctx: Context, job: dict[str, Any]) -> None:
    before = _row(ctx, job["id"])
    version = before["version"]
    cases: list[tuple[str, JobEdit, int | None, type[Exception]]] = [
        ("00000000-0000-0000-0000-000000000000", JobEdit(), None, NotFound),
        (job["id"], JobEdit(description="x"), version + 5, PreconditionFailed),
        (job["id"], JobEdit(description="bad\x00text"), None, InvalidInput),
        (job["id"], JobEdit(backup_type=BackupType.SELECTED_ITEMS), None, InvalidInput),
    ]
    for job_id, edit, if_match, error in cases:
        with pytest.raises(error) as by_orm:
            jobs.edit_job(ctx, job_id, edit, if_match)
        with pytest.raises(error) as now:
            jobs.edit_job_now(ctx, job_id, edit, if_match)
        assert str(now.value) == str(by_orm.value)
    assert _row(ctx, job["id"]) == before


def test_what_needs_a_lookup_or_a_run_is_declined_unwritten(
    ctx: Context, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    before = _row(ctx, job["id"])
    for edit in [
        JobEdit(name="another name"),  # its uniqueness is a query
        JobEdit(description="a", proxy_id="00000000-0000-0000-0000-000000000000"),
        JobEdit(description="b", repository_id="00000000-0000-0000-0000-000000000000"),
        JobEdit(description="c", run_now=True),  # starts a run after the edit
    ]:
        assert jobs.edit_job_now(ctx, job["id"], edit) is None, edit
    assert _row(ctx, job["id"]) == before
    # the name, repository and proxy it has need no lookup: made at once
    same = JobEdit(
        name=job["name"], repository_id=repo["id"], proxy_id=before["proxy_id"], description="d"
    )
    done = jobs.edit_job_now(ctx, job["id"], same)
    assert done is not None and done.job.version == before["version"] + 1


def test_an_edit_that_changes_nothing_writes_nothing_and_keeps_the_version(
    ctx: Context, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    """Sending what the job holds (a client applying the configuration it keeps) is no edit:
    no version, so an ``If-Match`` taken before stays good, on either path."""
    before = _row(ctx, job["id"])
    same = JobEdit(
        name=job["name"],
        description=before["description"],
        repository_id=repo["id"],
        is_enabled=before["is_enabled"],
    )
    now = jobs.edit_job_now(ctx, job["id"], same, if_match=before["version"])
    assert now is not None and now.job.version == before["version"]
    by_orm = jobs.edit_job(ctx, job["id"], same, if_match=before["version"])
    assert by_orm.job.version == before["version"]
    assert _row(ctx, job["id"]) == before
    changed = jobs.edit_job(ctx, job["id"], JobEdit(description="now it changes"))
    assert changed.job.version == before["version"] + 1


def test_a_write_by_another_process_since_the_read_declines_the_edit(
    ctx: Context, data_dir: Path, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``edit_job_now`` begins deferred (an edit that changes nothing only reads): when another
    process commits between its read and its UPDATE, SQLite refuses the UPDATE (the read is
    stale) and the edit is declined with nothing of it written; the other's write stays."""
    version = _row(ctx, job["id"])["version"]
    read = jobs._JOB_BY_ID.values_in

    def read_then_another_writes(*args: Any) -> Any:
        values = read(*args)
        _another_process_writes(data_dir, job["id"])
        return values

    monkeypatch.setattr(jobs._JOB_BY_ID, "values_in", read_then_another_writes)
    assert jobs.edit_job_now(ctx, job["id"], JobEdit(description="ours")) is None
    monkeypatch.undo()
    after = _row(ctx, job["id"])
    assert (after["description"], after["version"]) == ("theirs", version + 1)


def test_a_busy_writer_is_declined_without_waiting(
    ctx: Context, data_dir: Path, job: dict[str, Any]
) -> None:
    version = _row(ctx, job["id"])["version"]
    with ctx.db.write():  # another writer of this process (the lock is not reentrant)
        assert jobs.edit_job_now(ctx, job["id"], JobEdit(description="x")) is None
    other = sqlite3.connect(data_dir / DATABASE_FILE, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's writer: the catalog is locked
        started = time.monotonic()
        assert jobs.edit_job_now(ctx, job["id"], JobEdit(description="y")) is None
        assert time.monotonic() - started < 10  # its busy handler would wait 30 s
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert _row(ctx, job["id"])["version"] == version
    done = jobs.edit_job_now(ctx, job["id"], JobEdit(description="z"))
    assert done is not None and done.job.version == version + 1


def test_what_the_edit_sends_as_kept_is_not_set_again(ctx: Context, job: dict[str, Any]) -> None:
    """A seed PUT sends mostly what the job holds: only what differs (a next run that moved)
    is set on the job, each instrumented set costing more than the comparison that skips it;
    the schedule keeps its record, equal to the one a new policy would make."""
    stored = jobs.read_job(ctx, job["id"])
    policy = policy_from_record(stored.schedule_policy)
    edit = JobEdit(
        description=stored.description,
        backup_type=BackupType(stored.backup_type),
        is_enabled=stored.is_enabled,
        schedule=ScheduleEdit(type=policy.type, daily_time=policy.daily_time),
    )
    record = stored.schedule_policy
    jobs._apply(None, stored, edit, ctx.clock.now(), ctx.tz)
    assert set(inspect(stored).committed_state) == set()
    assert stored.schedule_policy is record
    done = jobs.edit_job_now(ctx, job["id"], edit)
    assert done is not None and _row(ctx, job["id"])["schedule_policy"] == record


def test_the_edit_on_the_event_loop_sets_no_instrumented_attribute(
    ctx: Context, job: dict[str, Any]
) -> None:
    """``edit_job_now`` applies the edit to the row's plain values and makes the ``Job`` of the
    result once: none of the ORM's attribute events (each a cost of its instrumentation)."""
    fired: list[str] = []
    columns = [c.key for c in inspect(Job).columns]

    def record(name: str) -> Any:
        return lambda *_args: fired.append(name)

    listeners = [(getattr(Job, name), record(name)) for name in columns]
    for attribute, listener in listeners:
        event.listen(attribute, "set", listener)
    try:
        done = jobs.edit_job_now(ctx, job["id"], JobEdit(description="plain", is_enabled=False))
    finally:
        for attribute, listener in listeners:
            event.remove(attribute, "set", listener)
    assert done is not None and fired == []
    assert (done.job.description, done.job.is_enabled, done.job.next_run) == ("plain", False, None)
    assert _row(ctx, job["id"])["version"] == done.job.version


def _tracing(engine: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the DBAPI connections ``engine`` hands out from now on run, as SQLite
    traces it."""
    seen: list[str] = []
    real = engine.raw_connection

    def tracing() -> Any:
        connection = real()
        connection.driver_connection.set_trace_callback(seen.append)
        return connection

    monkeypatch.setattr(engine, "raw_connection", tracing)
    return seen


@pytest.fixture
def traced(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The writer's statements (``write_now`` keeps the connection it makes first)."""
    return _tracing(ctx.db._writer, monkeypatch)


@pytest.fixture
def traced_reads(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The readers' statements (the hot reads' kept connections among them)."""
    for held in list(ctx.db._held.values()):  # made before: back to the pool, made again
        held.close()
    ctx.db._held.clear()
    return _tracing(ctx.db._reader, monkeypatch)


def _seed(job: dict[str, Any], repo: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": job["name"],
        "description": "",
        "isEnabled": True,
        "schedulePolicy": {"type": "Daily", "dailyType": "Wednesday", "dailyTime": "08:00:00"},
        "repositoryId": repo["id"],
        "isRun": "false",
    }


def _verbs(statements: list[str]) -> list[str]:
    return [statement.split()[0].upper() for statement in statements]


def test_a_put_costs_the_same_few_statements_each_time(
    ctx: Context,
    api: Api,
    job: dict[str, Any],
    repo: dict[str, Any],
    traced: list[str],
    traced_reads: list[str],
) -> None:
    """The first seed PUT reads the job in a write transaction (it writes nothing: the job
    holds the body) and reads its row again to keep that finding; every later one is one read
    of the row, as a GET's, and nothing on the writer."""
    seed = _seed(job, repo)

    def puts(n: int) -> tuple[list[str], list[str], int]:
        traced.clear()
        traced_reads.clear()
        with catalog_work(ctx) as work:
            for _ in range(n):
                assert api.put(f"/v2/Jobs/{job['id']}", seed).status_code == 200
        return list(traced), list(traced_reads), work.writes

    assert api.put(f"/v2/Jobs/{job['id']}", seed).status_code == 200  # its schedule set
    first, first_reads, orm_writes = puts(1)
    assert orm_writes == 0  # nothing written through SQLAlchemy (its session, its flush)
    assert _verbs(first) == ["BEGIN", "SELECT", "COMMIT"]  # the job holds the body
    assert first_reads == []  # the finding is kept by the row the edit read
    one, one_reads, orm_writes = puts(1)
    assert (one, orm_writes) == ([], 0) and _verbs(one_reads) == ["SELECT"]  # as a GET's
    four, four_reads, orm_writes = puts(4)
    assert (four, four_reads, orm_writes) == ([], one_reads * 4, 0)
    stored = _row(ctx, job["id"])["version"]
    assert api.get(f"/v2/Jobs/{job['id']}").headers["etag"] == f'"{stored}"'
    seed["description"] = "a change"
    edited, _edited_reads, orm_writes = puts(1)
    assert orm_writes == 0
    assert _verbs(edited) == ["BEGIN", "SELECT", "UPDATE", "COMMIT"]
    assert _row(ctx, job["id"])["version"] == stored + 1


def test_a_kept_finding_answers_only_the_row_it_was_made_on(
    ctx: Context, api: Api, data_dir: Path, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    """A PUT found to change nothing is answered from that finding only while the job's row is
    the one it was found on: another process's edit since, and the same PUT is made again (its
    description back), and an If-Match of the version it was found on is refused."""
    seed, path = _seed(job, repo), f"/v2/Jobs/{job['id']}"
    first = api.put(path, seed)
    version = _row(ctx, job["id"])["version"]
    pinned = {"If-Match": f'"{version}"'}
    for _ in range(2):  # kept, then answered from what was kept
        assert api.put(path, seed).headers["etag"] == first.headers["etag"] == f'"{version}"'
        assert api.put(path, seed, headers=pinned).status_code == 200
    _another_process_writes(data_dir, job["id"])
    refused = api.put(path, seed, headers=pinned)
    assert refused.status_code == 412, refused.text
    again = api.put(path, seed)
    assert again.status_code == 200 and again.headers["etag"] == f'"{version + 2}"'
    assert _row(ctx, job["id"])["description"] == ""
    assert api.put(path, seed).headers["etag"] == f'"{version + 2}"'  # kept again
    api.delete(path)
    assert api.put(path, seed).status_code == 404


def test_a_kept_finding_ends_when_the_job_s_next_run_passes(
    ctx: Context, clock: ManualClock, api: Api, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    """The edit reads the time through the job's next run: once that slot has passed (no
    scheduler here moved it), the same PUT is made again and moves it, a new version; a
    disabled job has no next run, and its finding holds at any time."""
    api = LongLivedApi(api.client, api.token)
    seed, path = _seed(job, repo), f"/v2/Jobs/{job['id']}"
    for _ in range(2):
        api.put(path, seed)
    before = _row(ctx, job["id"])
    assert before["next_run"] is not None
    clock.set(before["next_run"] - timedelta(seconds=1))
    assert api.put(path, seed).headers["etag"] == f'"{before["version"]}"'  # still that slot
    clock.set(before["next_run"])
    moved = api.put(path, seed)
    assert moved.headers["etag"] == f'"{before["version"] + 1}"'
    after = _row(ctx, job["id"])
    assert after["next_run"] == before["next_run"] + timedelta(days=7)  # the next Wednesday
    seed["isEnabled"] = False
    disabled = api.put(path, seed).headers["etag"]
    for days in (0, 400):
        clock.advance(timedelta(days=days))
        assert api.put(path, seed).headers["etag"] == disabled
    assert _row(ctx, job["id"])["next_run"] is None


def test_a_body_never_kept_is_validated_every_time(
    api: Api, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    seed, path = _seed(job, repo), f"/v2/Jobs/{job['id']}"
    seed["schedulePolicy"] = {"type": "Daily", "dailyTime": "25:00:00"}
    for _ in range(3):
        refused = api.put(path, seed)
        assert refused.status_code == 400, refused.text


@pytest.mark.parametrize("enabled", [True, False])
def test_a_no_op_holds_from_when_it_was_found_up_to_the_next_run(enabled: bool) -> None:
    found = START
    next_run = found + timedelta(hours=5)
    no_op = jobs.NoOp(3, found, enabled, next_run, ())
    for now, holds in [
        (found - timedelta(microseconds=1), not enabled),
        (found, True),
        (next_run - timedelta(microseconds=1), True),
        (next_run, not enabled),
        (next_run + timedelta(days=9), not enabled),
    ]:
        assert no_op.holds(now) is holds, now
    assert jobs.NoOp(3, found, True, None, ()).holds(found) is False  # an enabled job without a run


@pytest.mark.postgresql_catalog
def test_on_postgresql_every_edit_is_declined(ctx: Context, job: dict[str, Any]) -> None:
    """A PostgreSQL write is a network round trip: never on the event loop."""
    before = _row(ctx, job["id"])
    assert jobs.edit_job_now(ctx, job["id"], JobEdit(description="x")) is None
    assert _row(ctx, job["id"]) == before


def test_a_finding_is_kept_by_the_row_the_edit_read_and_forgotten_with_it(
    ctx: Context, data_dir: Path, job: dict[str, Any]
) -> None:
    """What an edit found is kept by the snapshot of the row it read in its transaction (the
    snapshot a later read of the same row gives); once the row is another, the finding does
    not answer, and it is forgotten."""
    memo = NoOpEdits()
    key = memo.key(job["id"], b'{"description": ""}', None)
    assert key is not None
    done = jobs.edit_job_now(ctx, job["id"], JobEdit(description=""))
    assert done is not None and done.no_op is not None
    stored = jobs.find_stored_job(ctx, job["id"])
    assert stored is not None and done.no_op.row == stored.snapshot
    memo.learn(key, done.no_op)
    assert memo.found(key, stored, ctx.clock.now()) == done.no_op
    _another_process_writes(data_dir, job["id"], version=False)
    assert memo.found(key, jobs.find_stored_job(ctx, job["id"]), ctx.clock.now()) is None
    assert not memo.known(key)


def test_the_caller_is_known_before_the_if_match_is_read(
    api: Api, job: dict[str, Any], repo: dict[str, Any]
) -> None:
    """A PUT without a token is a 401 whatever its If-Match says, kept body or not; with one,
    an If-Match that is no ETag of this server is a 412."""
    seed, path = _seed(job, repo), f"/v2/Jobs/{job['id']}"
    for _ in range(2):  # kept by the second
        assert api.put(path, seed).status_code == 200
    for headers in ({"If-Match": "not an etag"}, {}):
        anonymous = api.client.put(path, json=seed, headers=headers)
        assert anonymous.status_code == 401, anonymous.text
    refused = api.put(path, seed, headers={"If-Match": "not an etag"})
    assert refused.status_code == 412, refused.text
