"""The query service's filters evaluated by the catalog (api/em/query_sql.py) keep exactly the
rows the in-memory predicate keeps: every filter is asked twice, once as served and once with
the type's catalog paging turned off (every row filtered in memory), and the two answers must
be the same document."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from keepstone.api.em import query_sql, query_types
from keepstone.api.em.query import parse_filter_clause
from keepstone.api.em.query_rows import JOB_FIELDS, SESSION_FIELDS
from keepstone.domain.jobs import JobEdit, ScheduleEdit
from keepstone.domain.policy import ScheduleType
from keepstone.services import jobs
from keepstone.services.context import Context
from keepstone.store.tables import Job, JobSession
from tests import listing_rows as bulk
from tests.conftest import Api
from tests.em.conftest import Em

# Names chosen to sit on every edge of the predicate: case, numbers and dates as names, the two
# characters Python lowers to ASCII, other non-ASCII letters, an ordered word, a boolean word.
NAMES = [
    "Alpha",
    "alpha2",
    "123",
    "2024-01-01T00:00:00Z",
    "\u212a-kelvin",
    "\u0130stanbul",
    "\u00c4rger",
    "zeta",
    "true",
    "Success",
    "job ~ tilde",
    "Beta",
]
ASCII = re.compile("[\x00-\x7f]")
NEXT = datetime(2026, 3, 1, tzinfo=UTC)
EXACT_NAME = "name==ALPHA@2026-01-01t01:40:00.1200050z"

# (filter, whether the catalog evaluates it)
JOB_FILTERS = [
    ("name==alpha", True),
    ("Name!=ALPHA", True),
    ("name>=b", True),
    ("name<zeta", True),
    ("name<=j", True),
    ("name==k-kelvin", True),
    ("name>i;name<j", True),
    ("name>z", True),
    ("name>=\u00e4", False),  # a non-ASCII wanted value
    ("name==123", False),  # a number: "123.0" would match too
    ("name>=2023", False),
    ('description==""', True),
    ('description=="Some TEXT",description>=t', True),
    ("jobtype==backup;platform!=Microsoft365", True),
    ("platform==microsoft365", True),
    ("scheduleenabled==true", True),
    ("scheduleenabled<true", True),
    ("nextrun>=2026-03-01T00:00:03", True),
    ("nextrun<2026-03-01T02:00:05+02:00", True),
    ("nextrun>abc", False),  # text against a time: compared as text in memory
    ("nextrun==none", False),
    ("nosuchfield==x", True),
    ("(name==alpha,description==x);scheduleenabled==false", True),
    ("scheduleconfigured==true", True),
    ("scheduleconfigured!=TRUE;scheduleenabled==true", True),
    ("name==alpha,scheduleconfigured==true", True),
    ("scheduleconfigured>=f", True),
]


def _both(
    em: Em,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    text: str,
    size: int = 1000,
    page: int = 1,
    oldest_by: str = "",
) -> tuple[str, str]:
    """The served answer, and the answer with every row filtered in memory: a page of ``size``
    (newest first, or sorted ascending by ``oldest_by``)."""
    params = {"type": kind, "format": "Entities", "filter": text, "pageSize": str(size)}
    params |= {"page": str(page)} | ({"sortAsc": oldest_by} if oldest_by else {})
    served = em.request("GET", "/api/query", params=params)
    lower = kind.lower()
    with monkeypatch.context() as patched:
        memory = replace(query_types._BY_LOWER_NAME[lower], pager=None)
        patched.setitem(query_types._BY_LOWER_NAME, lower, memory)
        in_memory = em.request("GET", "/api/query", params=params)
    assert served.status_code == in_memory.status_code == 200, (served.text, in_memory.text)
    return served.text, in_memory.text


def _jobs(ctx: Context, template: str) -> list[str]:
    ids = [template, *bulk.copies_of_job(ctx, template, len(NAMES) - 1)]
    with ctx.db.write() as s:
        policy = s.get_one(Job, template).schedule_policy
        for n, (job_id, name) in enumerate(zip(ids, NAMES, strict=True)):
            scheduled = policy | ({"type": "ManualOnly"} if n % 4 == 1 else {})
            s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    name=name,
                    description=["", "some text", "Some TEXT", "x"][n % 4],
                    is_enabled=n % 3 != 0,
                    next_run=None if n % 5 == 0 else NEXT + timedelta(seconds=n),
                    schedule_policy=scheduled,
                    schedule_type=scheduled["type"],  # kept with the policy, as jobs.py does
                )
            )
    return ids


def test_filters_keep_what_the_predicate_keeps(
    em: Em, ctx: Context, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One catalog for jobs and sessions (its setup is most of the cost)."""
    ids = _jobs(ctx, job["id"])
    _check(em, monkeypatch, "Job", JOB_FIELDS, JOB_FILTERS)
    sessions = bulk.add_sessions(ctx, ids[:4], 16)
    statuses = ["Success", "Warning", "Failed", "Stopped", "Running", "Queued"]
    with ctx.db.write() as s:
        for n, session_id in enumerate(sessions):
            s.execute(
                update(JobSession)
                .where(JobSession.id == session_id)
                .values(
                    status=statuses[n % len(statuses)],
                    # Over several hours: a page of a filter on the status and the retry is
                    # found by the hour (store/session_hours.py).
                    # Some with a fraction of a second (a Name shows seven digits of it).
                    creation_time=bulk.BASE
                    + timedelta(minutes=25 * n, microseconds=(n % 3) * 120_005),
                    retry_count=n % 3,
                    progress=(n * 7) % 101,
                    end_time=None if n % 4 == 0 else bulk.BASE + timedelta(seconds=n, minutes=1),
                )
            )
    middle = (bulk.BASE + timedelta(minutes=25 * 8)).strftime("%Y-%m-%dT%H:%M:%S")
    filters = [
        ("result==Failed", True),
        ("result>=warning", True),
        ("result<Failed;state!=working", True),
        ("state==Stopped", True),
        ("isretry==true", True),
        ("progress>=50", True),
        ("progress==abc", False),
        (f"creationtime>={middle}", True),
        (f"CreationTimeUtc<{middle}Z", True),
        ("endtime<=2026-01-01T00:01:07Z", True),
        ("endtime>=2020-01-01", True),
        ("endtime<none", False),
        ("jobname==alpha", True),
        ("jobname>m", True),
        (f"jobuid==urn:veeam:job:{ids[1].upper()}", True),
        (f"uid!=urn:veeam:BackupJobSession:{sessions[3]}", True),
        ("name==x", True),
        ("name==alpha@2026-01-01T00:00:00Z", True),  # the first session
        (EXACT_NAME, True),  # the fifth, with a fraction
        ("name>=alpha@2026-01-01T01:40:00.12", True),
        ("name<alpha2", True),
        ("name!=alpha@2026-01-01T01:40:00Z;name<b", True),
        ("name>\u212a", False),  # a non-ASCII wanted value
        ("name==123@2026-01-01T00:50:00.2400100Z", True),
        # Equality is looked up by the creation time written after the last "@".
        ("name==alpha@2026-01-01T00:00:00.0000000Z", True),  # a whole second has no fraction
        ("name==alpha@2026-02-30T00:00:00Z", True),  # no such day
        ("name==alpha@2026-01-01T00:00:00.120005Z", True),  # six digits: not as written
        ('name=="alpha@2026-01-01 00:00:00"', True),
        ("name==alpha", True),
        ("jobtype==Backup;result==success,nosuch==1", True),
    ]
    _check(em, monkeypatch, "BackupJobSession", SESSION_FIELDS, filters)
    assert (
        _both(em, monkeypatch, "BackupJobSession", EXACT_NAME)[0].count("<BackupJobSession ") == 1
    )
    _check_fields_mapped(em, monkeypatch)
    for text in ("result==Failed", "isretry==true;state==stopped", "result>=warning,isretry!=true"):
        for order in ("", "creationTime"):
            for page in range(1, 5):
                served, in_memory = _both(em, monkeypatch, "BackupJobSession", text, 3, page, order)
                assert served == in_memory, (text, order, page)


def test_the_scheduled_filter_follows_every_writer_of_a_job_s_schedule(
    em: Em,
    api: Api,
    ctx: Context,
    org: dict[str, Any],
    repo: dict[str, Any],
    job: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``scheduleConfigured`` is read in the catalog from the job's ``schedule_type`` (migration
    0032), written beside the policy: after a job is created with a policy, edited by the API
    (the edit on the event loop, ``edit_job_now``, where it can) and by the ORM's edit, and
    cloned, the filter keeps what the policies say (the in-memory answer, read from them)."""
    api_id = _api_job(api, org, repo, "made manual", {"type": "ManualOnly"})
    assert (
        api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": {"type": "ManualOnly"}}).status_code
        == 200
    )
    _assert_manual(em, monkeypatch, ctx, {"made manual", job["name"]})
    jobs.edit_job(ctx, api_id, JobEdit(schedule=ScheduleEdit(type=ScheduleType.PERIODICALLY)))
    _assert_manual(em, monkeypatch, ctx, {job["name"]})
    clone = jobs.clone_job(ctx, job["id"])
    _assert_manual(em, monkeypatch, ctx, {job["name"], clone.name})
    assert (
        api.put(f"/v2/Jobs/{job['id']}", {"schedulePolicy": {"type": "Daily"}}).status_code == 200
    )
    _assert_manual(em, monkeypatch, ctx, {clone.name})


def _api_job(
    api: Api, org: dict[str, Any], repo: dict[str, Any], name: str, policy: dict[str, Any]
) -> str:
    body = {"name": name, "backupType": "EntireOrganization", "repositoryId": repo["id"]}
    created = api.post(f"/v2/Organizations/{org['id']}/Jobs", body | {"schedulePolicy": policy})
    assert created.status_code == 200, created.text
    made: str = created.json()["id"]
    return made


def _assert_manual(em: Em, monkeypatch: pytest.MonkeyPatch, ctx: Context, names: set[str]) -> None:
    with ctx.db.read() as s:
        stored = s.execute(select(Job.name, Job.schedule_type, Job.schedule_policy)).all()
    assert all(kind == policy["type"] for _, kind, policy in stored), stored
    for text, kept in (("scheduleconfigured==false", names), ("scheduleconfigured==true", None)):
        served, in_memory = _both(em, monkeypatch, "Job", text)
        assert served == in_memory, text
        listed = set(re.findall(r'<Job [^>]*Name="([^"]+)"', served))
        assert listed == (kept if kept is not None else {n for n, *_ in stored} - names), text


def _check(
    em: Em,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    fields: query_sql.Fields,
    filters: list[tuple[str, bool]],
) -> None:
    kept_counts = set()
    for text, in_catalog in filters:
        clause = parse_filter_clause(text)[1]
        assert (query_sql.condition(clause, fields) is not None) == in_catalog, text
        served, in_memory = _both(em, monkeypatch, kind, text)
        assert served == in_memory, text
        kept_counts.add(served.count(f"<{kind} "))
    assert len(kept_counts) > 5  # the filters keep different sets, not all or nothing


def _check_fields_mapped(em: Em, monkeypatch: pytest.MonkeyPatch) -> None:
    """A field left out of a map would keep nothing in the catalog and something in memory."""
    seen: dict[str, set[str]] = {}
    for kind, fields in (("Job", JOB_FIELDS), ("BackupJobSession", SESSION_FIELDS)):
        rows = query_types.query_type(kind)
        assert rows is not None
        real = rows.rows

        def record(request: Any, who: Any, real: Any = real, kind: str = kind) -> Any:
            found = real(request, who)
            seen[kind] = set(found[0].fields) if found else set()
            return found

        with monkeypatch.context() as patched:
            lower = kind.lower()
            patched.setitem(
                query_types._BY_LOWER_NAME, lower, replace(rows, rows=record, pager=None)
            )
            em.request("GET", "/api/query", params={"type": kind})
        assert seen[kind] and set(fields) == seen[kind], kind


def test_only_two_characters_lower_to_ascii_outside_it() -> None:
    found = {}
    for start in range(0x80, sys.maxunicode + 1, 512):  # blocks first: one lower() per block
        block = "".join(map(chr, range(start, min(start + 512, sys.maxunicode + 1))))
        if not ASCII.search(block.lower()):
            continue
        found |= {c: c.lower() for c in block if ASCII.search(c.lower())}
    assert found == query_sql.LOWERED_TO_ASCII
