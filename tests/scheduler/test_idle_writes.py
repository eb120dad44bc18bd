"""An idle server takes no write lock: the proxy's poll and the scheduler's reaping find nothing
by a read first (every second each, beside the API's writers, on SQLite's one writer)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from keepstone.services import runs, tasks
from keepstone.services.context import Context


@pytest.mark.sqlite_catalog  # the writer's BEGIN IMMEDIATE is SQLite's write lock
def test_idle_polls_and_ticks_begin_no_write_transaction(ctx: Context, job: dict[str, Any]) -> None:
    begun: list[int] = []
    event.listen(ctx.db._writer, "begin", lambda _connection: begun.append(1))
    for _ in range(3):
        assert runs.claim_next(ctx, "any proxy") is None
        assert runs.reap_lost_runs(ctx) == 0
        assert tasks.fail_orphaned(ctx) == 0
    assert begun == []
