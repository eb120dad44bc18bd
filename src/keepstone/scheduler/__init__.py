"""The scheduler: turns schedule policies into queued runs, and notices proxies that vanished."""

from __future__ import annotations

import threading
from datetime import timedelta

import structlog

from keepstone.services import runs
from keepstone.services.context import Context

log = structlog.get_logger(__name__)
MAX_SLEEP = timedelta(seconds=1)


class Scheduler:
    """A thread that ticks at every job's next run, and at least once a second."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="keepstone-scheduler", daemon=True)

    def tick(self) -> runs.Dispatch:
        """One pass: fail attempts whose proxy stopped heartbeating, then queue what is due."""
        lost = runs.reap_lost_runs(self.ctx)
        if lost:
            log.warning("runs lost with their proxy", count=lost)
        dispatch = runs.dispatch_due(self.ctx)
        if dispatch.started or dispatch.skipped_busy:
            log.info("scheduled runs", started=dispatch.started, busy=dispatch.skipped_busy)
        return dispatch

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
                wait = self._until_next_due()
            except Exception:  # a bad tick must not end scheduling
                log.exception("scheduler tick failed")
                wait = MAX_SLEEP
            self._stopping.wait(wait.total_seconds())

    def _until_next_due(self) -> timedelta:
        earliest = runs.earliest_next_run(self.ctx)
        if earliest is None:
            return MAX_SLEEP
        return max(timedelta(0), min(MAX_SLEEP, earliest - self.ctx.clock.now()))
