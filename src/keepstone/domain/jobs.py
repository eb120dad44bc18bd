"""Job edits: what a client may change, and the rules that decide whether a change is valid.

An edit names only the properties the client sent (``None`` = not sent), so every dialect's PUT is
a partial update by construction.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import time
from typing import Any

from keepstone.domain.errors import InvalidInput
from keepstone.domain.policy import DailyType, Period, SchedulePolicy, ScheduleType
from keepstone.domain.text import check_characters

MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 4096


class BackupType(enum.StrEnum):
    ENTIRE_ORGANIZATION = "EntireOrganization"
    SELECTED_ITEMS = "SelectedItems"


class ItemType(enum.StrEnum):
    """What a selected or excluded job item is (the vendor's ``RESTJobItemComposed.type``)."""

    USER = "User"
    GROUP = "Group"
    SITE = "Site"
    TEAM = "Team"
    PARTIAL_ORGANIZATION = "PartialOrganization"
    PERSONAL_SITES = "PersonalSites"
    ONE_DRIVE_FOLDERS = "OneDriveFolders"


class SessionStatus(enum.StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    SUCCESS = "Success"
    WARNING = "Warning"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def is_active(self) -> bool:
        return self in (SessionStatus.QUEUED, SessionStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class ScheduleEdit:
    type: ScheduleType | None = None
    daily_type: DailyType | None = None
    daily_time: time | None = None
    periodically_every: Period | None = None
    backup_window_enabled: bool | None = None
    backup_window: tuple[bool, ...] | None = None
    minute_offset: int | None = None
    retry_enabled: bool | None = None
    retry_number: int | None = None
    retry_wait_interval: int | None = None
    periodically_offset: int | None = None
    periodic_window_enabled: bool | None = None
    periodic_window: tuple[bool, ...] | None = None
    periodic_minute_offset: int | None = None
    # the vendor's scheduleEnabled: whether the job follows its schedule, which a ManualOnly
    # one does not (checked against the type the edit leaves, never stored on its own)
    schedule_enabled: bool | None = None

    def apply(self, policy: SchedulePolicy) -> SchedulePolicy:
        """The policy with this edit applied; raises InvalidInput naming the offending property."""
        needs_type = [
            name
            for name, value in (
                ("dailyType", self.daily_type),
                ("dailyTime", self.daily_time),
                ("periodicallyEvery", self.periodically_every),
            )
            if value is not None
        ]
        if needs_type and self.type is None:
            raise InvalidInput(
                "schedulePolicy.type must be specified to change "
                + ", ".join(f"schedulePolicy.{name}" for name in needs_type),
                "schedulePolicy.type",
            )
        changes: dict[str, Any] = {
            field: value
            for field, value in (
                ("type", self.type),
                ("daily_type", self.daily_type),
                ("daily_time", self.daily_time),
                ("periodically_every", self.periodically_every),
                ("backup_window_enabled", self.backup_window_enabled),
                ("backup_window", self.backup_window),
                ("minute_offset", self.minute_offset),
                ("retry_enabled", self.retry_enabled),
                ("retry_number", self.retry_number),
                ("retry_wait_interval", self.retry_wait_interval),
                ("periodically_offset", self.periodically_offset),
                ("periodic_window_enabled", self.periodic_window_enabled),
                ("periodic_window", self.periodic_window),
                ("periodic_minute_offset", self.periodic_minute_offset),
            )
            if value is not None
        }
        edited = policy
        for field, value in changes.items():
            kept = getattr(policy, field)
            # of one type too: True and 1 are equal, but a policy holding either is not the
            # same policy (its record differs)
            if type(kept) is not type(value) or kept != value:
                edited = replace(policy, **changes)  # __post_init__ validates the result
                break
        # when nothing changed the policy is kept: valid already, as an equal new one would be
        self._check_schedule_enabled(edited)
        return edited

    def _check_schedule_enabled(self, policy: SchedulePolicy) -> None:
        scheduled = policy.type is not ScheduleType.MANUAL_ONLY
        if self.schedule_enabled is None or self.schedule_enabled == scheduled:
            return
        wanted = "ManualOnly" if scheduled else "Daily or Periodically"
        raise InvalidInput(
            f"schedulePolicy.scheduleEnabled {str(self.schedule_enabled).lower()} needs "
            f"schedulePolicy.type {wanted} (a job follows its schedule unless it is ManualOnly)",
            "schedulePolicy.scheduleEnabled",
        )


@dataclass(frozen=True, slots=True)
class JobEdit:
    name: str | None = None
    description: str | None = None
    backup_type: BackupType | None = None
    schedule: ScheduleEdit | None = None
    repository_id: str | None = None
    proxy_id: str | None = None
    is_enabled: bool | None = None
    selected_items: list[dict[str, Any]] | None = None
    excluded_items: list[dict[str, Any]] | None = None
    run_now: bool = False


def check_name(name: str) -> str:
    """A name of a job, organization or repository: one line of 1 to 255 characters."""
    stripped = check_characters(name, "name", one_line=True).strip()
    if not stripped:
        raise InvalidInput("name must not be empty", "name")
    if len(stripped) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} characters", "name")
    return stripped


def check_description(description: str) -> str:
    check_characters(description, "description", one_line=False)
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(
            f"description must be at most {MAX_DESCRIPTION_LENGTH} characters", "description"
        )
    return description


def check_scope(backup_type: BackupType, selected_items: list[dict[str, Any]]) -> None:
    """A SelectedItems job must say what it selects (the vendor's rule, HC50/HC60)."""
    if backup_type is BackupType.SELECTED_ITEMS and not selected_items:
        raise InvalidInput(
            "selectedItems must list at least one item when backupType is SelectedItems",
            "selectedItems",
        )
