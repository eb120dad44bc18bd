"""A restore session's events cost the same per event however many came before (issue 15: the
Nth save used to rewrite the session's whole JSON list of N-1 events)."""

from __future__ import annotations

from datetime import timedelta

from keepstone.engine import Item
from keepstone.services import catalog, restores
from keepstone.services.context import Context, new_id
from keepstone.store.tables import RestorePoint
from tests.work import assert_linear, catalog_work


def _session(ctx: Context) -> str:
    repository = catalog.list_repositories(ctx)[0]
    now = ctx.clock.now()
    with ctx.db.write() as s:
        point = RestorePoint(
            id=new_id(),
            repository_id=repository.id,
            snapshot_id=new_id(),
            backup_time=now,
            is_exchange=True,
            is_onedrive=False,
            item_count=0,
            size=0,
        )
        s.add(point)
    return restores.explore(ctx, point, user_name="admin").id


def _save(ctx: Context, session_id: str, n: int) -> None:
    item = Item(key=f"k{n}", user="alice", kind="mail", path="INBOX", size=n, mtime=0.0, mode=0o600)
    started = ctx.clock.now() - timedelta(seconds=1)
    event = restores.Event("Save", "Success", f"saved {n}", started, item, "alice/INBOX")
    restores.record_event(ctx, session_id, event)


def _work_of_saves(ctx: Context, first: int, count: int) -> tuple[int, int]:
    session_id = _session(ctx)
    for n in range(first):  # the events already there: what a quadratic path pays for
        _save(ctx, session_id, n)
    with catalog_work(ctx) as work:
        for n in range(first, first + count):
            _save(ctx, session_id, n)
    return work.count, work.written_bytes


def test_saves_cost_the_same_catalog_work_late_in_a_session_as_early(ctx: Context) -> None:
    early_statements, early_bytes = _work_of_saves(ctx, 0, 20)
    late_statements, late_bytes = _work_of_saves(ctx, 60, 20)
    assert late_statements == early_statements
    assert late_bytes <= early_bytes * 1.1  # only the numbers' digits differ


def test_n_and_4n_saves_grow_catalog_work_linearly(ctx: Context) -> None:
    small = _work_of_saves(ctx, 0, 15)
    large = _work_of_saves(ctx, 0, 60)
    assert_linear(small[0], large[0], what="statements")
    assert_linear(small[1], large[1], what="bytes written")


def test_events_list_in_the_order_they_ran(ctx: Context) -> None:
    session_id = _session(ctx)
    for n in range(3):
        _save(ctx, session_id, n)
    events = restores.list_events(ctx, session_id)
    assert [e.seq for e in events] == [1, 2, 3]
    assert [e.message for e in events] == ["saved 0", "saved 1", "saved 2"]
    assert events[0].item_size_bytes == 0 and events[2].item_size_bytes == 2
