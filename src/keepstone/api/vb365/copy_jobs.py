"""Backup copy jobs (v6+): ``/CopyJobs``, their actions, and ``/Jobs/{id}/CopyJob``.

Bodies and representations follow the vendor's ``RESTCopyJob`` (v6, v7; v8 creates with
``RESTCreateCopyJob`` and edits with ``RESTEditCopyJob``) and ``RESTCopyJobSchedulePolicy``;
the work is ``services/copy_jobs.py``.
"""

import enum
from functools import partial
from typing import Annotated, Any

from fastapi import Header, Request
from pydantic import Field
from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import (
    AnyDailyType,
    AnyPeriod,
    BackupWindowSettingsBody,
    StartBody,
    TimeOfDay,
    WireModel,
    any_case,
)
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.jobs import expected_version
from keepstone.api.vb365.pages import Paging, listing
from keepstone.api.vb365.versions import ApiVersion, Version, VersionedRouter, iso
from keepstone.domain.jobs import ScheduleEdit
from keepstone.domain.policy import ScheduleType
from keepstone.services import copy_jobs, jobs
from keepstone.services.copy_jobs import CopyJobEdit
from keepstone.store.tables import CopyJob

router = VersionedRouter()


class CopyScheduleType(enum.StrEnum):
    IMMEDIATE = "Immediate"
    PERIODICALLY = "Periodically"
    DAILY_AT_TIME = "DailyAtTime"


_DOMAIN_TYPE = {
    CopyScheduleType.PERIODICALLY: ScheduleType.PERIODICALLY,
    CopyScheduleType.DAILY_AT_TIME: ScheduleType.DAILY,
}


class CopySchedulePolicyBody(WireModel):
    type: Annotated[CopyScheduleType, any_case(CopyScheduleType)] | None = None
    periodically_every: AnyPeriod | None = None
    daily_type: AnyDailyType | None = None
    daily_time: TimeOfDay | None = None
    backup_copy_window_enabled: bool | None = None
    backup_copy_window_settings: BackupWindowSettingsBody | None = None

    def to_edit(self) -> tuple[bool | None, ScheduleEdit]:
        window = self.backup_copy_window_settings
        immediate = None if self.type is None else self.type is CopyScheduleType.IMMEDIATE
        return immediate, ScheduleEdit(
            type=_DOMAIN_TYPE.get(self.type) if self.type else None,
            daily_type=self.daily_type,
            daily_time=self.daily_time,
            periodically_every=self.periodically_every,
            backup_window_enabled=self.backup_copy_window_enabled,
            backup_window=tuple(window.backup_window) if window and window.backup_window else None,
            minute_offset=window.minute_offset if window else None,
        )


class CopyJobBody(WireModel):
    """``RESTCopyJob`` (v6, v7), ``RESTCreateCopyJob``/``RESTEditCopyJob`` (v8); read-only
    properties (id, name, lastRun, ...) are ignored as the vendor does."""

    backup_job_id: Annotated[str, Field(max_length=36)] | None = None
    repository_id: Annotated[str, Field(max_length=36)] | None = None
    organization_id: Annotated[str, Field(max_length=36)] | None = None
    schedule_policy: CopySchedulePolicyBody | None = None
    is_enabled: bool | None = None

    def to_edit(self) -> CopyJobEdit:
        immediate, schedule = (
            self.schedule_policy.to_edit() if self.schedule_policy else (None, None)
        )
        return CopyJobEdit(
            backup_job_id=self.backup_job_id,
            repository_id=self.repository_id,
            organization_id=self.organization_id,
            immediate=immediate,
            schedule=schedule,
            is_enabled=self.is_enabled,
        )


def copy_job_view(row: CopyJob, api: ApiVersion, organization_id: str) -> dict[str, Any]:
    link = api.link
    body: dict[str, Any] = {
        "id": row.id,
        "backupJobId": row.backup_job_id,
        "repositoryId": row.repository_id,
        "name": row.name,
        "schedulePolicy": _schedule_view(row),
        "lastRun": iso(row.last_run),
        "nextRun": iso(row.next_run),
        "isEnabled": row.is_enabled,
        "lastStatus": row.last_status or "NotConfigured",
    }
    if api.at_least(8):
        body |= {"organizationId": organization_id, "lastBackup": iso(row.last_backup)}
        body["eTag"] = row.version
    body["_links"] = {
        "self": link("copyjobs", row.id),
        "backupJob": link("jobs", row.backup_job_id),
        "backupRepository": link("backuprepositories", row.repository_id),
    }
    return body


def _schedule_view(row: CopyJob) -> dict[str, Any]:
    """``RESTCopyJobSchedulePolicy``: a backup job's policy under the copy's names."""
    policy = views.schedule_policy(row.schedule_policy)
    kind = (
        CopyScheduleType.IMMEDIATE
        if row.immediate
        else CopyScheduleType.PERIODICALLY
        if policy["type"] == ScheduleType.PERIODICALLY.value
        else CopyScheduleType.DAILY_AT_TIME
    )
    return {
        "type": kind.value,
        **{name: policy[name] for name in ("periodicallyEvery", "dailyType", "dailyTime")},
        "backupCopyWindowEnabled": policy["backupWindowEnabled"],
        "backupCopyWindowSettings": policy["backupWindowSettings"],
    }


def _render(ctx: Ctx, api: ApiVersion, row: CopyJob) -> dict[str, Any]:
    return copy_job_view(row, api, copy_jobs.organization_of(ctx, row))


def _etag(row: CopyJob) -> dict[str, str]:
    return {"ETag": f'"{row.version}"'}


@router.get("/CopyJobs", since=6)
def list_copy_jobs(
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    repositoryId: str | None = None,
    organizationId: str | None = None,
) -> Response:
    rows = partial(copy_jobs.list_copy_jobs, ctx, repositoryId, organizationId)
    render = partial(_render, ctx, api)
    return json(listing(request, api, "copyJobs", rows, render, paging, ctx.clock.now()))


@router.post("/CopyJobs", since=6)
def create_copy_job(body: CopyJobBody, ctx: Ctx, api: Version) -> Response:
    row = copy_jobs.create_copy_job(ctx, body.to_edit())
    return json(_render(ctx, api, row), api.created, headers=_etag(row))


@router.get("/CopyJobs/{copy_id}", since=6)
def get_copy_job(copy_id: str, ctx: Ctx, api: Version) -> Response:
    row = copy_jobs.get_copy_job(ctx, copy_id)
    return json(_render(ctx, api, row), headers=_etag(row))


@router.put("/CopyJobs/{copy_id}", since=6, response_class=Response)
def edit_copy_job(
    copy_id: str,
    body: CopyJobBody,
    ctx: Ctx,
    if_match: str | None = Header(default=None),
) -> Response:
    row = copy_jobs.edit_copy_job(ctx, copy_id, body.to_edit(), expected_version(if_match))
    response = plain(204)
    response.headers.update(_etag(row))
    return response


@router.delete("/CopyJobs/{copy_id}", since=6, status_code=204)
def delete_copy_job(copy_id: str, ctx: Ctx) -> Response:
    copy_jobs.delete_copy_job(ctx, copy_id)
    return plain(204)


@router.get("/CopyJobs/{copy_id}/BackupJob", since=6)
def backup_job(copy_id: str, ctx: Ctx, api: Version) -> Response:
    row = copy_jobs.get_copy_job(ctx, copy_id)
    return json(views.job(jobs.get_job(ctx, row.backup_job_id), api))


@router.get("/Jobs/{job_id}/CopyJob", since=6)
def copy_job_of(job_id: str, ctx: Ctx, api: Version) -> Response:
    return json(_render(ctx, api, copy_jobs.copy_job_of(ctx, job_id)))


@router.post("/CopyJobs/{copy_id}/start", since=6, response_class=Response)
def start(copy_id: str, ctx: Ctx, api: Version, body: StartBody | None = None) -> Response:
    """v8 answers with the session; earlier versions with 204. ``full`` changes nothing: a copy
    is complete whatever it reuses."""
    session = copy_jobs.start_copy_job(ctx, copy_id)
    if api.at_least(8):
        return json(views.job_session(session, api, copy=copy_jobs.get_copy_job(ctx, copy_id)))
    return plain(204)


@router.post("/CopyJobs/{copy_id}/stop", since=6, response_class=Response)
def stop(copy_id: str, ctx: Ctx) -> Response:
    copy_jobs.stop_copy_job(ctx, copy_id)
    return plain(204)


@router.post("/CopyJobs/{copy_id}/enable", since=6, response_class=Response)
def enable(copy_id: str, ctx: Ctx) -> Response:
    copy_jobs.edit_copy_job(ctx, copy_id, CopyJobEdit(is_enabled=True))
    return plain(204)


@router.post("/CopyJobs/{copy_id}/disable", since=6, response_class=Response)
def disable(copy_id: str, ctx: Ctx) -> Response:
    copy_jobs.edit_copy_job(ctx, copy_id, CopyJobEdit(is_enabled=False))
    return plain(204)
