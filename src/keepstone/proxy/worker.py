"""A proxy's worker: it heartbeats, claims queued runs and works up to its threads' number of
them at once, each on a thread of its own, through its channel to the control plane.

The built-in proxy (``ProxyWorker``) talks to this server's catalog; a remote ``keepstone
proxy`` (``proxy/remote.py``) runs the same ``Worker`` over HTTP. Each run works one user at a
time (``proxy/backup.py``); several runs share the proxy's ``threads_number``.
"""

from __future__ import annotations

import threading
import time

import structlog

from keepstone.domain.jobs import SessionStatus
from keepstone.proxy.backup import run_backup
from keepstone.proxy.channel import CatalogChannel, RunChannel
from keepstone.proxy.executor import (
    RENEW_EVERY_SECONDS,
    SHUTDOWN_MESSAGE,
    Executor,
    RunContext,
    StopRun,
)
from keepstone.services import runs
from keepstone.services.context import Context
from keepstone.store.db import retrying_disconnects

log = structlog.get_logger(__name__)
POLL_SECONDS = 1.0


class Worker:
    def __init__(
        self,
        channel: RunChannel,
        executor: Executor = run_backup,
        renew_every: float = RENEW_EVERY_SECONDS,
        shutdown_message: str = SHUTDOWN_MESSAGE,
    ) -> None:
        self.channel = channel
        self.shutdown_message = shutdown_message
        self.executor = executor
        self.renew_every = renew_every
        self.threads = 1  # how many runs at once: the proxy's threadsNumber, from its heartbeat
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._runs: set[threading.Thread] = set()
        self._runs_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="keepstone-proxy", daemon=True)

    @property
    def proxy_id(self) -> str:
        return self.channel.proxy_id

    def start(self) -> None:
        abandoned = self.channel.start()
        if abandoned:
            log.warning("runs interrupted by the last stop", count=abandoned)
        self.beat()
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def active_runs(self) -> int:
        with self._runs_lock:
            return len(self._runs)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop claiming runs, make the running ones stop at their next check, and wait for them
        (up to ``timeout`` seconds in all); returns whether every proxy thread has ended."""
        self._stopping.set()
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout

        def join(thread: threading.Thread) -> None:
            if thread.is_alive():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

        join(self._thread)  # first the loop: once it has ended it starts no more runs
        with self._runs_lock:
            threads = [self._thread, *self._runs]
        for thread in threads:
            join(thread)
        return not any(thread.is_alive() for thread in threads)

    def beat(self) -> None:
        """Alive, with what the proxy reports of itself (load, version, runs); learns how many
        runs it may work at once."""
        self.threads = max(1, self.channel.heartbeat(self.active_runs()))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.beat()
                while (
                    not self._stopping.is_set()
                    and self.active_runs() < self.threads
                    and self._launch()
                ):
                    pass
            except Exception:  # the worker must outlive any one bad run or lost connection
                log.exception("proxy loop error")
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _launch(self) -> bool:
        """Claim one run and start it on a thread of its own; returns whether there was one."""
        claimed = self.channel.claim()
        if claimed is None:
            return False
        thread = threading.Thread(
            target=self._run_thread, args=(claimed,), name="keepstone-run", daemon=True
        )
        with self._runs_lock:
            self._runs.add(thread)
        thread.start()
        return True

    def _run_thread(self, claimed: runs.ClaimedRun) -> None:
        try:
            self.execute(claimed)
        except Exception:
            log.exception("run thread error", session=claimed.session_id)
        finally:
            with self._runs_lock:
                self._runs.discard(threading.current_thread())
            self._wake.set()  # a thread is free: claim the next run now

    def run_one(self) -> bool:
        """Execute one startable queued run here and now, if any; returns whether there was one."""
        claimed = self.channel.claim()
        if claimed is None:
            return False
        self.execute(claimed)
        return True

    def execute(self, claimed: runs.ClaimedRun) -> None:
        """Work a claimed run to its end and tell the control plane how it ended."""
        log.info("run claimed", session=claimed.session_id, job=claimed.job_name)
        run = RunContext(
            self.channel,
            claimed,
            renew_every=self.renew_every,
            shutting_down=self._stopping,
            shutdown_message=self.shutdown_message,
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
            lambda: self.channel.end(
                claimed,
                status,
                message,
                dict(run.statistics),
                run.progress,
                retryable=retryable,
            )
        )


class ProxyWorker(Worker):
    """The server's built-in proxy: its channel is this server's catalog."""

    def __init__(
        self,
        ctx: Context,
        proxy_id: str,
        executor: Executor = run_backup,
        renew_every: float = RENEW_EVERY_SECONDS,
    ) -> None:
        super().__init__(CatalogChannel(ctx, proxy_id), executor, renew_every)
        self.ctx = ctx
