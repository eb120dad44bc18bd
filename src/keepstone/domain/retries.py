"""When a failed attempt is tried again: the job-level retry policy, as a pure function."""

from __future__ import annotations

from datetime import datetime, timedelta

from keepstone.domain.policy import SchedulePolicy
from keepstone.domain.schedule import next_window_open, window_closes_at


def next_attempt_at(
    policy: SchedulePolicy, retries_done: int, failed_at: datetime, *, manual: bool
) -> datetime | None:
    """The instant the next attempt may start, or None when the run has no retries left.

    A retry waits ``retryWaitInterval`` minutes; a retry of a scheduled run that would fall outside
    the backup window waits on for the window's next opening. Manual runs ignore the window.
    """
    if not policy.retry_enabled or retries_done >= policy.retry_number:
        return None
    at = failed_at + timedelta(minutes=policy.retry_wait_interval)
    if manual or not policy.backup_window_enabled:
        return at
    return next_window_open(policy, at)


def window_deadline(
    policy: SchedulePolicy, started_at: datetime, *, manual: bool
) -> datetime | None:
    """When a running attempt must stop because its backup window closes (None: never).

    Decision (docs/scheduling.md): the window governs scheduled runs and their retries; a manual
    start is an administrator's explicit request and neither waits for nor is stopped by it.
    """
    if manual:
        return None
    return window_closes_at(policy, started_at)
