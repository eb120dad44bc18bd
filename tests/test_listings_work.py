"""Listings at scale (issue 15): a page costs the same catalog work whatever the size of the set
and however deep it is, and opening a restore session reads the same from the repository
whatever the size of its restore point. Work is counted (statements, rows loaded, objects read),
never timed."""

from __future__ import annotations

import base64
import gc
import re
import sqlite3
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy import event, update

from keepstone.api.em.jobs import JobXml
from keepstone.clock import ManualClock
from keepstone.domain.jobs import JobEdit, ScheduleEdit, SessionStatus
from keepstone.domain.policy import ScheduleType
from keepstone.engine import Item, LocalStore, writer
from keepstone.services import catalog, jobs, reports, restore_points, restores, runs
from keepstone.services.audit import audited_users
from keepstone.services.context import Context
from keepstone.services.vault import open_repository
from keepstone.store.tables import AuditEvent, Job, JobSession, RestorePoint, TaskSession
from tests import listing_rows as bulk
from tests.conftest import ADMIN_PASSWORD, Api
from tests.work import catalog_work

PAGE = 5
N = 40


@dataclass(frozen=True)
class PageWork:
    statements: int
    rows: int


def page_work(ctx: Context, get: Callable[[], Any]) -> PageWork:
    with catalog_work(ctx) as work:
        response = get()
    assert response.status_code == 200, response.text
    return PageWork(work.count, work.rows_loaded)


def first_and_last(ctx: Context, api: Api, path: str, total: int) -> tuple[PageWork, PageWork]:
    sep = "&" if "?" in path else "?"
    first = page_work(ctx, lambda: api.get(f"{path}{sep}offset=0&limit={PAGE}"))
    last = page_work(ctx, lambda: api.get(f"{path}{sep}offset={total - PAGE}&limit={PAGE}"))
    page = api.get(f"{path}{sep}offset={total - PAGE}&limit={PAGE}").json()
    assert page["totalCount"] == total and len(page["results"]) == PAGE
    return first, last


def assert_paged(small: tuple[PageWork, PageWork], large: tuple[PageWork, PageWork]) -> None:
    """The first and the last page of N and of 4N rows run the same statements and load the
    same rows: the page's, and the few a request reads whatever it lists (its caller, the jobs
    of the page's sessions)."""
    counts = {w.statements for w in (*small, *large)}
    assert len(counts) == 1, f"statements differ: {small} {large}"
    assert {w.rows for w in (*small, *large)} == {small[0].rows}, f"rows differ: {small} {large}"
    assert small[0].rows <= 2 * PAGE + 4  # the page, its jobs, the caller


def test_job_pages_cost_the_same_for_n_and_4n_jobs(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    bulk.copies_of_job(ctx, job["id"], N - 1)
    small = first_and_last(ctx, api, "/v8/Jobs", N)
    bulk.copies_of_job(ctx, job["id"], 3 * N, prefix="more")
    large = first_and_last(ctx, api, "/v8/Jobs", 4 * N)
    assert_paged(small, large)


def test_session_pages_cost_the_same_for_n_and_4n_sessions(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    owners = [job["id"], *bulk.copies_of_job(ctx, job["id"], 3)]
    bulk.add_sessions(ctx, owners, N)
    small = first_and_last(ctx, api, "/v8/JobSessions", N)
    small_job = first_and_last(ctx, api, f"/v6/Jobs/{job['id']}/JobSessions", N // 4)
    bulk.add_sessions(ctx, owners, 3 * N, start=N)
    large = first_and_last(ctx, api, "/v8/JobSessions", 4 * N)
    large_job = first_and_last(ctx, api, f"/v6/Jobs/{job['id']}/JobSessions", N)
    assert_paged(small, large)
    assert_paged(small_job, large_job)


@dataclass(frozen=True)
class Walk:
    """A set walked page after page through its ``next`` links: each page's session ids, and
    the work of its second and its last page (the first counts the set)."""

    ids: list[list[str]]
    second: tuple[int, int, int]
    last: tuple[int, int, int]


def walk_sessions(ctx: Context, api: Api, pages: int, between: Callable[[], Any]) -> Walk:
    """``pages`` consecutive pages of ``/v8/JobSessions`` in one set; ``between`` runs after
    the first half (sessions created meanwhile must not shift the set's pages)."""
    return walk(ctx, api, "/v8/JobSessions", pages, between)


def walk(
    ctx: Context, api: Api, listed: str, pages: int, between: Callable[[], Any] = lambda: None
) -> Walk:
    """``pages`` consecutive pages of a listing in one set, each through the previous page's
    ``next`` offset; ``between`` runs after the first half."""
    sep = "&" if "?" in listed else "?"
    first = api.get(f"{listed}{sep}limit={PAGE}").json()
    ids, set_id = [[r["id"] for r in first["results"]]], first["setId"]
    second = last = (0, 0, 0)
    for n in range(1, pages):
        if n == pages // 2:
            between()
        path = f"{listed}{sep}offset={n * PAGE}&limit={PAGE}&setId={set_id}"
        with catalog_work(ctx) as work:
            response = api.get(path)
        assert response.status_code == 200, response.text
        ids.append([r["id"] for r in response.json()["results"]])
        cost = (work.count, work.rows_loaded, work.vm_steps)
        second, last = (cost, last) if n == 1 else (second, cost)
    return Walk(ids, second, last)


def test_consecutive_session_pages_cost_the_same_at_any_depth(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    """A page that follows the previous page of its set continues from that page's last
    session (keyset paging): its 100th page of 4N sessions costs what its 2nd page of N does
    (statements, rows and, on SQLite, the virtual machine's instructions; an offset skipping
    500 sessions would run thousands more), and the pages are the offset path's."""
    pages, n = 100, 100 * PAGE
    owners = [job["id"], *bulk.copies_of_job(ctx, job["id"], 3)]
    bulk.add_sessions(ctx, owners, n)
    small = walk_sessions(ctx, api, pages, lambda: None)
    bulk.add_sessions(ctx, owners, 3 * n, start=n)
    later = int((ctx.clock.now() - bulk.BASE).total_seconds()) + 1
    large = walk_sessions(ctx, api, pages, lambda: bulk.add_sessions(ctx, owners, 7, start=later))
    costs = {small.second, small.last, large.second, large.last}
    assert len({(c[0], c[1]) for c in costs}) == 1, f"statements or rows differ: {costs}"
    assert small.second[1] <= 2 * PAGE + 4
    steps = [c[2] for c in costs]
    assert max(steps) - min(steps) <= 2, f"instructions differ with depth: {costs}"

    # The same rows, in the same order, as the whole list and as the offset path (each page
    # asked alone, in a new set: pinned now, it leaves out the 7 sessions created mid-walk
    # one second later, which the walked set leaves out too).
    newest = [s.id for s in runs.list_sessions(ctx)]
    assert [i for page in large.ids for i in page] == newest[7 : 7 + pages * PAGE]
    assert [i for page in small.ids for i in page] == newest[7 + 3 * n :][: pages * PAGE]
    for at in (1, pages // 2, pages - 1):
        alone = api.get(f"/v8/JobSessions?offset={at * PAGE}&limit={PAGE}").json()
        assert [r["id"] for r in alone["results"]] == large.ids[at]


def test_session_pages_asked_alone_cost_the_same_at_any_depth(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    """A page of every session asked alone (no ``setId``) neither counts the sessions nor
    skips those before it: the count is the sum of one row per hour of creation, and the page
    skips only sessions of its own hour, from the nearer edge (store/session_hours.py). N and
    4N sessions created over the same two hours: the first, middle and last pages run the same
    statements, load the same rows and, on SQLite, the same instructions (counting 4N sessions
    and skipping 2N index entries runs tens of thousands more)."""
    n = 1000
    bulk.add_sessions(ctx, [job["id"]], n, spacing=7200 / n)  # n/2 in each of two hours

    def pages(total: int) -> list[tuple[int, ...]]:
        newest = [s.id for s in runs.list_sessions(ctx)]
        costs = []
        for offset in (0, total // 2, total - PAGE):
            path = f"/v8/JobSessions?offset={offset}&limit={PAGE}"
            with catalog_work(ctx) as work:
                response = api.get(path)
            assert [r["id"] for r in response.json()["results"]] == newest[offset:][:PAGE]
            # What the listing asks of the catalog, counted alone (a request's other
            # statements, its caller's, vary by a few hundred instructions).
            pinned = runs.SessionFilter(created_until=ctx.clock.now())
            with catalog_work(ctx) as listed:
                runs.list_sessions(
                    ctx, None, offset, PAGE, pinned, total=runs.count_sessions(ctx, pinned)
                )
            costs.append((work.count, work.rows_loaded, listed.vm_steps))
        return costs

    small = pages(n)
    bulk.add_sessions(ctx, [job["id"]], 3 * n, start=1, spacing=7200 / (3 * n))
    large = pages(4 * n)
    costs = {*small, *large}
    assert len({(c[0], c[1]) for c in costs}) == 1, f"statements or rows differ: {costs}"
    steps = [c[2] for c in costs]
    assert max(steps) - min(steps) <= 2, f"instructions differ with size or depth: {costs}"


def test_sessions_counted_by_the_hour_are_every_session(
    ctx: Context, api: Api, job: dict[str, Any], clock: ManualClock
) -> None:
    """Pages found by the hour are the pages of the whole list, newest or oldest first, at
    any offset (within an hour, across hours, at either end), in a set pinned before newer
    sessions came, and after sessions are deleted with their job (a cascade in the catalog,
    which the triggers of migration 0031 count too)."""
    other = bulk.copies_of_job(ctx, job["id"], 1)[0]
    bulk.add_sessions(ctx, [job["id"], other], 60, spacing=600)  # 6 per hour for 10 hours
    clock.set(bulk.BASE + timedelta(days=1))

    def check(total: int) -> None:
        newest = [s.id for s in runs.list_sessions(ctx)]
        assert len(newest) == total == runs.count_sessions(ctx, runs.SessionFilter())
        for offset in (0, 5, 7, total // 2, total - 5, total):
            for limit in (1, 13):
                page = runs.list_sessions(ctx, None, offset, limit, runs.SessionFilter())
                assert [s.id for s in page] == newest[offset : offset + limit], (offset, limit)
                oldest = runs.list_sessions(
                    ctx, None, offset, limit, runs.SessionFilter(), oldest_first=True
                )
                assert [s.id for s in oldest] == newest[::-1][offset : offset + limit]

    check(60)
    listed = api.get("/v8/JobSessions?limit=5").json()
    before = [s.id for s in runs.list_sessions(ctx)]
    clock.advance(timedelta(minutes=1))
    later = int((clock.now() - bulk.BASE).total_seconds()) + 60
    bulk.add_sessions(ctx, [job["id"]], 7, start=later)  # newer than the set's cutoff
    for offset in (3, 31, 55):
        path = f"/v8/JobSessions?offset={offset}&limit=5&setId={listed['setId']}"
        page = api.get(path).json()
        assert page["totalCount"] == 60
        assert [r["id"] for r in page["results"]] == before[offset : offset + 5]
    check(67)
    jobs.delete_job(ctx, other)
    check(37)


def _mix_kinds(ctx: Context, ids: list[str]) -> None:
    """Every third session failed, every fifth a retry (updates: the triggers move them)."""
    with ctx.db.write() as s:
        s.execute(update(JobSession).where(JobSession.id.in_(ids[::3])).values(status="Failed"))
        s.execute(update(JobSession).where(JobSession.id.in_(ids[::5])).values(retry_count=2))


def _of_kinds(sessions: list[JobSession], kinds: frozenset[tuple[str, bool]]) -> list[str]:
    return [s.id for s in sessions if (s.status, s.retry_count > 0) in kinds]


def test_filtered_session_pages_asked_alone_cost_the_same_at_any_depth(
    ctx: Context, client: TestClient, job: dict[str, Any]
) -> None:
    """A query service page of sessions filtered by result and retry (the fields a session's
    status and retry count decide) neither counts the sessions it keeps nor skips those before
    it: both come from the per-hour tallies of each (status, retried) pair
    (store/session_hours.py). N and 4N sessions over the same two hours, a third failed and a
    fifth retried: the first, middle and last pages run the same statements, load the same rows
    and, on SQLite, about the same instructions (counting and skipping thousands of sessions
    runs tens of thousands more)."""
    headers = _em_session(client)
    # 900 sessions over two hours, then 2,700 more: each hour holds a multiple of 15 sessions
    # of each batch, so 8 in 15 of them are kept and the middle page starts an hour.
    n = 900
    _mix_kinds(ctx, bulk.add_sessions(ctx, [job["id"]], n, spacing=7200 / n))
    wanted = "result==Success;isRetry==false"
    kinds = frozenset({("Success", False)})

    def pages() -> list[tuple[int, ...]]:
        kept = _of_kinds(runs.list_sessions(ctx), kinds)
        costs = []
        for page in (1, len(kept) // 2 // PAGE + 1, len(kept) // PAGE):
            query = f"type=BackupJobSession&format=Entities&pageSize={PAGE}&page={page}"
            with catalog_work(ctx) as work:
                response = client.get(f"/api/query?{query}&filter={wanted}", headers=headers)
            assert response.status_code == 200, response.text
            listed = re.findall(r'UID="urn:veeam:BackupJobSession:([^"]+)"', response.text)
            assert listed == kept[(page - 1) * PAGE :][:PAGE]
            assert f'PagesCount="{-(-len(kept) // PAGE)}"' in response.text
            costs.append((work.count, work.rows_loaded, work.vm_steps))
        return costs

    small = pages()
    _mix_kinds(ctx, bulk.add_sessions(ctx, [job["id"]], 3 * n, start=1, spacing=7200 / (3 * n)))
    large = pages()
    costs = {*small, *large}
    assert len({(c[0], c[1]) for c in costs}) == 1, f"statements or rows differ: {costs}"
    steps = [c[2] for c in costs]
    # The request's other statements (its caller's) vary by a few hundred instructions.
    assert max(steps) - min(steps) <= 5, f"instructions differ with size or depth: {costs}"


def test_sessions_of_some_kinds_counted_by_the_hour_are_theirs(
    ctx: Context, job: dict[str, Any], clock: ManualClock
) -> None:
    """Pages of the sessions of some (status, retried) pairs found by the hour are the pages
    of the whole list filtered, newest or oldest first, at any offset, in a set pinned before
    newer sessions came, after sessions change status or are retried, and after sessions are
    deleted with their job (the triggers of migration 0031)."""
    other = bulk.copies_of_job(ctx, job["id"], 1)[0]
    ids = bulk.add_sessions(ctx, [job["id"], other], 60, spacing=600)  # 6 per hour, 10 hours
    _mix_kinds(ctx, ids)
    clock.set(bulk.BASE + timedelta(days=1))
    cutoff = clock.now()
    every = [("Success", False), ("Success", True), ("Failed", False), ("Failed", True)]
    sets = [frozenset(every[:1]), frozenset(every[1:3]), frozenset(every), frozenset()]

    def check(where: runs.SessionFilter) -> None:
        assert where.kinds is not None
        pinned = [s for s in runs.list_sessions(ctx) if s.creation_time <= cutoff]
        newest = _of_kinds(pinned, where.kinds)
        assert runs.count_sessions(ctx, where) == len(newest)
        for offset in {0, 5, 7, len(newest) // 2, max(0, len(newest) - 5), len(newest)}:
            for limit in (1, 13):
                page = runs.list_sessions(ctx, None, offset, limit, where)
                assert [s.id for s in page] == newest[offset : offset + limit], (where, offset)
                oldest = runs.list_sessions(ctx, None, offset, limit, where, oldest_first=True)
                assert [s.id for s in oldest] == newest[::-1][offset : offset + limit]

    def check_all() -> None:
        for kinds in sets:
            check(runs.SessionFilter(kinds=kinds))
            check(runs.SessionFilter(kinds=kinds, created_until=cutoff))

    check_all()
    later = int((clock.now() - bulk.BASE).total_seconds()) + 60
    _mix_kinds(ctx, bulk.add_sessions(ctx, [job["id"]], 7, start=later))  # after the cutoff
    check(runs.SessionFilter(kinds=sets[2], created_until=cutoff))
    cutoff = clock.now() + timedelta(days=1)
    with ctx.db.write() as s:  # sessions change status, retries are counted
        s.execute(update(JobSession).where(JobSession.id.in_(ids[1::4])).values(status="Failed"))
        s.execute(update(JobSession).where(JobSession.id.in_(ids[::7])).values(retry_count=0))
    check_all()
    jobs.delete_job(ctx, other)
    check_all()


def test_log_pages_cost_the_same_for_n_and_4n_items(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    [session] = bulk.add_sessions(ctx, [job["id"]], 1)
    bulk.add_log_items(ctx, session, N)
    path = f"/v8/JobSessions/{session}/LogItems"
    small = first_and_last(ctx, api, path, N)
    small_desc = first_and_last(ctx, api, f"{path}?orderAsc=false&type=Success", N)
    bulk.add_log_items(ctx, session, 3 * N, first_usn=N + 1)
    large = first_and_last(ctx, api, path, 4 * N)
    large_desc = first_and_last(ctx, api, f"{path}?orderAsc=false&type=Success", 4 * N)
    assert_paged(small, large)
    assert_paged(small_desc, large_desc)

    def usns(query: str) -> list[int]:
        return [r["usn"] for r in api.get(f"{path}?{query}").json()["results"]]

    assert usns("orderAsc=false&limit=3") == [4 * N, 4 * N - 1, 4 * N - 2]
    # Past the middle, a page is found from the set's end: the same rows, in the same order.
    assert usns(f"offset={3 * N}&limit=3") == [3 * N + 1, 3 * N + 2, 3 * N + 3]
    assert usns(f"orderAsc=false&offset={4 * N - 2}&limit=5") == [2, 1]
    assert usns(f"offset={2 * N - 1}&limit=2") == [2 * N, 2 * N + 1]


def test_consecutive_log_and_event_pages_cost_the_same_at_any_depth(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    """A session's log items (oldest or newest first, all or of one type) and a restore
    session's events continue from the previous page's last row too: the 2nd and the 40th
    page of N and 4N rows cost the same (statements, rows, SQLite instructions; skipping 200
    index entries would run thousands more), and are the offset path's pages."""
    pages, n = 40, 40 * PAGE
    [session] = bulk.add_sessions(ctx, [job["id"]], 1)
    repository = catalog.list_repositories(ctx)[0]
    org = _org_of(ctx, job["id"])
    bulk.add_points(ctx, repository.id, org, [job["id"]], 1)
    point = restore_points.list_points(ctx)[0].id
    [restore] = bulk.add_restore_sessions(ctx, point, org, 1)
    logs = f"/v8/JobSessions/{session}/LogItems"
    listed = (logs, f"{logs}?orderAsc=false&type=Success", f"/v8/RestoreSessions/{restore}/Events")
    bulk.add_log_items(ctx, session, n)
    bulk.add_events(ctx, restore, n)
    small = [walk(ctx, api, path, pages) for path in listed]
    bulk.add_log_items(ctx, session, 3 * n, first_usn=n + 1)
    bulk.add_events(ctx, restore, 3 * n, first_seq=n + 1)
    large = [walk(ctx, api, path, pages) for path in listed]
    for path, a, b in zip(listed, small, large, strict=True):
        costs = {a.second, a.last, b.second, b.last}
        assert len({(c[0], c[1]) for c in costs}) == 1, f"{path}: {costs}"
        steps = [c[2] for c in costs]
        assert max(steps) - min(steps) <= 2, f"{path}: instructions differ with depth: {costs}"
        sep = "&" if "?" in path else "?"
        for at in (1, pages // 2, pages - 1):
            alone = api.get(f"{path}{sep}offset={at * PAGE}&limit={PAGE}").json()
            assert [r["id"] for r in alone["results"]] == b.ids[at]
    assert large[1].ids[0][0] != large[0].ids[0][0]  # newest first is another order


def test_restore_listings_cost_the_same_for_n_and_4n_rows(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    repository = catalog.list_repositories(ctx)[0]
    org = _org_of(ctx, job["id"])
    bulk.add_points(ctx, repository.id, org, [job["id"]], N)
    point = restore_points.list_points(ctx)[0].id
    sessions = bulk.add_restore_sessions(ctx, point, org, N)
    bulk.add_events(ctx, sessions[0], N)
    events = f"/v8/RestoreSessions/{sessions[0]}/Events"
    small = [
        first_and_last(ctx, api, "/v8/RestorePoints", N),
        first_and_last(ctx, api, "/v8/RestoreSessions", N),
        first_and_last(ctx, api, events, N),
    ]
    bulk.add_points(ctx, repository.id, org, [job["id"]], 3 * N)
    bulk.add_restore_sessions(ctx, point, org, 3 * N)
    bulk.add_events(ctx, sessions[0], 3 * N, first_seq=N + 1)
    large = [
        first_and_last(ctx, api, "/v8/RestorePoints", 4 * N),
        first_and_last(ctx, api, "/v8/RestoreSessions", 4 * N),
        first_and_last(ctx, api, events, 4 * N),
    ]
    for a, b in zip(small, large, strict=True):
        assert_paged(a, b)


def test_used_repositories_and_filtered_points_cost_the_same_for_n_and_4n_points(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    """An organization's used repositories read each job's latest point (one grouped query),
    and a page of points filtered by copy (with each row's isCopy, one query a page) reads its
    page: the same statements and rows for N and 4N points."""
    repository = catalog.list_repositories(ctx)[0]
    org = _org_of(ctx, job["id"])
    used = f"/v8/Organizations/{org}/usedRepositories"
    bulk.add_points(ctx, repository.id, org, [job["id"]], N)
    small_used = page_work(ctx, lambda: api.get(used))
    small_points = first_and_last(ctx, api, "/v8/RestorePoints?isCopy=false", N)
    bulk.add_points(ctx, repository.id, org, [job["id"]], 3 * N)
    assert page_work(ctx, lambda: api.get(used)) == small_used
    assert_paged(small_points, first_and_last(ctx, api, "/v8/RestorePoints?isCopy=false", 4 * N))


def test_audit_items_read_one_entry_per_user_for_n_and_4n_events(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    """An organization's audit items (the users its trail names) are found one index entry
    per user: N and 4N events about the same users cost the same statements and, on SQLite,
    the same instructions (reading every event would run thousands more)."""
    org = _org_of(ctx, job["id"])
    users = [f"user{u}@example.com" for u in (3, 1, 4, 2)]

    def trail(count: int) -> None:
        def event(subject: str, organization: str | None) -> dict[str, Any]:
            return {
                "time": ctx.clock.now(),
                "action": "Save",
                "outcome": "Success",
                "user_name": "admin",
                "organization_id": organization,
                "subject": subject,
                "details": {},
            }

        rows = [event(users[n % 4], org) for n in range(count)]
        rows += [event(f"other{n}", None) for n in range(count)]  # no organization's
        bulk.insert_all(ctx, AuditEvent, rows)

    def listed() -> tuple[list[str], tuple[int, int]]:
        with catalog_work(ctx) as work:
            names = audited_users(ctx, org)
        return names, (work.count, work.vm_steps)

    trail(300)
    small_names, small = listed()
    trail(900)
    large_names, large = listed()
    assert small_names == large_names == sorted(users)
    assert small[0] == large[0]
    assert abs(large[1] - small[1]) <= 2, f"instructions grew with the events: {small} {large}"
    items = api.get(f"/v8/Organizations/{org}/AuditItems")
    assert items.status_code == 200, items.text
    assert len(items.json()) == 4


def test_vms_overview_aggregates_in_the_catalog_for_n_and_4n_tasks(
    ctx: Context, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EM VM overview report is aggregated in the catalog: its figures are those of the
    pure ``vms_overview`` (the specification) over every task and point, from the same
    statements for N and 4N runs, bringing no task nor point into the process."""
    other = bulk.copies_of_job(ctx, job["id"], 1)[0]
    repository = catalog.list_repositories(ctx)[0].id
    org = _org_of(ctx, job["id"])
    statuses = ("Success", "Warning", "Failed", "Running", "Success", "Stopped")

    def history(count: int, start: int) -> None:
        sessions = bulk.add_sessions(ctx, [job["id"], other], count, start=start * 60, spacing=60)
        with ctx.db.write() as s:
            for n, session in enumerate(sessions, start):
                s.get_one(JobSession, session).status = statuses[n % 5]
        tasks, points = [], []
        for n, session in enumerate(sessions, start):
            at = bulk.BASE + timedelta(minutes=n)
            for user in (f"a{n % 7}", f"b{(n + 3) % 11}"):
                tasks.append(
                    {
                        "id": str(uuid.uuid4()),
                        "session_id": session,
                        "object_id": user,
                        "name": user,
                        "status": statuses[n % 3 if user[0] == "a" else (n + 1) % 6],
                        "creation_time": at,
                        "end_time": at,
                        "items": 1,
                        "total_bytes": 100 + n,
                        "read_bytes": 0,
                        "written_bytes": 10 + n % 13,
                        "reason": "",
                    }
                )
            if n % 2 == 0 or n % 9 == 1:  # a point of some runs (a first one of each job too)
                points.append(
                    {
                        "id": str(uuid.uuid4()),
                        "snapshot_id": f"{n:064x}",
                        "repository_id": repository,
                        "job_id": (job["id"], other, None)[n % 3],
                        "organization_id": org,
                        "session_id": None if n % 10 == 4 else session,
                        "backup_time": at,
                        "is_exchange": True,
                        "is_onedrive": False,
                        "item_count": 0,
                        "size": 0,
                    }
                )
        bulk.insert_all(ctx, TaskSession, tasks)
        bulk.insert_all(ctx, RestorePoint, points)

    built = 0

    def counted(*args: Any) -> reports.TaskFacts:
        nonlocal built
        built += 1
        return reports.TaskFacts(*args)

    def report() -> tuple[reports.VmsOverview, int, int]:
        nonlocal built
        built = 0
        with monkeypatch.context() as patched:
            patched.setattr(reports, "TaskFacts", counted)
            with catalog_work(ctx) as work:
                figures = reports.vms_overview_of(ctx)
        expected = reports.vms_overview(reports.task_facts(ctx), reports.point_facts(ctx))
        assert figures == expected
        return figures, work.count, built

    history(40, 0)
    small = report()
    history(120, 40)
    large = report()
    assert small[1:] == large[1:] == (small[1], 0)
    assert large[0].full_points_size > 0 and large[0].incremental_points_size > 0
    assert 0 < large[0].success_percents < 100


def _org_of(ctx: Context, job_id: str) -> str:
    return jobs.get_job(ctx, job_id).organization_id


def _em_session(client: TestClient) -> dict[str, str]:
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    logon = client.post("/api/sessionMngr/?v=latest", headers={"Authorization": f"Basic {basic}"})
    assert logon.status_code == 201, logon.text
    headers = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
    # One use first, so the server remembers the session (services/credential_cache.py) and
    # every counted page pays only for its own work.
    assert client.get("/api/jobs", headers=headers).status_code == 200
    return headers


def test_query_service_pages_cost_the_same_for_n_and_4n_rows(
    ctx: Context, client: TestClient, job: dict[str, Any]
) -> None:
    headers = _em_session(client)
    owners = [job["id"], *bulk.copies_of_job(ctx, job["id"], N - 1)]
    bulk.add_sessions(ctx, owners, N)

    def pages(kind: str, total: int, extra: str = "") -> tuple[PageWork, PageWork]:
        def at(page: int) -> Callable[[], Any]:
            query = f"type={kind}&format=Entities&pageSize={PAGE}&page={page}{extra}"
            return lambda: client.get(f"/api/query?{query}", headers=headers)

        return page_work(ctx, at(1)), page_work(ctx, at(total // PAGE))

    # A filter on fields the catalog holds is evaluated there (api/em/query_sql.py): its pages
    # load their rows only, as unfiltered pages do (these filters keep every row, so the deep
    # page is as deep as the unfiltered one; in memory, each would load every row).
    jobs_kept = "&filter=(name!=nothing;description!=%22nothing%22),name==alpha"
    sessions_kept = "&filter=result==Success;isRetry==false;(jobName>=j,progress<0)"
    kinds = (
        ("Job", ""),
        ("Job", jobs_kept),
        ("BackupJobSession", ""),
        ("BackupJobSession", "&sortAsc=creationTime"),
        ("BackupJobSession", sessions_kept),
        ("BackupJobSession", f"{sessions_kept}&sortAsc=creationTime"),
    )
    small = [pages(kind, N, extra) for kind, extra in kinds]
    more = bulk.copies_of_job(ctx, job["id"], 3 * N, prefix="more")
    bulk.add_sessions(ctx, more, 3 * N, start=N)
    large = [pages(kind, 4 * N, extra) for kind, extra in kinds]
    for a, b in zip(small, large, strict=True):
        assert_paged(a, b)
    oldest = client.get(
        "/api/query?type=BackupJobSession&format=Entities&pageSize=2&sortAsc=creationTime",
        headers=headers,
    )
    assert oldest.status_code == 200 and oldest.text.index("T00:00:00") < oldest.text.index(
        "T00:00:01"
    )


@contextmanager
def json_extractions(ctx: Context) -> Iterator[list[int]]:
    """Count the calls of SQLite's ``json_extract`` on the catalog's connections (each reads a
    value out of one JSON document, decoding it): the function is replaced by one that counts,
    then asks an in-memory SQLite for the built-in's answer."""
    calls = [0]
    builtin = sqlite3.connect(":memory:", check_same_thread=False)
    replaced: dict[int, Any] = {}

    def counted(document: Any, path: Any) -> Any:
        calls[0] += 1
        return builtin.execute("SELECT json_extract(?, ?)", (document, path)).fetchone()[0]

    def replace(conn: Any, *_args: Any) -> None:
        raw = conn.connection.driver_connection
        if id(raw) not in replaced:
            raw.create_function("json_extract", 2, counted, deterministic=True)
            replaced[id(raw)] = raw

    engines = {ctx.db._reader, ctx.db._writer}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", replace)
    try:
        yield calls
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", replace)
        for raw in replaced.values():
            raw.create_function("json_extract", 2, None)  # the built-in again
        builtin.close()


@pytest.mark.sqlite_catalog  # counts SQLite's JSON function calls
def test_scheduled_job_pages_decode_no_job_s_policy(
    ctx: Context, client: TestClient, job: dict[str, Any]
) -> None:
    """``scheduleConfigured`` filters jobs on their ``schedule_type`` column (migration 0032):
    counting the jobs it keeps and finding a page of them decodes no job's schedule policy (it
    read each job's ``type`` out of its policy document to count, and each skipped job's again
    to find the page: 51.9 ms of a middle page on PostgreSQL at 10,000 jobs). N and 4N jobs, a
    quarter made manual by the job edit: the first and the middle page of either filter list
    the jobs their policies say, loading the same rows with the same statements, and SQLite's
    ``json_extract`` runs for none of them."""
    headers = _em_session(client)
    bulk.copies_of_job(ctx, job["id"], N - 1)

    def pages() -> list[tuple[PageWork, PageWork]]:
        every = jobs.list_jobs(ctx)
        manual = ScheduleEdit(type=ScheduleType.MANUAL_ONLY)
        for made in every[::4]:
            jobs.edit_job(ctx, made.id, JobEdit(schedule=manual))
        every = jobs.list_jobs(ctx)
        costs = []
        for wanted in ("true", "false"):
            kept = [
                j.name
                for j in every
                if (j.schedule_policy["type"] != "ManualOnly") == (wanted == "true")
            ]
            query = f"type=Job&format=Entities&pageSize={PAGE}&filter=scheduleConfigured=={wanted}"
            both = []
            for page in (1, len(kept) // PAGE // 2 + 1):
                path = f"/api/query?{query}&page={page}"
                with json_extractions(ctx) as calls:
                    work = page_work(ctx, partial(client.get, path, headers=headers))
                    listed = client.get(path, headers=headers).text
                assert calls == [0], (wanted, page)
                names = re.findall(r'<Job [^>]*Name="([^"]+)"', listed)
                assert names == kept[(page - 1) * PAGE :][:PAGE], (wanted, page)
                both.append(work)
            costs.append((both[0], both[1]))
        return costs

    small = pages()
    bulk.copies_of_job(ctx, job["id"], 3 * N, prefix="more")
    large = pages()
    for a, b in zip(small, large, strict=True):
        assert_paged(a, b)


def test_em_jobs_documents_cost_the_same_statements_for_n_and_4n_jobs(
    ctx: Context, client: TestClient, job: dict[str, Any]
) -> None:
    """``GET /api/jobs`` answers every job in one document: a constant number of statements,
    references without building a job object each, entities one object per job."""
    headers = _em_session(client)

    def documents() -> tuple[PageWork, PageWork]:
        refs, entities = (
            page_work(ctx, lambda path=path: client.get(path, headers=headers))
            for path in ("/api/jobs", "/api/jobs?format=Entity")
        )
        return refs, entities

    bulk.copies_of_job(ctx, job["id"], N - 1)
    small = documents()
    bulk.copies_of_job(ctx, job["id"], 3 * N, prefix="more")
    large = documents()
    assert small[0].statements == large[0].statements
    assert small[1].statements == large[1].statements
    assert small[0].rows == large[0].rows < 4  # the caller, no job
    assert large[1].rows - small[1].rows == 3 * N  # one per job
    listed = client.get("/api/jobs", headers=headers).text
    assert listed.count("<Ref ") == 4 * N and "more 000120" in listed


def test_em_jobs_documents_build_every_job_inside_the_list(
    ctx: Context, client: TestClient, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GET /api/jobs`` (references and entities) makes each job's elements inside the list:
    an element made apart is a document of its own, and appending it to the list moves it
    there (lxml walks it again to reconcile its namespaces), which was most of the per-job
    work. N and 4N jobs: the same number of documents made apart (one per job or more
    before)."""
    headers = _em_session(client)
    made = []
    real = etree.Element

    def counted(*args: Any, **kw: Any) -> Any:
        made.append(args[0])
        return real(*args, **kw)

    def documents() -> list[int]:
        counts = []
        for path in ("/api/jobs", "/api/jobs?format=Entity"):
            made.clear()
            with monkeypatch.context() as patched:
                patched.setattr(etree, "Element", counted)
                response = client.get(path, headers=headers)
            assert response.status_code == 200, response.text
            counts.append(len(made))
        return counts

    bulk.copies_of_job(ctx, job["id"], N - 1)
    small = documents()
    bulk.copies_of_job(ctx, job["id"], 3 * N, prefix="more")
    large = documents()
    assert small == large and max(large) < N, (small, large)
    listed = client.get("/api/jobs?format=Entity", headers=headers).text
    assert listed.count("<Job ") == 4 * N and listed.count("<JobScheduleOptions") == 4 * N


def test_em_job_entities_are_made_once_until_a_job_changes(
    ctx: Context, client: TestClient, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GET /api/jobs?format=Entity`` is kept by every job's ``JobVersion``: asked again it makes
    no entity; an edit, a next run set by the scheduler, a disabled job and a deleted one each
    give the list made again, showing the change, in XML and in JSON."""
    headers = _em_session(client)
    made: list[str] = []
    real = JobXml.entity

    def counted(self: JobXml, job: Any, parent: Any = None) -> Any:
        made.append(job.id)
        return real(self, job, parent)

    monkeypatch.setattr(JobXml, "entity", counted)

    def listed(accept: str = "application/xml") -> str:
        made.clear()
        response = client.get("/api/jobs?format=Entity", headers=headers | {"Accept": accept})
        assert response.status_code == 200, response.text
        return response.text

    bulk.copies_of_job(ctx, job["id"], N - 1)
    first = listed()
    assert len(made) == N and first.count("<Job ") == N
    assert listed() == first and made == []
    assert "a new description" not in first
    jobs.edit_job(ctx, job["id"], JobEdit(description="a new description"))
    assert "a new description" in listed() and len(made) == N
    with ctx.db.write() as s:  # as the scheduler sets it, without an edit
        s.execute(
            update(Job).where(Job.id == job["id"]).values(next_run=datetime(2031, 1, 2, tzinfo=UTC))
        )
    assert "2031-01-02T00:00:00" in listed() and len(made) == N
    jobs.set_enabled(ctx, job["id"], False)
    assert listed().count("<ScheduleEnabled>false</ScheduleEnabled>") == 1
    as_json = listed("application/json")
    assert len(made) == N and as_json.count('"ScheduleEnabled"') == N
    assert listed("application/json") == as_json and made == []
    jobs.delete_job(ctx, job["id"])
    assert listed().count("<Job ") == N - 1 and len(made) == N - 1


# ---- opening a restore session ----------------------------------------------------------------


@dataclass
class Reads:
    objects: list[str]
    ranges: int = 0

    @property
    def kinds(self) -> list[str]:
        """The kinds of objects read (config, keys, snapshots, index...)."""
        return sorted(n.split("/", 1)[0] for n in self.objects)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    counted = Reads([])
    get, get_range = LocalStore.get, LocalStore.get_range

    def counting_get(self: LocalStore, name: str) -> bytes:
        counted.objects.append(name)
        return get(self, name)

    def counting_range(self: LocalStore, name: str, offset: int, length: int) -> bytes:
        counted.ranges += 1
        return get_range(self, name, offset, length)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    monkeypatch.setattr(LocalStore, "get_range", counting_range)
    return counted


def _point(ctx: Context, org: str, job: str, users: int, folders: int, per_folder: int) -> None:
    """A real restore point: ``users`` mailboxes of ``folders`` folders of ``per_folder``
    messages, added as a backup adds them (mailbox by mailbox, folder by folder)."""
    row = catalog.list_repositories(ctx)[0]
    repository = open_repository(ctx, row.id, row.path)
    tags = {restore_points.TAG_JOB: job, restore_points.TAG_ORGANIZATION: org}
    with repository.writer(tags) as run:
        for u in range(users):
            for f in range(folders):
                for m in range(per_folder):
                    content = f"Subject: {u} {f} {m}\r\n\r\nbody {u} {f} {m}\r\n".encode()
                    chunks, size, _ = run.add_file(content)
                    user = f"user{u:03d}"
                    run.add_item(
                        Item(
                            f"{user}/{f}/{m}",
                            user,
                            "mail",
                            f"Inbox/F{f}",
                            size,
                            float(m),
                            0o600,
                            {"subject": f"{m}"},
                            chunks,
                        )
                    )
        snapshot = run.commit(ctx.clock.now())
    info = next(i for i in repository.snapshots() if i.id == snapshot)
    restore_points.record(
        ctx,
        row.id,
        restore_points.SnapshotFacts(
            snapshot, info.time, info.tags, info.item_count, info.size, True, False
        ),
    )


def _open_and_browse(api: Api, org: str, reads: Reads) -> tuple[list[str], int, int, int]:
    """Explore, list the mailboxes and one mailbox's folders: (kinds of objects read, ranges
    read); then one folder's first page: ranges read; and how many items it listed."""
    reads.objects.clear()
    reads.ranges = 0
    session = api.post(f"/v8/Organizations/{org}/explore", {"type": "Vex"})
    assert session.status_code == 201, session.text
    base = f"/v8/RestoreSessions/{session.json()['id']}/Organization/Mailboxes"
    owners = api.get(f"{base}?limit=100").json()["results"]
    folders = api.get(f"{base}/{owners[0]['id']}/Folders?limit=100").json()["results"]
    opened, opened_ranges = reads.kinds, reads.ranges
    leaf = next(f for f in folders if f["name"] == "F1")
    items = api.get(f"{base}/{owners[0]['id']}/Items?folderId={leaf['id']}&limit=100")
    assert items.status_code == 200, items.text
    return opened, opened_ranges, reads.ranges - opened_ranges, len(items.json()["results"])


def test_opening_a_restore_session_reads_the_same_for_n_and_4n_items(
    ctx: Context,
    api: Api,
    job: dict[str, Any],
    reads: Reads,
    monkeypatch: pytest.MonkeyPatch,
    clock: ManualClock,
) -> None:
    """Opening and listing owners and folders read the snapshot object, never a tree; one
    folder's page reads that folder's trees only (the same for a folder of the same size)."""
    monkeypatch.setattr(writer, "TREE_MAX_ITEMS", 10)  # many trees, so reading them all shows
    org = _org_of(ctx, job["id"])
    _point(ctx, org, job["id"], users=2, folders=3, per_folder=10)
    small = _open_and_browse(api, org, reads)
    clock.advance(timedelta(minutes=1))
    _point(ctx, org, job["id"], users=8, folders=3, per_folder=10)
    large = _open_and_browse(api, org, reads)
    assert small[0] == large[0]  # config and the snapshot: the same objects
    assert small[0].count("snapshots") == 1 and "index" not in small[0]  # nor the index
    assert small[1] == large[1] == 0  # no tree (nor any other blob) read to list owners, folders
    assert small[2] == large[2] <= 2  # one folder: its own tree(s)
    assert small[3] == large[3] == 10


def test_a_page_of_an_owners_items_decodes_that_page_alone(
    ctx: Context, api: Api, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mailbox's items without ``folderId`` (every item of the owner) are read a page at a
    time (``restores.OwnerItems``): on a point whose trees each hold one mailbox, as on the
    bench's, the first page and a middle one (asked alone, and within the set) decode their
    own items, not the mailbox's (every item of its trees before: 10,000 on the bench's point,
    about 70 ms), and list what the whole listing lists there."""
    monkeypatch.setattr(writer, "TREE_MAX_ITEMS", 30)  # one tree per mailbox of 3 x 10
    org = _org_of(ctx, job["id"])
    _point(ctx, org, job["id"], users=3, folders=3, per_folder=10)
    decoded: list[str] = []
    real = Item.from_json.__func__  # type: ignore[attr-defined]

    def counted(cls: type[Item], value: object, what: str) -> Item:
        item: Item = real(cls, value, what)
        decoded.append(item.key)
        return item

    session = api.post(f"/v8/Organizations/{org}/explore", {"type": "Vex"})
    assert session.status_code == 201, session.text
    base = f"/v8/RestoreSessions/{session.json()['id']}/Organization/Mailboxes"
    owner = api.get(f"{base}?limit=100").json()["results"][1]["id"]
    items = f"{base}/{owner}/Items"
    pages = []
    with monkeypatch.context() as patched:
        patched.setattr(Item, "from_json", classmethod(counted))
        first = api.get(f"{items}?offset=0&limit=5").json()
        pages.append((first, list(decoded)))
        for asked in ("offset=15&limit=5", f"offset=20&limit=5&setId={first['setId']}"):
            decoded.clear()
            pages.append((api.get(f"{items}?{asked}").json(), list(decoded)))
    whole = api.get(f"{items}?limit=100").json()
    assert whole["totalCount"] == 30 and len(whole["results"]) == 30
    for (page, keys), offset in zip(pages, (0, 15, 20), strict=True):
        assert page["totalCount"] == 30
        assert page["results"] == whole["results"][offset : offset + 5]
        assert keys == [f"user001/{(offset + n) // 10}/{(offset + n) % 10}" for n in range(5)]


def test_a_listed_set_of_an_owners_items_keeps_no_browser_alive(
    ctx: Context, api: Api, job: dict[str, Any]
) -> None:
    """The set a mailbox's items were listed in (kept up to 30 minutes, 256 of them) holds the
    owner's counts, not the session's browser: a browser evicted from the few kept
    (``restores.OPEN_BROWSERS``) is freed with its trees and repository, and the set's next
    page is read through the session's browser opened again."""
    org = _org_of(ctx, job["id"])
    _point(ctx, org, job["id"], users=2, folders=3, per_folder=10)
    session = api.post(f"/v8/Organizations/{org}/explore", {"type": "Vex"}).json()["id"]
    base = f"/v8/RestoreSessions/{session}/Organization/Mailboxes"
    owner = api.get(f"{base}?limit=100").json()["results"][1]["id"]
    first = api.get(f"{base}/{owner}/Items?offset=0&limit=5").json()
    opened = weakref.ref(restores._browsers[session])
    with restores._browsers_lock:
        restores._browsers.clear()  # as when more sessions were opened since
    gc.collect()
    assert opened() is None  # the set did not keep it
    again = api.get(f"{base}/{owner}/Items?offset=5&limit=5&setId={first['setId']}").json()
    whole = api.get(f"{base}/{owner}/Items?limit=100").json()["results"]
    assert again["results"] == whole[5:10] and again["totalCount"] == 30


def test_failures_of_a_page_match_each_sessions_last_failure(
    ctx: Context, job: dict[str, Any]
) -> None:
    sessions = bulk.add_sessions(ctx, [job["id"]], 4)
    runs.add_log(ctx, sessions[0], SessionStatus.FAILED, "first failure")
    runs.add_log(ctx, sessions[0], SessionStatus.SUCCESS, "then fine")
    runs.add_log(ctx, sessions[0], SessionStatus.STOPPED, "stopped at last")
    runs.add_log(ctx, sessions[1], SessionStatus.FAILED, "only failure")
    runs.add_log(ctx, sessions[2], SessionStatus.WARNING, "a warning is no failure")
    found = runs.failures_of(ctx, sessions)
    assert found == {sessions[0]: "stopped at last", sessions[1]: "only failure"}
    assert {s: runs.failure_of(ctx, s) for s in sessions} == {s: found.get(s, "") for s in sessions}
    with catalog_work(ctx) as work:
        runs.failures_of(ctx, sessions)
    assert sum(q.startswith("SELECT") for q in work.statements) == 1  # for the whole page
