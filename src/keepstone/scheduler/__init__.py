"""The scheduler: turns schedule policies into queued runs, and notices proxies that vanished."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import structlog

from keepstone.services import copy_jobs, m365_directory, m365_settings, maintenance, runs
from keepstone.services.context import Context

log = structlog.get_logger(__name__)
MAX_SLEEP = timedelta(seconds=1)


class Scheduler:
    """A thread that ticks at every job's next run, and at least once a second."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._stopping = threading.Event()
        self._retaining: dict[str, threading.Thread] = {}  # repository id -> its retention run
        self._thread = threading.Thread(target=self._loop, name="keepstone-scheduler", daemon=True)

    def tick(self) -> runs.Dispatch:
        """One pass: fail attempts whose proxy stopped heartbeating, then queue what is due."""
        lost = runs.reap_lost_runs(self.ctx)
        if lost:
            log.warning("runs lost with their proxy", count=lost)
        dispatch = runs.dispatch_due(self.ctx)
        copies = copy_jobs.dispatch_due(self.ctx)
        if copies:
            log.info("scheduled copy runs", started=copies)
        if dispatch.started or dispatch.skipped_busy:
            log.info("scheduled runs", started=dispatch.started, busy=dispatch.skipped_busy)
        for repo_id in maintenance.due_retention(self.ctx):
            self._start_retention(repo_id)
        self._start_directory_syncs()
        return dispatch

    def _start_directory_syncs(self) -> None:
        """Office365 organization caches older than the sync interval are refreshed beside the
        scheduler (a sync reads the whole directory: it must never delay a dispatch)."""
        for org in m365_directory.due_for_sync(self.ctx):
            if m365_directory.SYNCS.start(self.ctx, org, m365_settings.access_of):
                log.info("organization sync started", organization=org.id)

    def _start_retention(self, repo_id: str) -> None:
        """Retention (with its prune) runs beside the scheduler, so it never delays a dispatch."""
        running = self._retaining.get(repo_id)
        if running is not None and running.is_alive():
            return
        thread = threading.Thread(
            target=self._apply_retention, args=(repo_id,), name="keepstone-retention", daemon=True
        )
        self._retaining[repo_id] = thread
        thread.start()

    def wait_for_retention(self) -> None:
        for thread in list(self._retaining.values()):
            thread.join()

    def _apply_retention(self, repo_id: str) -> None:
        try:
            result = maintenance.apply_retention(self.ctx, repo_id)
        except Exception:  # one broken repository must not stop scheduling
            log.exception("retention failed", repository=repo_id)
            return
        log.info(
            "retention applied",
            repository=repo_id,
            removed=result.removed_restore_points,
            freed=result.freed_bytes,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop scheduling and wait (up to ``timeout`` seconds) for the scheduler thread and the
        retention runs it started; returns whether all of them have ended."""
        self._stopping.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in [self._thread, *self._retaining.values()]:
            if thread.is_alive():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        syncs_ended = m365_directory.SYNCS.wait(
            None if deadline is None else max(0.0, deadline - time.monotonic())
        )
        return syncs_ended and not any(
            t.is_alive() for t in [self._thread, *self._retaining.values()]
        )

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
        due = [runs.earliest_next_run(self.ctx), copy_jobs.earliest_next_run(self.ctx)]
        earliest = min((d for d in due if d is not None), default=None)
        if earliest is None:
            return MAX_SLEEP
        return max(timedelta(0), min(MAX_SLEEP, earliest - self.ctx.clock.now()))
