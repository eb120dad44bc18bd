"""A restore session's events cost the same per event however many came before (issue 15: the
Nth save used to rewrite the session's whole JSON list of N-1 events), and a page of them, or
their count, the same however many there are (events numbered 1..n are found by seq)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from keepstone.engine import Item
from keepstone.services import catalog, restores
from keepstone.services.context import Context, new_id
from keepstone.store.paging import page_of
from keepstone.store.tables import RestoreEvent as EventRow
from keepstone.store.tables import RestorePoint
from keepstone.store.tables import RestoreSession as SessionRow
from tests import listing_rows as bulk
from tests.work import assert_linear, catalog_work

PAGE = 30


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


# ---- a session's events paged by seq (issue 15: a page and the count in O(log n)) ----------

UNTILS = (None, 0, 1, 4, 7, 9)  # pins: none, empty, inside, at the end, past it
OFFSETS, LIMITS = range(10), (None, *range(1, 10))


def _pages(ctx: Context, session_id: str) -> Iterator[tuple[Any, ...]]:
    """Every (pin, offset, limit) of a small session: the pages and counts listed, and what
    the session's whole ordered list says they are."""
    with ctx.db.read() as s:
        ordered = select(EventRow.seq, EventRow.id).order_by(EventRow.seq, EventRow.id)
        every = [tuple(r) for r in s.execute(ordered.where(EventRow.session_id == session_id))]
    for until in UNTILS:
        kept = [e for e in every if until is None or e[0] <= until]
        count = restores.count_events(ctx, session_id, until)
        yield "count", until, count, len(kept)
        for offset in OFFSETS:
            for limit in LIMITS:
                page = restores.list_events(ctx, session_id, offset, limit, until, len(kept))
                end = None if limit is None else offset + limit
                yield until, offset, limit, [(e.seq, e.id) for e in page], kept[offset:end]


def _offset_path_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> list[Any]:
        assert kwargs.get("after") is not None, "a page of events numbered 1..n was skipped to"
        return page_of(*args, **kwargs)

    monkeypatch.setattr(restores, "page_of", refused)


def test_pages_of_events_numbered_1_to_n_are_found_by_seq_and_are_the_offset_path_s(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page (offset 0..9, limit 1..9 or none, pinned or not) of a session of 7 saves
    is the window of its ordered list, found by seq: never by the offset path; the count is
    the listed set's."""
    session_id = _session(ctx)
    for n in range(7):
        _save(ctx, session_id, n)
    _offset_path_refused(monkeypatch)
    for case in _pages(ctx, session_id):
        assert case[-2] == case[-1], case


def _insert_events(ctx: Context, session_id: str, seqs: list[int]) -> None:
    """Events as migration 0016 could leave them (their old "order" kept) and migration 0033
    counted them."""
    rows = [
        {"id": new_id(), "session_id": session_id, "seq": seq, "type": "Save", "status": "Success"}
        | {"message": f"old {seq}", "start_time": ctx.clock.now(), "end_time": ctx.clock.now()}
        for seq in seqs
    ]
    with ctx.db.write() as s:
        s.execute(insert(EventRow), rows)
        s.execute(
            update(SessionRow).where(SessionRow.id == session_id).values(events_count=len(seqs))
        )


@pytest.mark.parametrize("seqs", [[2, 3, 5, 8, 9], [0, 2, 3, 4, 5], [-1, 1, 2, 4, 5]])
def test_events_not_numbered_1_to_n_are_listed_exactly_the_old_way(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, seqs: list[int]
) -> None:
    """Seqs with holes, from 0 or below (what 0016 could leave; the last two counted as many as
    their highest seq, which only their lowest tells apart from 1..n): every page and count is
    the ordered list's, through the offset path, before and after a save numbers one more."""
    session_id = _session(ctx)
    _insert_events(ctx, session_id, seqs)
    skipped = []

    def counted(*args: Any, **kwargs: Any) -> list[Any]:
        skipped.append(kwargs)
        return page_of(*args, **kwargs)

    monkeypatch.setattr(restores, "page_of", counted)
    for save in range(2):
        if save:
            _save(ctx, session_id, 99)
        cases = list(_pages(ctx, session_id))
        for case in cases:
            assert case[-2] == case[-1], case
        assert len(skipped) == len(cases) - len(UNTILS)  # every page
        skipped.clear()
    assert [e.seq for e in restores.list_events(ctx, session_id)] == [*seqs, seqs[-1] + 1]


def _kept_count(ctx: Context, session_id: str) -> int:
    with ctx.db.read() as s:
        return s.scalars(select(SessionRow.events_count).where(SessionRow.id == session_id)).one()


def test_the_session_counts_its_events_as_each_is_recorded(ctx: Context) -> None:
    session_id = _session(ctx)
    other = _session(ctx)
    assert _kept_count(ctx, session_id) == 0 and restores.count_events(ctx, session_id) == 0
    for n in range(1, 5):
        _save(ctx, session_id, n)
        assert _kept_count(ctx, session_id) == n == restores.count_events(ctx, session_id)
        assert restores.count_events(ctx, session_id, n - 1) == n - 1  # a set pinned before
    assert _kept_count(ctx, other) == 0


Work = tuple[int, int, int, int]


def _work(ctx: Context, call: Callable[[], Any]) -> tuple[Any, Work]:
    """What ``call`` returns, and its work: statements, rows loaded, SQLite's instructions (in
    100s), and on PostgreSQL the rows its statements' plans visit (each statement run again
    under ``EXPLAIN ANALYZE``, planned without sequential scans as at scale: a table of a few
    thousand rows is otherwise read whole)."""
    ran: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        ran.append((statement, parameters))

    engine = ctx.db._reader
    event.listen(engine, "before_cursor_execute", record)
    try:
        with catalog_work(ctx) as work:
            result = call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return result, (work.count, work.rows_loaded, work.vm_steps, _plan_rows(ctx, ran))


def _plan_rows(ctx: Context, ran: list[tuple[str, Any]]) -> int:
    if ctx.db.dialect == "sqlite":
        return 0
    visited = 0
    with ctx.db._reader.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in ran:
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
            [[plan]] = connection.exec_driver_sql(explain, parameters).all()
            visited += _node_rows(plan[0]["Plan"])
        connection.rollback()
    return visited


def _node_rows(node: dict[str, Any]) -> int:
    rows = int(node["Actual Rows"] * node["Actual Loops"])
    return rows + sum(_node_rows(child) for child in node.get("Plans", []))


def _listing_work(ctx: Context, session_id: str) -> tuple[Work, Work]:
    """The work of counting a pinned set of the session's events and of reading its middle
    page, as ``/vN/RestoreSessions/{id}/Events`` asks them."""
    pin = restores.last_event(ctx, session_id)
    total, counting = _work(ctx, lambda: restores.count_events(ctx, session_id, pin))
    middle = partial(restores.list_events, ctx, session_id, total // 2, PAGE, pin, total)
    page, paging = _work(ctx, middle)
    assert [e.seq for e in page] == list(range(total // 2 + 1, total // 2 + PAGE + 1))
    return counting, paging


def test_the_count_and_a_middle_page_of_n_and_4n_events_cost_the_same(ctx: Context) -> None:
    """1,000 and 4,000 events: counting the set and reading its middle page run the same
    statements, load the same rows and, on SQLite, the same instructions give or take 2 (100s);
    on PostgreSQL their plans visit the same rows. Counting 4,000 index entries and skipping
    2,000 cost thousands more of either."""
    n = 1000
    session_id = _session(ctx)
    bulk.add_events(ctx, session_id, n)
    small = _listing_work(ctx, session_id)
    bulk.add_events(ctx, session_id, 3 * n, first_seq=n + 1)
    large = _listing_work(ctx, session_id)
    for a, b in zip(small, large, strict=True):
        assert a[:2] == b[:2], f"statements or rows differ: {small} {large}"
        assert abs(a[2] - b[2]) <= 2, f"instructions grew with the events: {small} {large}"
        assert a[3] == b[3], f"plans visited more rows: {small} {large}"
