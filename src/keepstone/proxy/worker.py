"""The built-in local proxy: a thread that heartbeats, claims queued runs and executes them."""

from __future__ import annotations

import threading

import structlog

from keepstone.domain.jobs import SessionStatus
from keepstone.services import catalog, runs
from keepstone.services.context import Context
from keepstone.sources import why_unavailable

log = structlog.get_logger(__name__)
POLL_SECONDS = 1.0


class ProxyWorker:
    def __init__(self, ctx: Context, proxy_id: str) -> None:
        self.ctx = ctx
        self.proxy_id = proxy_id
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="keepstone-proxy", daemon=True)

    def start(self) -> None:
        failed = runs.fail_orphans(self.ctx, self.proxy_id)
        if failed:
            log.warning("orphaned sessions failed", count=failed)
        catalog.heartbeat(self.ctx, self.proxy_id)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                catalog.heartbeat(self.ctx, self.proxy_id)
                while not self._stopping.is_set() and self.run_one():
                    pass
            except Exception:  # the worker must outlive any one bad run
                log.exception("proxy loop error")
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def run_one(self) -> bool:
        """Execute one queued run, if any; returns whether there was one."""
        claimed = runs.claim_next(self.ctx, self.proxy_id)
        if claimed is None:
            return False
        session, job, org = claimed
        log.info("run claimed", session=session.id, job=job.name)
        runs.finish(self.ctx, session.id, SessionStatus.FAILED, why_unavailable(org))
        return True
