"""Counts of bytes go past 2**31 on any real mailbox: a user's task and a restore point keep
them whole on every catalog (PostgreSQL's INTEGER is 32 bits: before migration 0034 a user of
more than 2 GiB failed its run's recording after its content was stored)."""

from __future__ import annotations

from typing import Any

import pytest

from keepstone.domain.jobs import SessionStatus
from keepstone.services import catalog, restore_points, runs, task_sessions
from keepstone.services.context import Context
from keepstone.services.restore_points import SnapshotFacts
from tests.postgres_server import PostgresServer
from tests.store.postgres_columns import before_and_after

GIB = 2**30
BYTE_COUNTS = {
    ("task_sessions", "total_bytes"),
    ("task_sessions", "read_bytes"),
    ("task_sessions", "written_bytes"),
    ("restore_points", "size"),
}


def test_a_users_and_a_restore_points_bytes_past_32_bits_are_kept(
    ctx: Context, job: dict[str, Any]
) -> None:
    session = runs.start_job(ctx, job["id"], "a large mailbox")
    assert session is not None
    task = task_sessions.start(ctx, session.id, ("user-1", "alice"))
    tally = task_sessions.UserTally(
        items=120_000, total_bytes=48 * GIB + 1, read_bytes=40 * GIB + 3, written_bytes=31 * GIB
    )
    task_sessions.finish(ctx, task, SessionStatus.SUCCESS, tally)
    repository = catalog.list_repositories(ctx)[0].id
    tags = {restore_points.TAG_JOB: job["id"], restore_points.TAG_SESSION: session.id}
    facts = SnapshotFacts("ab" * 32, ctx.clock.now(), tags, 120_000, 48 * GIB + 1, True, False)
    point = restore_points.record(ctx, repository, facts)

    (view,) = task_sessions.tasks_of(ctx, session.id)
    assert (view.task.total_bytes, view.task.read_bytes, view.task.written_bytes) == (
        48 * GIB + 1,
        40 * GIB + 3,
        31 * GIB,
    )
    assert restore_points.get_point(ctx, point.id).size == 48 * GIB + 1


@pytest.mark.postgresql_catalog
def test_a_postgresql_catalog_of_revision_0033_takes_its_byte_counts_to_bigint(
    catalog_kind: str, request: pytest.FixtureRequest
) -> None:
    server: PostgresServer = request.getfixturevalue("postgres")
    before, after = before_and_after(server, "0033", "data_type", BYTE_COUNTS)
    assert before == dict.fromkeys(BYTE_COUNTS, "integer")
    assert after == dict.fromkeys(BYTE_COUNTS, "bigint")
