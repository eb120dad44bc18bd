"""job sessions counted per hour of creation, status and retry: a filtered set of sessions
counted and paged as every session is

``job_session_hours`` (0022) counted the sessions of each hour, so a page of every session
never counted nor skipped a million of them; a page of the Enterprise Manager query service
filtered by result, state or retry (``result==Success;isRetry==false``) still counted the
sessions its filter keeps and skipped up to half of them by offset: 400-560 ms on SQLite at
1,000,000 sessions. ``job_session_tallies`` splits each hour's count by the two things those
fields are computed from, the status and whether the session is a retry: such a filter keeps
a set of (status, retried) pairs, its count is the sum of their tallies, and a page starts in
the hour where their running sum passes its offset (store/session_hours.py). Every session is
the sum of every tally, so ``job_session_hours`` is dropped.

Triggers keep it exact whatever changes the sessions: inserts and deletes as in 0022 (on
PostgreSQL one statement per statement, through transition tables; on SQLite one per row), and
an update of the creation time, the status or the retry count moves the session from its old
tally to its new one. A later SQLite batch migration that rebuilds ``job_sessions`` drops its
triggers with the old table: it must create them again (``SQLITE`` here).

Revision ID: 0031
Revises: 0028
Create Date: 2026-12-04
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0028"
branch_labels = None
depends_on = None

_PG_HOUR = "date_trunc('hour', {}.creation_time)"
_LITE_HOUR = "strftime('%Y-%m-%d %H:00:00.000000', {}.creation_time)"
FILL = (
    "INSERT INTO job_session_tallies (hour, status, retried, sessions) "
    "SELECT {hour}, s.status, s.retry_count > 0, count(*) FROM job_sessions AS s GROUP BY 1, 2, 3"
)
_KEY = "hour, status, retried"

POSTGRES = (
    f"""
    CREATE FUNCTION job_session_tallies_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO job_session_tallies ({_KEY}, sessions)
        SELECT {_PG_HOUR.format("a")}, a.status, a.retry_count > 0, count(*)
        FROM added AS a GROUP BY 1, 2, 3
        ON CONFLICT ({_KEY})
        DO UPDATE SET sessions = job_session_tallies.sessions + EXCLUDED.sessions;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION job_session_tallies_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE job_session_tallies AS t SET sessions = t.sessions - r.sessions
        FROM (SELECT {_PG_HOUR.format("o")} AS hour, o.status, o.retry_count > 0 AS retried,
                     count(*) AS sessions
              FROM removed AS o GROUP BY 1, 2, 3) AS r
        WHERE (t.hour, t.status, t.retried) = (r.hour, r.status, r.retried);
        DELETE FROM job_session_tallies AS t USING removed AS o
        WHERE (t.hour, t.status, t.retried)
            = ({_PG_HOUR.format("o")}, o.status, o.retry_count > 0)
          AND t.sessions = 0;
        RETURN NULL;
    END $$
    """,
    # A session's status changes as it runs, its retry count when it is retried.
    f"""
    CREATE FUNCTION job_session_tallies_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE job_session_tallies SET sessions = sessions - 1
        WHERE ({_KEY}) = ({_PG_HOUR.format("OLD")}, OLD.status, OLD.retry_count > 0);
        DELETE FROM job_session_tallies
        WHERE ({_KEY}) = ({_PG_HOUR.format("OLD")}, OLD.status, OLD.retry_count > 0)
          AND sessions = 0;
        INSERT INTO job_session_tallies ({_KEY}, sessions)
        VALUES ({_PG_HOUR.format("NEW")}, NEW.status, NEW.retry_count > 0, 1)
        ON CONFLICT ({_KEY}) DO UPDATE SET sessions = job_session_tallies.sessions + 1;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER job_session_tallies_insert AFTER INSERT ON job_sessions "
    "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
    "EXECUTE FUNCTION job_session_tallies_added()",
    "CREATE TRIGGER job_session_tallies_delete AFTER DELETE ON job_sessions "
    "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT "
    "EXECUTE FUNCTION job_session_tallies_removed()",
    "CREATE TRIGGER job_session_tallies_update "
    "AFTER UPDATE OF creation_time, status, retry_count ON job_sessions FOR EACH ROW "
    "WHEN ((OLD.creation_time, OLD.status, OLD.retry_count > 0) "
    "IS DISTINCT FROM (NEW.creation_time, NEW.status, NEW.retry_count > 0)) "
    "EXECUTE FUNCTION job_session_tallies_moved()",
)


def _lite_key(row: str) -> str:
    return f"{_LITE_HOUR.format(row)}, {row}.status, {row}.retry_count > 0"


def _lite_add(row: str) -> str:
    return (
        f"INSERT INTO job_session_tallies ({_KEY}, sessions) VALUES ({_lite_key(row)}, 1) "
        f"ON CONFLICT ({_KEY}) DO UPDATE SET sessions = sessions + 1;"
    )


def _lite_remove(row: str) -> str:
    where = f"({_KEY}) = ({_lite_key(row)})"
    return (
        f"UPDATE job_session_tallies SET sessions = sessions - 1 WHERE {where}; "
        f"DELETE FROM job_session_tallies WHERE {where} AND sessions = 0;"
    )


SQLITE = (
    f"CREATE TRIGGER job_session_tallies_insert AFTER INSERT ON job_sessions BEGIN "
    f"{_lite_add('NEW')} END",
    f"CREATE TRIGGER job_session_tallies_delete AFTER DELETE ON job_sessions BEGIN "
    f"{_lite_remove('OLD')} END",
    "CREATE TRIGGER job_session_tallies_update "
    "AFTER UPDATE OF creation_time, status, retry_count ON job_sessions "
    f"WHEN ({_lite_key('OLD')}) IS NOT ({_lite_key('NEW')}) BEGIN "
    f"{_lite_remove('OLD')} {_lite_add('NEW')} END",
)
TRIGGERS = (
    "job_session_tallies_insert",
    "job_session_tallies_delete",
    "job_session_tallies_update",
)
FUNCTIONS = (
    "job_session_tallies_added",
    "job_session_tallies_removed",
    "job_session_tallies_moved",
)


def _hours_migration() -> object:
    """Migration 0022, whose table this one replaces (its upgrade and downgrade)."""
    path = Path(__file__).with_name("0022_session_hours.py")
    spec = importlib.util.spec_from_file_location("keepstone_migration_0022", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.create_table(
        "job_session_tallies",
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("retried", sa.Boolean(), primary_key=True),
        sa.Column("sessions", sa.Integer(), nullable=False),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute(FILL.format(hour=(_PG_HOUR if postgres else _LITE_HOUR).format("s")))
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)
    _drop_hours(postgres)


def _drop_hours(postgres: bool) -> None:
    hours = _hours_migration()
    for trigger in hours.TRIGGERS:  # type: ignore[attr-defined]
        op.execute(f"DROP TRIGGER {trigger}" + (" ON job_sessions" if postgres else ""))
    if postgres:
        for function in hours.FUNCTIONS:  # type: ignore[attr-defined]
            op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("job_session_hours")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    hours = _hours_migration()
    op.create_table(
        "job_session_hours",
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("sessions", sa.Integer(), nullable=False),
    )
    op.execute(hours.FILL["postgresql" if postgres else "sqlite"])  # type: ignore[attr-defined]
    for statement in hours.POSTGRES if postgres else hours.SQLITE:  # type: ignore[attr-defined]
        op.execute(statement)
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger}" + (" ON job_sessions" if postgres else ""))
    if postgres:
        for function in FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("job_session_tallies")
