"""``store.prepared.KeyRead``: a row read on a pooled DBAPI connection is the row the ORM loads,
value for value, on both catalogs; a driver error reaches the caller as SQLAlchemy's own (which
the API answers with a 503) and the connection it broke is not handed out again."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, inspect, update
from sqlalchemy.exc import DBAPIError

from keepstone.services import jobs
from keepstone.services.context import Context
from keepstone.store.db import HELD_CONNECTIONS
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


def _checkouts(ctx: Context) -> list[int]:
    counted: list[int] = []
    event.listen(ctx.db._reader, "checkout", lambda *_: counted.append(1))
    return counted


def test_a_loop_keeps_one_connection_and_sees_every_commit(
    ctx: Context, job: dict[str, Any]
) -> None:
    """On SQLite a thread running an event loop reads on a connection it keeps (no pool
    hand-out per read), and each read still sees what was committed since the last one."""
    reads = KeyRead(Job)
    counted = _checkouts(ctx)

    async def statuses() -> list[str | None]:
        seen = []
        for status in ("Success", "Warning", "Failed", "Success", "Warning"):
            with ctx.db.write() as s:
                s.execute(update(Job).where(Job.id == job["id"]).values(last_status=status))
            found = reads(ctx.db, job["id"])
            seen.append(None if found is None else found.last_status)
        return seen

    assert asyncio.run(statuses()) == ["Success", "Warning", "Failed", "Success", "Warning"]
    on_loop = len(counted)
    for _ in range(5):  # off a loop (a worker thread's read): the pool, each time
        assert reads(ctx.db, job["id"]) is not None
    if ctx.db.dialect == "sqlite":
        assert on_loop == 1 and len(counted) == 1 + 5
    else:  # PostgreSQL reads go through the pool everywhere
        assert on_loop == 5 and len(counted) == 10


@pytest.mark.sqlite_catalog
def test_loops_keep_a_bounded_number_of_connections(ctx: Context, job: dict[str, Any]) -> None:
    reads = KeyRead(Job)
    threads = HELD_CONNECTIONS + 3
    together = threading.Barrier(threads)  # all alive at once: no thread id is used twice

    async def read() -> None:
        assert reads(ctx.db, job["id"]) is not None
        together.wait(timeout=60)
        assert reads(ctx.db, job["id"]) is not None  # kept, or the pool's when over the bound

    running = [threading.Thread(target=asyncio.run, args=(read(),)) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    assert len(ctx.db._held) == HELD_CONNECTIONS


@pytest.mark.sqlite_catalog
def test_a_driver_error_on_a_kept_connection_gives_it_back(
    ctx: Context, job: dict[str, Any]
) -> None:
    reads = KeyRead(Job)

    async def around_an_error() -> str:
        assert reads(ctx.db, job["id"]) is not None
        kept = ctx.db._held[threading.get_ident()]
        with ctx.db._writer.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE jobs RENAME TO jobs_away")
        with pytest.raises(DBAPIError):
            reads(ctx.db, job["id"])
        assert threading.get_ident() not in ctx.db._held and not kept.is_valid
        with ctx.db._writer.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE jobs_away RENAME TO jobs")
        found = reads(ctx.db, job["id"])
        assert threading.get_ident() in ctx.db._held
        return "" if found is None else found.name

    assert asyncio.run(around_an_error()) == job["name"]
