"""a job's schedule type in a column of its own: the query service's filter on whether jobs are
scheduled reads it instead of every job's schedule policy

``/api/query?type=Job&filter=scheduleConfigured==true`` kept the jobs whose policy's ``type`` is
not ``ManualOnly``: the catalog read it out of each job's ``schedule_policy`` (a JSON document of
about 400 bytes, a 168-hour backup window among them) twice a page, to count the set and to
find the page's rows: on PostgreSQL at 10,000 jobs the middle page took 51.9 ms, the unfiltered
one 14.5 ms. ``schedule_type`` holds that ``type``, written with the policy by every writer of a
job (services/jobs.py), and is filled here from the policies already there.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

# Every policy a job was ever given holds a "type" (store/codecs.py ``policy_to_record``).
FILL = {
    "sqlite": "UPDATE jobs SET schedule_type = json_extract(schedule_policy, '$.type')",
    "postgresql": "UPDATE jobs SET schedule_type = schedule_policy ->> 'type'",
}


# The indexes of ``jobs``, in the order the migrations first made them.
INDEXES = (
    ("ix_jobs_next_run", ["next_run"]),
    ("ix_jobs_organization_id", ["organization_id"]),
    ("ix_jobs_repository_id", ["repository_id"]),
    ("ix_jobs_name", ["name", "id"]),
)


def upgrade() -> None:
    # Added empty, filled, then required: SQLite adds a column NOT NULL in place only with a
    # default, which the tables do not declare (batch mode rebuilds the table for that).
    op.add_column("jobs", sa.Column("schedule_type", sa.String(32), nullable=True))
    dialect = op.get_bind().dialect.name
    op.execute(FILL[dialect])
    with op.batch_alter_table("jobs") as jobs:
        jobs.alter_column("schedule_type", existing_type=sa.String(32), nullable=False)
    if dialect == "sqlite":
        _indexes_in_their_first_order()


def _indexes_in_their_first_order() -> None:
    """SQLite's batch mode made the rebuilt table's indexes in a set's order (by object
    identity); its planner weighs indexes that serve a query equally in the order they were
    made (store/sqlite_schema.py), so every migrated catalog makes them in one order."""
    for name, _columns in INDEXES:
        op.drop_index(name, "jobs")
    for name, columns in INDEXES:
        op.create_index(name, "jobs", columns)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("schedule_type")
