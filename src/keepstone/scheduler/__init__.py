"""The scheduler: turns schedule policies into queued runs, and notices proxies that vanished.

Among several servers of one catalog only the leader of the ``scheduler`` role schedules
(``services/leadership.py``): every server runs this thread, which campaigns every third of a
lease and ticks only while its term runs; each write of a tick is fenced by the term.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import structlog

from keepstone.services import (
    copy_jobs,
    m365_directory,
    m365_settings,
    maintenance,
    notifications,
    runs,
    tasks,
)
from keepstone.services.context import Context
from keepstone.services.leadership import Fence, Leadership, NotLeading

log = structlog.get_logger(__name__)
MAX_SLEEP = timedelta(seconds=1)


class Scheduler:
    """A thread that ticks at every job's next run, and at least once a second, while this
    server leads (always, without a ``leadership``: a lone server, or a test driving ticks)."""

    def __init__(self, ctx: Context, leadership: Leadership | None = None) -> None:
        self.ctx = ctx
        self.leadership = leadership
        self._stopping = threading.Event()
        self._retaining: dict[str, threading.Thread] = {}  # repository id -> its retention run
        self._mailing: threading.Thread | None = None  # the notification sender's pass
        self._thread = threading.Thread(target=self._loop, name="keepstone-scheduler", daemon=True)

    @property
    def _fence(self) -> Fence | None:
        return None if self.leadership is None else self.leadership.fence

    def leading(self) -> bool:
        """Whether this server leads now, campaigning first when a round is due."""
        if self.leadership is None:
            return True
        if self.leadership.campaign_due():
            self.leadership.campaign()
        return self.leadership.is_leading()

    def tick(self) -> runs.Dispatch:
        """One pass: fail attempts whose proxy stopped heartbeating, then queue what is due.
        Raises :class:`NotLeading` (having written nothing more) when the term has ended."""
        fence = self._fence
        lost = runs.reap_lost_runs(self.ctx, fence)
        if lost:
            log.warning("runs lost with their proxy", count=lost)
        orphaned = tasks.fail_orphaned(self.ctx, fence)
        if orphaned:
            log.warning("tasks failed with their server", count=orphaned)
        dispatch = runs.dispatch_due(self.ctx, fence)
        copies = copy_jobs.dispatch_due(self.ctx, fence)
        if copies:
            log.info("scheduled copy runs", started=copies)
        if dispatch.started or dispatch.skipped_busy:
            log.info("scheduled runs", started=dispatch.started, busy=dispatch.skipped_busy)
        for repo_id in maintenance.due_retention(self.ctx):
            self._start_retention(repo_id)
        self._start_directory_syncs()
        self._start_mail()
        return dispatch

    def _start_mail(self) -> None:
        """Notification mails are sent beside the scheduler: an SMTP server that is slow or
        away must never delay a dispatch (services/notifications.py)."""
        if self._mailing is not None and self._mailing.is_alive():
            return
        notifications.queue_digest(self.ctx, self._fence)  # once a day, at its time
        if not notifications.mail_due(self.ctx):
            return
        self._mailing = threading.Thread(target=self._send_mail, name="keepstone-mail", daemon=True)
        self._mailing.start()

    def _send_mail(self) -> None:
        try:
            notifications.deliver_due(self.ctx, self.ctx.public_url, self._fence)
        except NotLeading:
            log.warning("notifications not sent: this server no longer leads")
        except Exception:  # the next tick tries again
            log.exception("notification sender failed")

    def wait_for_mail(self) -> None:
        if self._mailing is not None:
            self._mailing.join()

    def _start_directory_syncs(self) -> None:
        """Office365 organization caches older than the sync interval are refreshed beside the
        scheduler (a sync reads the whole directory: it must never delay a dispatch)."""
        for org in m365_directory.due_for_sync(self.ctx):
            if m365_directory.SYNCS.start(self.ctx, org, m365_settings.access_of, self._fence):
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
            result = maintenance.apply_retention(self.ctx, repo_id, self._fence)
        except NotLeading:
            log.warning("retention not applied: this server no longer leads", repository=repo_id)
            return
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
        retention runs it started; returns whether all of them have ended. A leader resigns once
        its own work has ended, so another server takes over at once."""
        self._stopping.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in [self._thread, *self._retaining.values(), *self._mail_threads()]:
            if thread.is_alive():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self.leadership is not None and not self._thread.is_alive():
            self.leadership.resign()
        syncs_ended = m365_directory.SYNCS.wait(
            None if deadline is None else max(0.0, deadline - time.monotonic())
        )
        return syncs_ended and not any(
            t.is_alive() for t in [self._thread, *self._retaining.values()]
        )

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                wait = MAX_SLEEP
                if self.leading():
                    self.tick()
                    wait = self._until_next_due()
            except NotLeading:  # another server took over: its fenced writes go on there
                log.warning("scheduling stopped: another server leads")
                if self.leadership is not None:
                    self.leadership.step_down()
            except Exception:  # a bad tick must not end scheduling
                log.exception("scheduler tick failed")
            self._stopping.wait(self._capped(wait).total_seconds())

    def _mail_threads(self) -> list[threading.Thread]:
        return [] if self._mailing is None else [self._mailing]

    def _capped(self, wait: timedelta) -> timedelta:
        """No longer than until the next election round is due."""
        if self.leadership is None:
            return wait
        return min(wait, self.leadership.renew_every)

    def _until_next_due(self) -> timedelta:
        due = [runs.earliest_next_run(self.ctx), copy_jobs.earliest_next_run(self.ctx)]
        earliest = min((d for d in due if d is not None), default=None)
        if earliest is None:
            return MAX_SLEEP
        return max(timedelta(0), min(MAX_SLEEP, earliest - self.ctx.clock.now()))
