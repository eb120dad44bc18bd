"""Every path that loops over items costs the catalog the same per item however many came before
(issue 15): for N and 4N items the statements, the written bytes and (on SQLite) the virtual
machine's instructions grow at most linearly, and the reads that answer about the history (the
licence) cost the same whatever its length.

Restore events (saves) have their own file, tests/test_restore_events_work.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from keepstone.clock import ManualClock
from keepstone.domain.jobs import JobEdit, SessionStatus
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import (
    audit,
    catalog,
    copy_jobs,
    jobs,
    licensing,
    reports,
    restore_points,
    restores,
    runs,
    task_sessions,
)
from keepstone.services.audit import AuditAction, Entry
from keepstone.services.context import Context, new_id
from keepstone.services.copy_jobs import CopyJobEdit
from keepstone.services.restore_points import SnapshotFacts
from keepstone.services.task_sessions import UserTally
from keepstone.store.tables import LogItem
from tests.conftest import Api
from tests.local_org import Organization, backup_proxy
from tests.work import CatalogWork, assert_linear, catalog_work, stored_bytes

__all__ = ["backup_proxy"]  # a fixture, used by name

Work = tuple[int, int, int]  # statements, written bytes, SQLite VM steps


def _work(ctx: Context, action: Callable[[], object]) -> Work:
    with catalog_work(ctx) as work:
        action()
    return _totals(work)


def _totals(work: CatalogWork) -> Work:
    return work.count, work.written_bytes, work.vm_steps


def _assert_linear(small: Work, large: Work) -> None:
    assert_linear(small[0], large[0], what="statements")
    assert_linear(small[1], large[1], what="bytes written")
    assert_linear(small[2], large[2], what="SQLite VM steps")


def _n_and_4n(ctx: Context, step: Callable[[int, int], None], n: int) -> tuple[Work, Work]:
    """``step(first, count)`` for N items, then for 4N more: both linear, and their work."""
    small = _work(ctx, partial(step, 0, n))
    large = _work(ctx, partial(step, n, 4 * n))
    _assert_linear(small, large)
    return small, large


def _claimed(ctx: Context, job_id: str) -> runs.ClaimedRun:
    """A run of ``job_id``, claimed by the built-in proxy."""
    assert runs.start_job(ctx, job_id, "a scaling test") is not None
    run = runs.claim_next(ctx, _local_proxy(ctx))
    assert run is not None
    return run


def _local_proxy(ctx: Context) -> str:
    return next(p.id for p in catalog.list_proxies(ctx) if p.is_local)


# ---- a run's log items: one insert each, the sequence number one index lookup --------------


def _prefill_log(ctx: Context, session_id: str, count: int) -> None:
    """``count`` earlier items in the session, written in one statement."""
    now = ctx.clock.now()
    rows = [
        {
            "id": new_id(),
            "session_id": session_id,
            "usn": 100 + n,
            "status": SessionStatus.SUCCESS.value,
            "message": f"earlier item {n}",
            "creation_time": now,
            "end_time": now,
        }
        for n in range(count)
    ]
    with ctx.db.write() as s:
        s.execute(insert(LogItem), rows)


def _log(ctx: Context, session_id: str, first: int, count: int) -> None:
    for n in range(first, first + count):
        runs.add_log(ctx, session_id, SessionStatus.WARNING, f"User u{n}: item {n} unreadable")


def test_n_and_4n_log_items_grow_catalog_work_linearly(ctx: Context, job: dict[str, Any]) -> None:
    session_id = _claimed(ctx, job["id"]).session_id
    _n_and_4n(ctx, partial(_log, ctx, session_id), 25)


def test_a_log_item_costs_the_same_after_thousands_in_its_session(
    ctx: Context, job: dict[str, Any]
) -> None:
    """The session's highest sequence number is looked up per append: with an index on the
    session alone SQLite read every earlier item for it (steps grew with the session)."""
    early_session = _claimed(ctx, job["id"]).session_id
    early = _work(ctx, lambda: _log(ctx, early_session, 0, 10))
    runs.end_attempt(
        ctx, runs.AttemptOf(early_session, 0), _local_proxy(ctx), SessionStatus.SUCCESS, "", {}, 0
    )
    late_session = _claimed(ctx, job["id"]).session_id
    _prefill_log(ctx, late_session, 5_000)
    late = _work(ctx, lambda: _log(ctx, late_session, 0, 10))
    assert late[0] == early[0]
    assert late[1] <= early[1] * 1.1 + 16
    assert late[2] <= early[2] * 1.5 + 20  # 5,000 earlier items read per append: ~100x


def test_log_items_take_storage_in_proportion(ctx: Context, job: dict[str, Any]) -> None:
    """SQLite's pages (PostgreSQL's database size) grow in proportion to the items logged."""
    session_id = _claimed(ctx, job["id"]).session_id
    before = stored_bytes(ctx)
    _log(ctx, session_id, 0, 200)
    small = stored_bytes(ctx) - before
    _log(ctx, session_id, 200, 800)
    large = stored_bytes(ctx) - before - small
    page = 8192  # growth comes in pages (and PostgreSQL's relation extensions)
    assert large <= 4 * small * 1.25 + 16 * page, (small, large)


# ---- a run's users: task sessions (processed objects), their log item and licence ------------


def _finish_users(ctx: Context, run: runs.ClaimedRun, first: int, count: int) -> None:
    """What a run does per user: its task session started and finished, its outcome logged
    (which licenses the user)."""
    for n in range(first, first + count):
        subject = (f"user-{n:05d}", f"user {n}")
        task = task_sessions.start(ctx, run.session_id, subject)
        tally = UserTally(items=n, total_bytes=10 * n, read_bytes=n, written_bytes=n)
        task_sessions.finish(ctx, task, SessionStatus.SUCCESS, tally)
        runs.add_log(ctx, run.session_id, SessionStatus.SUCCESS, f"User {n}: done", subject)


def test_n_and_4n_users_of_a_run_grow_catalog_work_linearly(
    ctx: Context, job: dict[str, Any]
) -> None:
    run = _claimed(ctx, job["id"])
    _n_and_4n(ctx, partial(_finish_users, ctx, run), 15)
    assert len(task_sessions.processed_objects(ctx, run.session_id)) == 75
    assert licensing.count_licensed(ctx) == 75


def test_a_user_costs_the_same_late_in_a_run_as_early(ctx: Context, job: dict[str, Any]) -> None:
    run = _claimed(ctx, job["id"])
    early = _work(ctx, lambda: _finish_users(ctx, run, 0, 10))
    _finish_users(ctx, run, 10, 200)
    late = _work(ctx, lambda: _finish_users(ctx, run, 210, 10))
    assert late[0] == early[0]
    assert late[1] <= early[1] * 1.1 + 16
    assert late[2] <= early[2] * 1.5 + 20


# ---- progress: a renewal publishes fixed-size counters, never a growing list -----------------


def _publish(ctx: Context, run: runs.ClaimedRun, first: int, count: int) -> None:
    proxy = _local_proxy(ctx)
    for n in range(first, first + count):
        statistics: runs.Statistics = {
            **runs.EMPTY_STATISTICS,
            "read_items": n,
            "read_bytes": 1000 * n,
        }
        assert runs.renew_lease(ctx, run, proxy, statistics, n) is runs.RunState.CONTINUE


def test_publishing_progress_n_and_4n_times_grows_catalog_work_linearly(
    ctx: Context, job: dict[str, Any]
) -> None:
    run = _claimed(ctx, job["id"])
    _n_and_4n(ctx, partial(_publish, ctx, run), 25)
    again = _work(ctx, lambda: _publish(ctx, run, 125, 25))
    late = _work(ctx, lambda: _publish(ctx, run, 100_000, 25))
    assert late[0] == again[0] and late[1] <= again[1] * 1.1  # the same per publication


def _backup_of(api: Api, tmp_path: Path, name: str, users: int, mails: int) -> dict[str, Any]:
    """A Local organization of ``users`` users with ``mails`` messages each, and its job."""
    organization = Organization(tmp_path / name)
    for u in range(users):
        user = f"u{u}"
        organization.user(user)
        for m in range(mails):
            organization.mail(user, "", f"message {m}")
    org = api.post(
        "/v2/Organizations",
        {"type": "Local", "name": name, "localSettings": {"path": str(organization.root)}},
    ).json()
    repository = api.get("/v2/BackupRepositories").json()[0]
    job = api.post(
        f"/v2/Organizations/{org['id']}/Jobs",
        {"name": name, "repositoryId": repository["id"], "schedulePolicy": {"type": "ManualOnly"}},
    ).json()
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    return dict(job)


@pytest.mark.parametrize(
    ("small", "large"),
    [((1, 15), (1, 60)), ((4, 1), (16, 1))],
    ids=["items", "users"],
)
def test_a_backup_of_n_and_4n_items_or_users_grows_catalog_work_linearly(
    ctx: Context,
    api: Api,
    backup_proxy: ProxyWorker,
    tmp_path: Path,
    small: tuple[int, int],
    large: tuple[int, int],
) -> None:
    """A real backup (users, messages each), publishing its progress at every item
    (``renew_every=0``)."""
    measured = []
    for name, (users, mails) in (("small", small), ("large", large)):
        _backup_of(api, tmp_path, name, users=users, mails=mails)
        with catalog_work(ctx) as work:
            assert backup_proxy.run_one()
        measured.append(_totals(work))
    _assert_linear(*measured)
    assert licensing.count_licensed(ctx) == small[0] + large[0]


def test_a_backup_writes_two_catalog_transactions_per_user(
    ctx: Context, api: Api, backup_proxy: ProxyWorker, tmp_path: Path
) -> None:
    """N and 4N users: each user's task starts in one transaction and ends, with its success
    log item (which licenses it), in another (three before: the log item had its own)."""
    for name, users in (("small", 3), ("large", 12)):
        _backup_of(api, tmp_path, name, users=users, mails=1)
        with catalog_work(ctx) as work:
            assert backup_proxy.run_one()
        of_users = [
            t for t in work.transactions if any("task_sessions" in w or "log_items" in w for w in t)
        ]
        # The run's start and end touch them too, once each whatever its users.
        assert len(of_users) <= 2 * users + 2, (users, len(of_users))
    assert licensing.count_licensed(ctx) == 15


# ---- licensing: its answers read the licensed users, never the history ------------------------


def _license_reads(ctx: Context) -> Work:
    def read() -> None:
        licensing.license_of(ctx)
        licensing.licensed_users(ctx)
        licensing.count_licensed(ctx, "no such organization")

    return _work(ctx, read)


def test_the_licence_costs_the_same_whatever_the_number_of_runs(
    ctx: Context, job: dict[str, Any], clock: ManualClock
) -> None:
    def runs_of_three_users(count: int) -> None:
        for _ in range(count):
            run = _claimed(ctx, job["id"])
            _finish_users(ctx, run, 0, 3)
            proxy = _local_proxy(ctx)
            runs.end_attempt(ctx, run, proxy, SessionStatus.SUCCESS, "done", {}, 3)
            clock.advance(timedelta(minutes=5))

    runs_of_three_users(2)
    few = _license_reads(ctx)
    runs_of_three_users(8)
    many = _license_reads(ctx)
    assert many[0] == few[0]  # the same statements
    assert many[2] <= few[2] * 1.2 + 10  # and the same rows read: 3 users, however many runs
    assert licensing.license_of(ctx).used_units == 3


def test_the_licence_upsert_is_built_once_not_per_user(
    ctx: Context, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """N and 4N users finished: the statement that licenses each is built at most once in the
    process (built per user, it was as much work again as running it)."""
    built: list[str] = []
    real = licensing._upsert_of

    def building(dialect: str) -> Any:
        built.append(dialect)
        return real(dialect)

    monkeypatch.setattr(licensing, "_upsert_of", building)
    run = _claimed(ctx, job["id"])
    _finish_users(ctx, run, 0, 5)
    first = len(built)
    _finish_users(ctx, run, 5, 20)
    assert len(built) == first <= 1
    assert licensing.count_licensed(ctx) == 25


def test_licensed_users_are_who_a_run_finished_with_their_latest_backup(
    ctx: Context, org: dict[str, Any], job: dict[str, Any], clock: ManualClock
) -> None:
    proxy = _local_proxy(ctx)
    first = _claimed(ctx, job["id"])
    first_time = clock.now()
    runs.add_log(ctx, first.session_id, SessionStatus.SUCCESS, "alice done", ("a", "alice"))
    runs.add_log(ctx, first.session_id, SessionStatus.WARNING, "bob: item", ("b", "bob"))
    runs.add_log(ctx, first.session_id, SessionStatus.FAILED, "carol failed", ("c", "carol"))
    runs.end_attempt(ctx, first, proxy, SessionStatus.WARNING, "done", {}, 1)
    assert [u.name for u in licensing.licensed_users(ctx)] == ["alice"]

    clock.advance(timedelta(hours=1))
    second = _claimed(ctx, job["id"])
    runs.add_log(ctx, second.session_id, SessionStatus.SUCCESS, "bob done", ("b", "bob"))
    runs.add_log(ctx, second.session_id, SessionStatus.SUCCESS, "alice done", ("a", "alice2"))
    users = licensing.licensed_users(ctx)
    assert [(u.id, u.name) for u in users] == [("a", "alice2"), ("b", "bob")]
    assert all(u.last_backup == clock.now() for u in users)
    assert {u.organization_id for u in users} == {org["id"]}
    assert [u.name for u in licensing.licensed_users(ctx, name="ob")] == ["bob"]
    assert licensing.count_licensed(ctx, org["id"]) == 2
    assert licensing.licensed_users(ctx, organization_id="elsewhere") == []
    assert first_time < clock.now()


# ---- putting back and saving N items: the session's counts, never a list per item -------------


def _restore_session(ctx: Context, job: dict[str, Any]) -> str:
    point = restore_points.list_points(ctx, job_id=job["id"])[0]
    session_id = restores.explore(ctx, point, user_name="admin").id
    restores.browser(ctx, session_id)  # opening the point is the read path's, not counted here
    return session_id


def _put_back_all(ctx: Context, session_id: str) -> None:
    view = restores.browser(ctx, session_id)
    owner = next(iter(view.owners))
    counts = restores.restore(ctx, session_id, owner, None, kind="mail", by="admin")
    assert counts.failed == 0 and counts.restored + counts.skipped > 0


def _save_each(ctx: Context, session_id: str) -> None:
    view = restores.browser(ctx, session_id)
    owner = next(iter(view.owners))
    for item in view.contents(owner, "mail", None):
        _, chunks = restores.stream_item(ctx, session_id, owner, restores.item_id(item.key), by="a")
        b"".join(chunks)


def _zip_all(ctx: Context, session_id: str) -> None:
    view = restores.browser(ctx, session_id)
    owner = next(iter(view.owners))
    ids = [restores.item_id(item.key) for item in view.contents(owner, "mail", None)]
    target = Path(str(ctx.data_dir)) / f"{session_id}.zip"
    assert restores.write_zip(ctx, session_id, owner, ids, target, by="admin") == len(ids)


@pytest.mark.parametrize(
    "action", [_put_back_all, _save_each, _zip_all], ids=["put back", "save each", "zip"]
)
def test_putting_back_or_saving_n_and_4n_items_grows_catalog_work_linearly(
    ctx: Context,
    api: Api,
    backup_proxy: ProxyWorker,
    tmp_path: Path,
    action: Callable[[Context, str], None],
) -> None:
    measured = []
    for name, mails in (("small", 10), ("large", 40)):
        job = _backup_of(api, tmp_path, name, users=1, mails=mails)
        assert backup_proxy.run_one()
        session_id = _restore_session(ctx, job)
        measured.append(_work(ctx, partial(action, ctx, session_id)))
        events = restores.list_events(ctx, session_id)
        assert len(events) == (mails if action is _save_each else 1)  # a put-back, a zip: one
    _assert_linear(*measured)


# ---- the audit trail: one insert per entry -----------------------------------------------------


def _audit(ctx: Context, first: int, count: int) -> None:
    for n in range(first, first + count):
        details = {"restoreSession": "s", "items": 1, "message": f"saved {n}"}
        audit.record(ctx, Entry(AuditAction.SAVE, "admin", subject=f"u{n}", details=details))


def test_n_and_4n_audit_entries_grow_catalog_work_linearly(ctx: Context) -> None:
    small, _ = _n_and_4n(ctx, partial(_audit, ctx), 25)
    late = _work(ctx, lambda: _audit(ctx, 1000, 25))
    assert late[0] == small[0] and late[2] <= small[2] * 1.5 + 20


# ---- restore points: recording N copies, and retention removing N ------------------------------


def _facts(n: int, job_id: str, clock: ManualClock, tag: str = "copied") -> SnapshotFacts:
    tags = {restore_points.TAG_JOB: job_id, restore_points.TAG_SESSION: f"{tag}-{n}"}
    time = clock.now() - timedelta(hours=n)
    return SnapshotFacts(f"{n:064x}", time, tags, 10, 1000, True, False)


def test_recording_n_and_4n_copied_restore_points_grows_catalog_work_linearly(
    ctx: Context, job: dict[str, Any], clock: ManualClock
) -> None:
    """What a copy job's run does in the catalog: one restore point per copied snapshot."""
    repository = catalog.list_repositories(ctx)[0].id

    def record(first: int, count: int) -> None:
        for n in range(first, first + count):
            restore_points.record(ctx, repository, _facts(n, job["id"], clock))

    _n_and_4n(ctx, record, 10)


def test_retention_removing_n_and_4n_restore_points_grows_catalog_work_linearly(
    ctx: Context, job: dict[str, Any], clock: ManualClock, tmp_path: Path
) -> None:
    """Retention forgets snapshots, then rebuilds the repository's catalog: the restore points
    of the forgotten ones are removed."""
    measured = []
    for tag, count in (("small", 10), ("large", 40)):
        repository = catalog.create_repository(
            ctx, catalog.RepositoryEdit(name=tag, path=str(tmp_path / tag))
        ).id
        every = [_facts(n, job["id"], clock, tag) for n in range(count)]
        restore_points.rebuild(ctx, repository, every)
        measured.append(_work(ctx, partial(restore_points.rebuild, ctx, repository, every[:1])))
        assert len(restore_points.list_points(ctx, repository_id=repository)) == 1
    _assert_linear(*measured)


# ---- reports: aggregates in the catalog, and the last days' tasks only -------------------------


def test_reports_cost_the_same_statements_whatever_the_history_and_read_recent_tasks_only(
    ctx: Context, job: dict[str, Any], clock: ManualClock
) -> None:
    proxy = _local_proxy(ctx)

    def old_runs(count: int) -> None:
        for _ in range(count):
            run = _claimed(ctx, job["id"])
            _finish_users(ctx, run, 0, 2)
            clock.advance(timedelta(minutes=30))
            runs.end_attempt(ctx, run, proxy, SessionStatus.SUCCESS, "done", {}, 2)
            clock.advance(timedelta(days=1))

    def read() -> None:
        reports.job_statistics(ctx)
        reports.processed_days(ctx, 7)

    old_runs(3)
    clock.advance(timedelta(days=30))  # those runs are history now
    few = _work(ctx, read)
    old_runs(12)
    clock.advance(timedelta(days=30))
    many = _work(ctx, read)
    assert many[0] == few[0]
    assert reports.job_statistics(ctx).longest_seconds == 30 * 60
    assert reports.job_statistics(ctx).total_runs == 15
    assert all(day.backed_up == 0 for day in reports.processed_days(ctx, 7))
    assert reports.task_facts(ctx, ended_since=clock.now() - timedelta(days=7)) == []


# ---- copy jobs: deleting one with N and 4N runs ------------------------------------------------


def test_deleting_a_copy_job_costs_the_same_whatever_its_runs(
    ctx: Context, org: dict[str, Any], tmp_path: Path
) -> None:
    source = catalog.list_repositories(ctx)[0]
    target = catalog.create_repository(
        ctx, catalog.RepositoryEdit(name="copies", path=str(tmp_path / "copies"))
    )
    measured = []
    for name, count in (("small", 5), ("large", 20)):
        job = jobs.create_job(ctx, org["id"], JobEdit(name=name, repository_id=source.id)).job
        copy = copy_jobs.create_copy_job(
            ctx, CopyJobEdit(job.id, target.id, immediate=False, schedule=None)
        )
        for _ in range(count):
            copy_jobs.start_copy_job(ctx, copy.id)
            copy_jobs.stop_copy_job(ctx, copy.id)  # still queued: stopped at once
        measured.append(_work(ctx, partial(copy_jobs.delete_copy_job, ctx, copy.id)))
        assert runs.count_sessions(ctx, runs.SessionFilter(job_type="copy")) == 0
    assert measured[1][0] == measured[0][0]  # the same statements, not one per run
