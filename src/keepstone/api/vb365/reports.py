"""``Reports/Generate*`` (v6+; ``GenerateOneDriveProtection`` v8): protection, storage and
licence reports as CSV or PDF files (``application/octet-stream``, as the vendor answers), from
services/protection_reports.py.
``GenerateSharepointProtection`` and ``GenerateTeamsProtection`` do not map: Keepstone backs up
no sites or teams."""

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Literal
from uuid import UUID

from starlette.responses import Response

from keepstone.api.vb365.bodies import WireModel
from keepstone.api.vb365.deps import Ctx
from keepstone.api.vb365.versions import VersionedRouter
from keepstone.domain.errors import InvalidInput
from keepstone.domain.time_zones import UnknownTimeZone, time_zone
from keepstone.services import protection_reports, report_files
from keepstone.services.protection_reports import Part, Table

router = VersionedRouter()
SINCE = 6
ONEDRIVE_SINCE = 8  # the report appeared in v8
Format = Literal["PDF", "CSV"]
WRITERS: dict[str, tuple[Callable[[Table], bytes], str]] = {
    "PDF": (report_files.to_pdf, "pdf"),
    "CSV": (report_files.to_csv, "csv"),
}


class ProtectionOptions(WireModel):
    """``RESTMailboxProtectionOptions``, ``RESTUserProtectionOptions``,
    ``RESTOneDriveProtectionOptions`` (which has no ``format``: PDF)."""

    organization_id: UUID | None = None
    format: Format = "PDF"
    timezone: str | None = None


class IntervalOptions(WireModel):
    """``RESTStorageConsumptionOptions``, ``RESTLicenseOverviewOptions``."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    format: Format | None = None
    timezone: str | None = None


def _zone(name: str | None) -> tzinfo:
    try:
        return time_zone(name or "UTC")
    except UnknownTimeZone as error:
        raise InvalidInput(f"timezone: {error}", "timezone") from None


def _file(table: Table, kind: str, chosen: str | None) -> Response:
    write, extension = WRITERS[chosen or "PDF"]
    name = f"{kind}_report.{extension}"
    return Response(
        write(table),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _protection(ctx: Ctx, body: ProtectionOptions, part: Part, kind: str) -> Response:
    org_id = str(body.organization_id) if body.organization_id else None
    table = protection_reports.user_protection(ctx, org_id, _zone(body.timezone), part)
    return _file(table, kind, body.format)


@router.post("/Reports/GenerateUserProtection", since=SINCE, response_class=Response)
def user_protection(body: ProtectionOptions, ctx: Ctx) -> Response:
    return _protection(ctx, body, "user", "user_protection")


@router.post("/Reports/GenerateMailboxProtection", since=SINCE, response_class=Response)
def mailbox_protection(body: ProtectionOptions, ctx: Ctx) -> Response:
    return _protection(ctx, body, "mailbox", "mailbox_protection")


@router.post("/Reports/GenerateOneDriveProtection", since=ONEDRIVE_SINCE, response_class=Response)
def onedrive_protection(body: ProtectionOptions, ctx: Ctx) -> Response:
    return _protection(ctx, body, "onedrive", "onedrive_protection")


@router.post("/Reports/GenerateStorageConsumption", since=SINCE, response_class=Response)
def storage_consumption(body: IntervalOptions, ctx: Ctx) -> Response:
    zone = _zone(body.timezone)
    table = protection_reports.storage_consumption(ctx, body.start_time, body.end_time, zone)
    return _file(table, "storage_consumption", body.format)


@router.post("/Reports/GenerateLicenseOverview", since=SINCE, response_class=Response)
def license_overview(body: IntervalOptions, ctx: Ctx) -> Response:
    zone = _zone(body.timezone)
    table = protection_reports.license_overview(ctx, body.start_time, body.end_time, zone)
    return _file(table, "license_overview", body.format)
