"""Catalog rows in bulk for listings at scale: jobs, job sessions, log items, restore points,
restore sessions and their events, inserted directly (one executemany per batch). The scaling
tests of listings (tests/test_listings_work.py) and bench/listings.py both fill catalogs with
them."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update

from keepstone.services.context import Context
from keepstone.store.tables import (
    Job,
    JobSession,
    LogItem,
    RestoreEvent,
    RestorePoint,
    RestoreSession,
    User,
)

BATCH = 10_000
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def new_ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def insert_all(ctx: Context, table: Any, rows: Iterable[dict[str, Any]]) -> None:
    """Rows in batches, each batch one transaction of one executemany."""
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            with ctx.db.write() as s:
                s.execute(insert(table), batch)
            batch = []
    if batch:
        with ctx.db.write() as s:
            s.execute(insert(table), batch)


def copies_of_job(ctx: Context, template_id: str, count: int, prefix: str = "job") -> list[str]:
    """``count`` jobs shaped like the template (same organization, repository, schedule),
    named ``<prefix> 000001``...; returns their ids."""
    with ctx.db.read() as s:
        template = s.get(Job, template_id)
        assert template is not None
        shape = {c.name: getattr(template, c.key) for c in Job.__table__.columns}
    ids = new_ids(count)
    insert_all(
        ctx, Job, (shape | {"id": j, "name": f"{prefix} {n:06d}"} for n, j in enumerate(ids, 1))
    )
    return ids


def add_sessions(
    ctx: Context, job_ids: Sequence[str], count: int, start: int = 0, spacing: float = 1
) -> list[str]:
    """``count`` ended sessions spread over ``job_ids``, ``spacing`` seconds apart from
    ``BASE`` on (``start`` seconds later); returns their ids, oldest first."""
    ids = new_ids(count)

    def rows() -> Iterator[dict[str, Any]]:
        for n, session_id in enumerate(ids):
            created = BASE + timedelta(seconds=start + n * spacing)
            yield {
                "id": session_id,
                "job_id": job_ids[n % len(job_ids)],
                "status": "Success",
                "creation_time": created,
                "end_time": created + timedelta(seconds=30),
                "progress": 100,
                "retry_count": 0,
                "statistics": {},
                "details": "",
                "stop_requested": False,
                "claimed_by": None,
                "scheduled_for": None,
                "manual": True,
                "not_before": None,
                "lease_expires_at": None,
                "attempt_started_at": None,
            }

    insert_all(ctx, JobSession, rows())
    return ids


def add_log_items(ctx: Context, session_id: str, count: int, first_usn: int = 1) -> None:
    insert_all(
        ctx,
        LogItem,
        (
            {
                "id": str(uuid.uuid4()),
                "session_id": session_id,
                "usn": first_usn + n,
                "status": "Success",
                "message": f"Processed item {n}",
                "creation_time": BASE + timedelta(milliseconds=n),
                "end_time": BASE + timedelta(milliseconds=n),
                "subject_id": None,
                "subject_name": None,
            }
            for n in range(count)
        ),
    )


def add_points(
    ctx: Context, repository_id: str, organization_id: str, job_ids: Sequence[str], count: int
) -> None:
    """``count`` restore points (of snapshots that exist only in the catalog), a minute apart."""
    times = (BASE + timedelta(minutes=n) for n in range(count))
    add_points_at(ctx, repository_id, organization_id, job_ids, times)


def add_points_at(
    ctx: Context,
    repository_id: str,
    organization_id: str,
    job_ids: Sequence[str | None],
    times: Iterable[datetime],
) -> None:
    """A restore point taken at each of ``times``, the n-th of ``job_ids[n % len(job_ids)]``."""
    insert_all(
        ctx,
        RestorePoint,
        (
            {
                "id": str(uuid.uuid4()),
                "repository_id": repository_id,
                "snapshot_id": uuid.uuid4().hex * 2,
                "job_id": job_ids[n % len(job_ids)],
                "organization_id": organization_id,
                "session_id": None,
                "backup_time": time,
                "is_exchange": True,
                "is_onedrive": False,
                "item_count": 0,
                "size": 0,
            }
            for n, time in enumerate(times)
        ),
    )


def add_restore_sessions(
    ctx: Context, point_id: str, organization_id: str, count: int
) -> list[str]:
    """``count`` stopped restore sessions of one point, a second apart; ids oldest first."""
    ids = new_ids(count)
    insert_all(
        ctx,
        RestoreSession,
        (
            {
                "id": r,
                "restore_point_id": point_id,
                "organization_id": organization_id,
                "type": "Vex",
                "state": "Stopped",
                "result": "Success",
                "creation_time": BASE + timedelta(seconds=n),
                "end_time": BASE + timedelta(seconds=n + 1),
                "initiated_by": "admin",
                "details": "",
                "statistics": {"restored": 0, "skipped": 0, "failed": 0, "bytes": 0},
            }
            for n, r in enumerate(ids)
        ),
    )
    return ids


def add_events(ctx: Context, session_id: str, count: int, first_seq: int = 1) -> None:
    """``count`` events numbered from ``first_seq``, counted in the session's row as
    ``record_event`` counts each."""
    insert_all(
        ctx,
        RestoreEvent,
        (
            {
                "id": str(uuid.uuid4()),
                "session_id": session_id,
                "seq": first_seq + n,
                "type": "Save",
                "status": "Success",
                "message": f"Saved message {n}.eml",
                "start_time": BASE,
                "end_time": BASE,
                "item_name": f"message {n}.eml",
                "item_type": "mail",
                "item_size_bytes": 100,
                "source": "user",
                "target": "download",
            }
            for n in range(count)
        ),
    )
    with ctx.db.write() as s:
        counted = RestoreSession.events_count + count
        s.execute(
            update(RestoreSession)
            .where(RestoreSession.id == session_id)
            .values(events_count=counted)
        )


def add_users(ctx: Context, names: Sequence[str], roles: Sequence[str], password_hash: str) -> None:
    """Keepstone users, the n-th with ``roles[n % len(roles)]``, all with one password hash
    (hashing is not what the listings measure)."""
    insert_all(
        ctx,
        User,
        (
            {
                "id": str(uuid.uuid4()),
                "name": name,
                "password_hash": password_hash,
                "role": roles[n % len(roles)],
                "created_at": BASE,
            }
            for n, name in enumerate(names)
        ),
    )
