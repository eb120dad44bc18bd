"""The migrations build exactly the schema the tables declare, and an old catalog moves forward."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from keepstone.clock import ManualClock
from keepstone.domain.jobs import SessionStatus
from keepstone.services import catalog, licensing, restores, runs, task_sessions
from keepstone.services.context import Context, new_id
from keepstone.store.db import Database, sqlite_url
from keepstone.store.tables import Base, RestorePoint
from tests.conftest import ADMIN_PASSWORD, Api
from tests.em.conftest import basic


def test_migrations_match_the_declared_tables(tmp_path: Path) -> None:
    db = Database(sqlite_url(tmp_path / "k.db"))
    db.migrate()
    engine = create_engine(sqlite_url(tmp_path / "k.db"))
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_a_catalog_at_the_first_revision_migrates_forward_keeping_its_rows(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "old.db")
    db = Database(url)
    from alembic import command

    from keepstone.store.db import _alembic_config

    config = _alembic_config(url)
    command.upgrade(config, "0001")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, name, password_hash, role, created_at) "
                "VALUES ('u1', 'old-admin', 'x', 'Administrator', '2026-01-01 00:00:00')"
            )
        )
    db.migrate()  # what every later start does
    with engine.connect() as connection:
        head = ScriptDirectory.from_config(config).get_current_head()
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        assert connection.execute(text("SELECT name FROM users")).scalar() == "old-admin"
    columns = {c["name"] for c in inspect(engine).get_columns("job_sessions")}
    assert {"scheduled_for", "not_before", "lease_expires_at", "manual"} <= columns
    db.migrate()  # and again: a no-op


def test_opening_a_catalog_while_another_process_writes_waits_instead_of_failing(
    tmp_path: Path,
) -> None:
    """A CLI command beside a server that is still creating the catalog: switching a database
    to WAL fails at once while another connection writes (SQLite calls no busy handler for it),
    so the open must wait its turn instead of failing."""
    import sqlite3
    import threading
    import time

    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE early (x)")  # not in WAL yet, as during a first start
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO early VALUES (1)")
    threading.Timer(0.5, lambda: holder.execute("COMMIT")).start()
    started = time.monotonic()
    db = Database(sqlite_url(path))
    db.migrate()
    with db.read() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert time.monotonic() - started >= 0.4  # it waited for the writer, then went on
    holder.close()


def test_a_catalog_with_runs_from_before_task_sessions_gains_them_and_keeps_its_runs(
    ctx: Context, job: dict[str, Any]
) -> None:
    """Revision 0009 on a catalog of revision 0008 that holds a job session: the session stays,
    and the engine can record its users."""
    from alembic import command

    from keepstone.store.db import _alembic_config

    session = runs.start_job(ctx, job["id"], "before the upgrade")
    assert session is not None
    config = _alembic_config(ctx.db.url)
    command.downgrade(config, "0008")
    engine = create_engine(ctx.db.url)
    assert "task_sessions" not in inspect(engine).get_table_names()

    ctx.db.migrate()
    assert "task_sessions" in inspect(engine).get_table_names()
    assert runs.get_session(ctx, session.id).details == "before the upgrade"
    task = task_sessions.start(ctx, session.id, ("user-1", "alice"))
    assert [t.task.id for t in task_sessions.tasks_of(ctx, session.id)] == [task]
    engine.dispose()


def test_restore_events_kept_as_a_json_list_move_to_their_own_rows(tmp_path: Path) -> None:
    import json

    from alembic import command

    from keepstone.store.db import _alembic_config

    url = sqlite_url(tmp_path / "old.db")
    command.upgrade(_alembic_config(url), "0015")
    event = {
        "id": "e1",
        "order": 1,
        "type": "Save",
        "status": "Success",
        "title": "Save success",
        "message": "saved 'Hello'",
        "startTime": "2026-11-30T10:00:00+00:00",
        "endTime": "2026-11-30T10:00:03+00:00",
        "duration": "00:00:03",
        "itemName": "Hello.eml",
        "itemType": "mail",
        "itemSizeBytes": 42,
        "source": "alice/INBOX",
        "target": "",
    }
    engine = create_engine(url)
    with engine.begin() as connection:
        for insert in (
            "INSERT INTO proxies (id, host_name, description, port, threads_number, is_local)"
            " VALUES ('x1', 'here', '', 9193, 4, 1)",
            "INSERT INTO repositories (id, name, description, path, proxy_id, retention)"
            " VALUES ('r1', 'repo', '', '/nowhere', 'x1', '{}')",
            "INSERT INTO restore_points (id, repository_id, snapshot_id, backup_time,"
            " is_exchange, is_onedrive, item_count, size)"
            " VALUES ('p1', 'r1', 'abc', '2026-11-30 09:00:00', 1, 0, 2, 84)",
        ):
            connection.execute(text(insert))
        connection.execute(
            text(
                "INSERT INTO restore_sessions (id, restore_point_id, type, state, result,"
                " creation_time, initiated_by, details, statistics, events) VALUES ('s1', 'p1',"
                " 'Vex', 'Working', 'Success', '2026-11-30 10:00:00', 'admin', '', '{}', :events)"
            ),
            {"events": json.dumps([event, {**event, "id": "e2", "order": 2, "status": "Failed"}])},
        )
    Database(url).migrate()
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, seq, status, start_time, end_time, item_size_bytes FROM restore_events"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("e1", 1, "Success", "2026-11-30 10:00:00.000000", "2026-11-30 10:00:03.000000", 42),
        ("e2", 2, "Failed", "2026-11-30 10:00:00.000000", "2026-11-30 10:00:03.000000", 42),
    ]
    assert "events" not in {c["name"] for c in inspect(engine).get_columns("restore_sessions")}


def test_licensed_users_are_backfilled_from_the_runs_log_items(
    ctx: Context, org: dict[str, Any], job: dict[str, Any], clock: ManualClock
) -> None:
    """Revision 0017 on a catalog of 0016: the licensed users are the users of successful
    per-user log items, one per (organization, user), with the latest backup's name and time."""
    from alembic import command

    from keepstone.store.db import _alembic_config

    proxy = next(p.id for p in catalog.list_proxies(ctx) if p.is_local)
    first_time = clock.now()
    for user, status in (
        (("a", "alice"), SessionStatus.SUCCESS),
        (("b", "bob"), SessionStatus.FAILED),
        (("c", "carol"), SessionStatus.WARNING),
    ):
        _finished_run(ctx, job["id"], proxy, user, status)
        clock.advance(timedelta(minutes=10))
    _finished_run(ctx, job["id"], proxy, ("a", "alice (renamed)"), SessionStatus.SUCCESS)
    _finished_run(ctx, job["id"], proxy, ("b", "bob"), SessionStatus.SUCCESS)
    expected = licensing.licensed_users(ctx)
    assert [(u.id, u.name, u.last_backup) for u in expected] == [
        ("a", "alice (renamed)", clock.now()),
        ("b", "bob", clock.now()),
    ]

    command.downgrade(_alembic_config(ctx.db.url), "0016")
    engine = create_engine(ctx.db.url)
    assert "licensed_users" not in inspect(engine).get_table_names()
    engine.dispose()
    ctx.db.migrate()
    assert licensing.licensed_users(ctx) == expected
    with ctx.db.read() as s:
        firsts = dict(s.execute(text("SELECT user_id, first_backup FROM licensed_users")).all())
    assert str(firsts["a"]).startswith(first_time.strftime("%Y-%m-%d %H:%M:%S"))


def _finished_run(
    ctx: Context, job_id: str, proxy: str, user: tuple[str, str], status: SessionStatus
) -> None:
    assert runs.start_job(ctx, job_id, "a run") is not None
    run = runs.claim_next(ctx, proxy)
    assert run is not None
    runs.add_log(ctx, run.session_id, status, f"User {user[1]}", user)
    runs.end_attempt(ctx, run, proxy, SessionStatus.SUCCESS, "done", {}, 1)


def test_the_outbox_and_the_mail_settings_survive_the_daily_digest_migration(
    ctx: Context, job: dict[str, Any]
) -> None:
    """Revision 0023 on a catalog of 0022 holding mail settings and an unsent mail: both stay,
    the settings without a digest day, and the outbox then takes a session-less digest row."""
    from alembic import command

    from keepstone.services import notifications
    from keepstone.store.db import _alembic_config

    settings = {"enableNotification": True, "smtpServer": "127.0.0.1", "sender": "k@example.test"}
    notifications.put_settings(ctx, {**settings, "to": "ops@example.test"}, None)
    proxy = next(p.id for p in catalog.list_proxies(ctx) if p.is_local)
    _finished_run(ctx, job["id"], proxy, ("a", "alice"), SessionStatus.SUCCESS)
    [mail] = notifications.pending(ctx)

    command.downgrade(_alembic_config(ctx.db.url), "0022")
    engine = create_engine(ctx.db.url)
    assert "digest_day" not in {c["name"] for c in inspect(engine).get_columns("mail_outbox")}
    engine.dispose()
    ctx.db.migrate()
    [kept] = notifications.pending(ctx)
    assert (kept.id, kept.session_id, kept.result, kept.digest_day) == (
        mail.id,
        mail.session_id,
        "Success",
        None,
    )
    assert notifications.get_settings(ctx)[0].smtpServer == "127.0.0.1"
    notifications.put_settings(ctx, {"dailyDigest": True, "dailyDigestTime": "09:00"}, None)
    ctx.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    assert notifications.queue_digest(ctx)
    assert sorted(str(row.digest_day) for row in notifications.pending(ctx)) == [
        "2026-06-11",
        "None",
    ]


def test_the_jobs_schedule_types_are_filled_from_their_policies(
    ctx: Context, api: Api, org: dict[str, Any], repo: dict[str, Any]
) -> None:
    """Revision 0032 on a catalog of 0031 holding jobs of each schedule type: each job's
    ``schedule_type`` is its policy's ``type``, required from then on, and the query service's
    filter on it keeps the jobs the policies say; on SQLite, the rebuilt table's indexes are
    made in the order the migrations first made them."""
    from alembic import command

    from keepstone.store.db import _alembic_config

    made = {}
    for kind in ("Daily", "Periodically", "ManualOnly", "Daily"):
        body = {
            "name": f"{kind} {len(made)}",
            "backupType": "EntireOrganization",
            "repositoryId": repo["id"],
            "schedulePolicy": {"type": kind},
        }
        created = api.post(f"/v2/Organizations/{org['id']}/Jobs", body)
        assert created.status_code == 200, created.text
        made[created.json()["id"]] = kind
    command.downgrade(_alembic_config(ctx.db.url), "0031")
    engine = create_engine(ctx.db.url)
    assert "schedule_type" not in {c["name"] for c in inspect(engine).get_columns("jobs")}
    ctx.db.migrate()
    with engine.connect() as connection:
        filled = dict(connection.execute(text("SELECT id, schedule_type FROM jobs")).all())
        column = next(
            c for c in inspect(connection).get_columns("jobs") if c["name"] == "schedule_type"
        )
        if engine.dialect.name == "sqlite":
            order = "SELECT name FROM sqlite_master WHERE tbl_name = 'jobs' AND type = 'index'"
            indexes = [n for (n,) in connection.execute(text(f"{order} ORDER BY rowid"))]
            assert [i for i in indexes if not i.startswith("sqlite_")] == [
                "ix_jobs_next_run",
                "ix_jobs_organization_id",
                "ix_jobs_repository_id",
                "ix_jobs_name",
            ]
    engine.dispose()
    assert filled == made and column["nullable"] is False
    logon = api.client.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
    manual = api.client.get(
        "/api/query?type=Job&format=Entities&filter=scheduleConfigured==false",
        headers={"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]},
    )
    assert re.findall(r'<Job [^>]*Name="([^"]+)"', manual.text) == ["ManualOnly 2"]


def test_the_restore_sessions_count_their_events(ctx: Context) -> None:
    """Revision 0033 on a catalog of 0032 holding restore sessions of 3 events, of none and
    of 2 numbered 5 and 7 (an old JSON list's "order", as 0016 kept it): each session's
    ``events_count`` is its events, required from then on, and every session's events are
    listed and counted as before."""
    from alembic import command

    from keepstone.store.db import _alembic_config

    three, none, old = (_restore_session(ctx) for _ in range(3))
    for n in range(3):
        started = ctx.clock.now()
        event = restores.Event("Restore", "Success", f"put back {n}", started, None, "alice")
        restores.record_event(ctx, three, event)
    command.downgrade(_alembic_config(ctx.db.url), "0032")
    engine = create_engine(ctx.db.url)
    assert "events_count" not in {
        c["name"] for c in inspect(engine).get_columns("restore_sessions")
    }
    with engine.begin() as connection:
        for seq in (5, 7):
            connection.execute(
                text(
                    "INSERT INTO restore_events (id, session_id, seq, type, status, message,"
                    " start_time, end_time, item_name, item_type, item_size_bytes, source, target)"
                    " VALUES (:id, :session, :seq, 'Save', 'Success', '', :at, :at, '', '', 0,"
                    " '', '')"
                ),
                {"id": f"e{seq}", "session": old, "seq": seq, "at": ctx.clock.now()},
            )
    ctx.db.migrate()
    with engine.connect() as connection:
        counts = dict(
            connection.execute(text("SELECT id, events_count FROM restore_sessions")).all()
        )
        column = next(
            c
            for c in inspect(connection).get_columns("restore_sessions")
            if c["name"] == "events_count"
        )
    engine.dispose()
    assert counts == {three: 3, none: 0, old: 2} and column["nullable"] is False
    for session, seqs in ((three, [1, 2, 3]), (none, []), (old, [5, 7])):
        assert [e.seq for e in restores.list_events(ctx, session)] == seqs
        assert [e.seq for e in restores.list_events(ctx, session, 1, 1, 9, len(seqs))] == seqs[1:2]
        assert restores.count_events(ctx, session, 9) == len(seqs)


def _restore_session(ctx: Context) -> str:
    repository = catalog.list_repositories(ctx)[0]
    point = RestorePoint(
        id=new_id(),
        repository_id=repository.id,
        snapshot_id=new_id(),
        backup_time=ctx.clock.now(),
        is_exchange=True,
        is_onedrive=False,
        item_count=0,
        size=0,
    )
    with ctx.db.write() as s:
        s.add(point)
    return restores.explore(ctx, point, user_name="admin").id


def test_the_head_revision_is_alembic_s_and_a_catalog_there_is_left_alone(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from alembic import command
    from alembic.config import Config

    from keepstone.store import db as db_module

    config = Config()
    config.set_main_option("script_location", str(Path(db_module.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == db_module.HEAD_REVISION
    db = Database(sqlite_url(tmp_path / "k.db"))
    assert db.revision() is None  # a new catalog
    db.migrate()
    assert db.revision() == db_module.HEAD_REVISION

    def refused(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("Alembic ran on a catalog at the head revision")

    monkeypatch.setattr(command, "upgrade", refused)
    Database(sqlite_url(tmp_path / "k.db")).migrate()
    with db._writer.begin() as connection:  # one revision behind: Alembic runs again
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0023'")
    with pytest.raises(AssertionError, match="Alembic ran"):
        Database(sqlite_url(tmp_path / "k.db")).migrate()
