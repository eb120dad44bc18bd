"""What a proxy does with a claimed run, and what the run may ask of its proxy while it works.

An ``Executor`` is called with a ``RunContext``; it reads the organization, reports progress and
checks ``should_stop()`` between items. Its return value (or exception) ends the attempt.
Organization connectors provide executors (the engine issue); without one a run fails honestly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from keepstone.domain.jobs import SessionStatus
from keepstone.proxy.channel import RunChannel, WorkPackage
from keepstone.services import restore_points, runs, task_sessions
from keepstone.sources import why_unavailable
from keepstone.sources.names import display

RENEW_EVERY_SECONDS = 1.0  # how stale a stop request or lease may get: "stop" acts within this
SHUTDOWN_MESSAGE = (
    "The server was stopped during this run; the work finished so far is kept and the next "
    "attempt continues from it"
)


class StopRun(Exception):
    """Raised by ``RunContext.check()`` to unwind an executor that must stop now."""

    def __init__(self, status: SessionStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Outcome:
    status: SessionStatus  # Success, Warning or Failed
    message: str
    retryable: bool = True  # False for failures no retry can mend (a missing connector)


@dataclass
class RunContext:
    """A claimed run as its executor sees it: every call goes through the proxy's channel."""

    channel: RunChannel
    run: runs.ClaimedRun
    statistics: runs.Statistics = field(default_factory=lambda: dict(runs.EMPTY_STATISTICS))
    progress: int = 0
    renew_every: float = RENEW_EVERY_SECONDS
    _renewed_at: float = field(default=0.0)
    stop: StopRun | None = None
    shutting_down: threading.Event = field(default_factory=threading.Event)  # set by the proxy
    shutdown_message: str = SHUTDOWN_MESSAGE  # why a run ends when its proxy stops
    _work: WorkPackage | None = None

    @property
    def proxy_id(self) -> str:
        return self.channel.proxy_id

    def work(self) -> WorkPackage:
        """The run's work package (repositories, the organization's access), fetched once."""
        if self._work is None:
            self._work = self.channel.work(self.run)
        return self._work

    def now(self) -> datetime:
        return self.channel.clock.now()

    def should_stop(self) -> StopRun | None:
        """Why this run must stop now (user stop, backup window, lost claim), or None."""
        if self.stop is None:
            self.stop = self._stop_reason()
        return self.stop

    def check(self) -> None:
        if (reason := self.should_stop()) is not None:
            raise reason

    def log(
        self, status: SessionStatus, message: str, subject: tuple[str, str] | None = None
    ) -> None:
        """Log to the session; ``subject`` (id, name) is the user the item is the outcome of."""
        # Messages may quote names from a source: never a lone surrogate in the catalog or JSON.
        self.channel.log(self.run, status, display(message), subject)

    def start_task(self, subject: tuple[str, str]) -> str:
        """The run starts a user (``subject``: id, name): its task session, Running; its id."""
        return self.channel.start_task(self.run, (subject[0], display(subject[1])))

    def finish_task(
        self,
        task_id: str,
        status: SessionStatus,
        tally: task_sessions.UserTally,
        reason: str = "",
        outcome: str = "",
    ) -> None:
        """The run is done with a user: how it ended and what it read and wrote; ``outcome``
        (unless empty) is the user's success log item, written with it (one transaction)."""
        self.channel.finish_task(
            self.run, task_id, status, tally, display(reason), display(outcome)
        )

    def record(self, repository_id: str, facts: restore_points.SnapshotFacts) -> None:
        """The run's snapshot is in ``repository_id``: the catalog records its restore point."""
        self.channel.record(self.run, repository_id, facts)

    def report(self, *, progress: int | None = None, **statistics: float | str) -> None:
        """Publish progress; it reaches the session at the next lease renewal (or at once)."""
        if progress is not None:
            self.progress = progress
        self.statistics.update(statistics)

    def _stop_reason(self) -> StopRun | None:
        if self.shutting_down.is_set():  # a failed attempt, so the retry policy brings it back
            return StopRun(SessionStatus.FAILED, self.shutdown_message)
        deadline = self.run.deadline
        if deadline is not None and self.now() >= deadline:
            return StopRun(
                SessionStatus.STOPPED,
                f"The backup window closed at {runs.log_time(deadline)}; the work "
                "finished so far is kept and the next run continues from it",
            )
        if time.monotonic() - self._renewed_at < self.renew_every:
            return None
        return self.renew()

    def renew(self) -> StopRun | None:
        self._renewed_at = time.monotonic()
        state = self.channel.renew(self.run, dict(self.statistics), self.progress)
        if state is runs.RunState.STOP_REQUESTED:
            return StopRun(SessionStatus.STOPPED, "Job stopped by user")
        if state is runs.RunState.LOST:
            return StopRun(SessionStatus.FAILED, "This proxy lost its claim on the run")
        return None


Executor = Callable[[RunContext], Outcome]


def no_connector(run: RunContext) -> Outcome:
    return Outcome(SessionStatus.FAILED, why_unavailable(run.run.organization), retryable=False)
