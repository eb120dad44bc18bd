"""The built-in local proxy: a thread that heartbeats, claims queued runs and executes them."""

from __future__ import annotations

import threading
import time

import structlog

from keepstone import __version__
from keepstone.domain.jobs import SessionStatus
from keepstone.proxy import load
from keepstone.proxy.backup import run_backup
from keepstone.proxy.executor import (
    RENEW_EVERY_SECONDS,
    Executor,
    RunContext,
    StopRun,
)
from keepstone.services import catalog, runs
from keepstone.services.context import Context
from keepstone.store.db import retrying_disconnects

log = structlog.get_logger(__name__)
POLL_SECONDS = 1.0


class ProxyWorker:
    def __init__(
        self,
        ctx: Context,
        proxy_id: str,
        executor: Executor = run_backup,
        renew_every: float = RENEW_EVERY_SECONDS,
    ) -> None:
        self.ctx = ctx
        self.proxy_id = proxy_id
        self.executor = executor
        self.renew_every = renew_every
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="keepstone-proxy", daemon=True)

    def start(self) -> None:
        abandoned = runs.abandon_runs_of(self.ctx, self.proxy_id)
        if abandoned:
            log.warning("runs interrupted by the last stop", count=abandoned)
        self.beat()
        self._thread.start()

    def beat(self) -> None:
        """Alive, with this server's version and its host's load (v8 shows them per proxy)."""
        load.HOST.sample()  # the host's CPU use since the last heartbeat
        catalog.heartbeat(self.ctx, self.proxy_id, load=load.HOST.current(), version=__version__)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop claiming runs, make the running one stop at its next check, and wait for it
        (up to ``timeout`` seconds); returns whether the proxy thread has ended."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.beat()
                while not self._stopping.is_set() and self.run_one():
                    pass
            except Exception:  # the worker must outlive any one bad run
                log.exception("proxy loop error")
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def run_one(self) -> bool:
        """Execute one startable queued run, if any; returns whether there was one."""
        claimed = runs.claim_next(self.ctx, self.proxy_id)
        if claimed is None:
            return False
        log.info("run claimed", session=claimed.session_id, job=claimed.job_name)
        run = RunContext(
            self.ctx,
            claimed,
            self.proxy_id,
            renew_every=self.renew_every,
            shutting_down=self._stopping,
        )
        started = time.monotonic()
        retryable = True
        try:
            outcome = self.executor(run)
            # An executor that saw a stop reason and returned early ends as that reason says.
            status, message = (
                (run.stop.status, run.stop.message)
                if run.stop
                else (outcome.status, outcome.message)
            )
            retryable = outcome.retryable
        except StopRun as stop:
            status, message = stop.status, stop.message
        except Exception as error:  # a broken source fails the attempt, never the proxy
            log.exception("run failed", session=claimed.session_id)
            status, message = SessionStatus.FAILED, f"Run failed: {error}"
        run.report(
            duration_seconds=round(time.monotonic() - started, 3)
        )  # fast runs have rates too
        # The outcome is worth a retry if the catalog dropped the connection under it (a
        # PostgreSQL restart): lost, the attempt would be failed by the reaper and run again.
        retrying_disconnects(
            lambda: runs.end_attempt(
                self.ctx,
                claimed,
                self.proxy_id,
                status,
                message,
                dict(run.statistics),
                run.progress,
                retryable=retryable,
            )
        )
        return True
