"""``store.prepared.KeyRead``: a row read on a pooled DBAPI connection is the row the ORM loads,
value for value, on both catalogs; a driver error reaches the caller as SQLAlchemy's own (which
the API answers with a 503) and the connection it broke is not handed out again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import inspect, update
from sqlalchemy.exc import DBAPIError

from keepstone.services import jobs
from keepstone.services.context import Context
from keepstone.store.prepared import KeyRead
from keepstone.store.tables import Job


def _columns(job: Job) -> dict[str, Any]:
    return {column.key: getattr(job, column.key) for column in inspect(Job).columns}


def test_a_key_read_is_what_the_orm_loads(ctx: Context, job: dict[str, Any]) -> None:
    when = datetime(2026, 12, 4, 13, 5, 7, 123456, tzinfo=UTC)
    with ctx.db.write() as s:  # every nullable column set, so each type's conversion is seen
        s.execute(
            update(Job)
            .where(Job.id == job["id"])
            .values(last_run=when, last_backup=when, next_run=when, last_status="Warning")
        )
    with ctx.db.read() as s:
        loaded = _columns(s.get_one(Job, job["id"]))
    read = KeyRead(Job)(ctx.db, job["id"])
    assert read is not None and _columns(read) == loaded
    assert {type(v) for v in _columns(read).values()} == {type(v) for v in loaded.values()}
    assert inspect(read).detached or inspect(read).transient  # belongs to no session
    assert jobs.read_job(ctx, job["id"]).last_status == "Warning"


def test_a_missing_key_is_none(ctx: Context) -> None:
    assert KeyRead(Job)(ctx.db, "00000000-0000-0000-0000-000000000000") is None


def test_a_driver_error_is_sqlalchemy_s_and_the_pool_recovers(
    ctx: Context, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = KeyRead(Job)
    assert reads(ctx.db, job["id"]) is not None  # compiled, and a pooled connection used
    invalidated: list[object] = []
    real = ctx.db._reader.raw_connection

    def watched() -> Any:
        connection = real()
        original = connection.invalidate
        connection.invalidate = lambda *a, **k: (invalidated.append(1), original(*a, **k))[1]
        return connection

    monkeypatch.setattr(ctx.db._reader, "raw_connection", watched)
    with ctx.db._writer.begin() as connection:  # a real driver error: the table is not there
        connection.exec_driver_sql("ALTER TABLE jobs RENAME TO jobs_away")
    with pytest.raises(DBAPIError):
        reads(ctx.db, job["id"])
    assert invalidated == [1]
    with ctx.db._writer.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE jobs_away RENAME TO jobs")
    found = reads(ctx.db, job["id"])
    assert found is not None and found.name == job["name"]
