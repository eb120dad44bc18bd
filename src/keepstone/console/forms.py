"""The job form's fields as the domain's ``JobEdit``, named by the API's property names.

The form sends every setting every time (a checkbox left unchecked is ``false``), so an edit from
the console is the whole job as shown; the services validate it exactly as an API PUT and answer
with the same messages. This module only turns text into typed values.
"""

from __future__ import annotations

import enum
from datetime import time
from typing import Any, TypeVar

from keepstone.domain.errors import InvalidInput
from keepstone.domain.jobs import BackupType, JobEdit, ScheduleEdit
from keepstone.domain.policy import HOURS_PER_WEEK, DailyType, Period, ScheduleType

E = TypeVar("E", bound=enum.Enum)
ITEM_ROWS = 3  # empty rows the form offers for new selected users


def _choice(kind: type[E], text: str, prop: str) -> E:
    try:
        return kind(text)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise InvalidInput(f"{prop} must be one of {allowed}; got '{text}'", prop) from None


def _integer(text: str, prop: str) -> int:
    stripped = text.strip()
    if not stripped.lstrip("-").isdigit() or len(stripped) > 19:
        raise InvalidInput(f"{prop} must be a whole number; got '{text}'", prop)
    return int(stripped)


def _time(text: str) -> time:
    prop = "schedulePolicy.dailyTime"
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{prop} must be a time of day (HH:MM); got '{text}'", prop) from None


def window_of(indices: list[str]) -> tuple[bool, ...]:
    """The 168 hours from the grid's checked cells (each an hour's index, Sunday 00:00 = 0)."""
    prop = "schedulePolicy.backupWindowSettings.backupWindow"
    hours = [False] * HOURS_PER_WEEK
    for text in indices:
        index = _integer(text, prop)
        if not 0 <= index < HOURS_PER_WEEK:
            raise InvalidInput(f"{prop} has no hour {index} (0 to {HOURS_PER_WEEK - 1})", prop)
        hours[index] = True
    return tuple(hours)


def selected_items(form: dict[str, str]) -> list[dict[str, Any]]:
    """User rows ``item-N-name`` (+ ``-mailbox``, ``-drive``, ``-remove``) as the vendor's
    ``RESTJobItemComposed`` user items; a row with no name is no item."""
    items = []
    for key in sorted(k for k in form if k.startswith("item-") and k.endswith("-name")):
        row = key.removesuffix("-name")
        name = form[key].strip()
        if not name or form.get(f"{row}-remove"):
            continue
        item: dict[str, Any] = {"type": "User", "user": {"name": name}}
        mailbox, drive = bool(form.get(f"{row}-mailbox")), bool(form.get(f"{row}-drive"))
        if mailbox or drive:  # neither: the user's mailbox and drive (the vendor's default)
            item |= {"mailbox": mailbox, "oneDrive": drive}
        if form.get(f"{row}-id"):
            item["id"] = form[f"{row}-id"]
        items.append(item)
    return items


def job_edit(form: dict[str, str], window_cells: list[str]) -> JobEdit:
    schedule = ScheduleEdit(
        type=_choice(ScheduleType, form.get("type", ""), "schedulePolicy.type"),
        daily_type=_choice(DailyType, form.get("dailyType", ""), "schedulePolicy.dailyType"),
        daily_time=_time(form.get("dailyTime", "")),
        periodically_every=_choice(
            Period, form.get("periodicallyEvery", ""), "schedulePolicy.periodicallyEvery"
        ),
        backup_window_enabled=bool(form.get("backupWindowEnabled")),
        backup_window=window_of(window_cells),
        minute_offset=_integer(
            form.get("minuteOffset", ""), "schedulePolicy.backupWindowSettings.minuteOffset"
        ),
        retry_enabled=bool(form.get("retryEnabled")),
        retry_number=_integer(form.get("retryNumber", ""), "schedulePolicy.retryNumber"),
        retry_wait_interval=_integer(
            form.get("retryWaitInterval", ""), "schedulePolicy.retryWaitInterval"
        ),
    )
    return JobEdit(
        name=form.get("name", ""),
        description=form.get("description", ""),
        backup_type=_choice(BackupType, form.get("backupType", ""), "backupType"),
        schedule=schedule,
        repository_id=form.get("repositoryId") or None,
        proxy_id=form.get("proxyId") or None,
        selected_items=selected_items(form),
    )
