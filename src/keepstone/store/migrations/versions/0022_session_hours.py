"""job sessions counted per hour of creation, kept by triggers; audit events indexed by
organization and subject

A page of every job session asked alone (``/vN/JobSessions``, the query service's
``BackupJobSession``) counted the whole set and skipped up to half of it in the creation-time
index: 50-100 ms at 1,000,000 sessions. ``job_session_hours`` holds how many sessions were
created in each hour: the set's count is the sum of its rows, and a page at any offset starts
in the hour the running sum names, skipping only sessions of that hour (store/session_hours.py).

Triggers keep it exact whatever changes the sessions (the services, a job's cascaded delete,
a bulk insert): on PostgreSQL one statement per statement (transition tables), on SQLite one
per row. An hour is the creation time cut to the hour, stored as that instant. A later SQLite
batch migration that rebuilds ``job_sessions`` drops its triggers with the old table: it must
create them again (``SQLITE`` here; tests/test_listings_work.py fails without them).

The users an organization's audit trail names (``/vN/Organizations/{id}/AuditItems``) were
found by reading every event of the organization; the index on (organization, subject) lets
them be found one index entry per user (services/audit.py).

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None

FILL = {
    "postgresql": "INSERT INTO job_session_hours (hour, sessions) "
    "SELECT date_trunc('hour', creation_time), count(*) FROM job_sessions GROUP BY 1",
    "sqlite": "INSERT INTO job_session_hours (hour, sessions) "
    "SELECT strftime('%Y-%m-%d %H:00:00.000000', creation_time), count(*) "
    "FROM job_sessions GROUP BY 1",
}

POSTGRES = (
    """
    CREATE FUNCTION job_session_hours_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO job_session_hours (hour, sessions)
        SELECT date_trunc('hour', creation_time), count(*) FROM added GROUP BY 1
        ON CONFLICT (hour) DO UPDATE SET sessions = job_session_hours.sessions + EXCLUDED.sessions;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION job_session_hours_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE job_session_hours AS h SET sessions = h.sessions - r.sessions
        FROM (SELECT date_trunc('hour', creation_time) AS hour, count(*) AS sessions
              FROM removed GROUP BY 1) AS r
        WHERE h.hour = r.hour;
        DELETE FROM job_session_hours AS h USING removed AS r
        WHERE h.hour = date_trunc('hour', r.creation_time) AND h.sessions = 0;
        RETURN NULL;
    END $$
    """,
    # A creation time never changes today; if one did, its session moves to its new hour.
    """
    CREATE FUNCTION job_session_hours_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE job_session_hours SET sessions = sessions - 1
        WHERE hour = date_trunc('hour', OLD.creation_time);
        DELETE FROM job_session_hours
        WHERE hour = date_trunc('hour', OLD.creation_time) AND sessions = 0;
        INSERT INTO job_session_hours (hour, sessions)
        VALUES (date_trunc('hour', NEW.creation_time), 1)
        ON CONFLICT (hour) DO UPDATE SET sessions = job_session_hours.sessions + 1;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER job_session_hours_insert AFTER INSERT ON job_sessions "
    "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
    "EXECUTE FUNCTION job_session_hours_added()",
    "CREATE TRIGGER job_session_hours_delete AFTER DELETE ON job_sessions "
    "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT "
    "EXECUTE FUNCTION job_session_hours_removed()",
    "CREATE TRIGGER job_session_hours_update AFTER UPDATE OF creation_time ON job_sessions "
    "FOR EACH ROW WHEN (OLD.creation_time IS DISTINCT FROM NEW.creation_time) "
    "EXECUTE FUNCTION job_session_hours_moved()",
)

_HOUR = "strftime('%Y-%m-%d %H:00:00.000000', {}.creation_time)"
_ADD = (
    "INSERT INTO job_session_hours (hour, sessions) VALUES ({hour}, 1) "
    "ON CONFLICT (hour) DO UPDATE SET sessions = sessions + 1;"
)
_REMOVE = (
    "UPDATE job_session_hours SET sessions = sessions - 1 WHERE hour = {hour}; "
    "DELETE FROM job_session_hours WHERE hour = {hour} AND sessions = 0;"
)
SQLITE = (
    "CREATE TRIGGER job_session_hours_insert AFTER INSERT ON job_sessions BEGIN "
    + _ADD.format(hour=_HOUR.format("NEW"))
    + " END",
    "CREATE TRIGGER job_session_hours_delete AFTER DELETE ON job_sessions BEGIN "
    + _REMOVE.format(hour=_HOUR.format("OLD"))
    + " END",
    "CREATE TRIGGER job_session_hours_update AFTER UPDATE OF creation_time ON job_sessions "
    "WHEN OLD.creation_time IS NOT NEW.creation_time BEGIN "
    + _REMOVE.format(hour=_HOUR.format("OLD"))
    + " "
    + _ADD.format(hour=_HOUR.format("NEW"))
    + " END",
)
TRIGGERS = ("job_session_hours_insert", "job_session_hours_delete", "job_session_hours_update")
FUNCTIONS = ("job_session_hours_added", "job_session_hours_removed", "job_session_hours_moved")


def upgrade() -> None:
    op.create_table(
        "job_session_hours",
        sa.Column("hour", sa.DateTime(), primary_key=True),
        sa.Column("sessions", sa.Integer(), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    op.execute(FILL[dialect])
    for statement in POSTGRES if dialect == "postgresql" else SQLITE:
        op.execute(statement)
    op.create_index(
        "ix_audit_events_organization_subject", "audit_events", ["organization_id", "subject"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_organization_subject", "audit_events")
    postgres = op.get_bind().dialect.name == "postgresql"
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger}" + (" ON job_sessions" if postgres else ""))
    if postgres:
        for function in FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("job_session_hours")
