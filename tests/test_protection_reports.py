"""v8 Reports/Generate*: CSV figures checked one by one against the catalog after a real backup,
and the PDF rendered to an image (pypdfium2) that must not be blank."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pypdfium2 as pdfium
import pytest
from sqlalchemy import select

from keepstone.proxy.worker import ProxyWorker
from keepstone.services.context import Context
from keepstone.store.tables import LicensedUser, RestorePoint, TaskSession
from tests.conftest import Api
from tests.local_org import Organization, api, backup_proxy, org_job, organization, run_job

__all__ = ["api", "backup_proxy", "org_job", "organization"]

USERS = ("alice", "bob")


def _csv(answer: Any) -> list[dict[str, str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].endswith('.csv"')
    text = answer.content.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def _rendered_ink(pdf_bytes: bytes) -> tuple[float, str]:
    """The share of non-white pixels of the first page rendered at 72 dpi, and its text."""
    document = pdfium.PdfDocument(pdf_bytes)
    page = document[0]
    image = page.render(scale=1).to_pil().convert("L")
    histogram = image.histogram()
    dark = sum(histogram[:200])
    text = page.get_textpage().get_text_range()
    return dark / (image.width * image.height), text


def test_reports_tell_the_catalogs_figures(
    api: Api,
    ctx: Context,
    organization: Organization,
    org_job: dict[str, Any],
    backup_proxy: ProxyWorker,
) -> None:
    for user in USERS:
        organization.user(user)
        organization.mail(user, "", f"hello {user}")
    organization.file("alice", "notes.txt", b"alice's notes")
    run_job(api, org_job, backup_proxy)
    organization.user("carol")  # arrives after the backup: unprotected
    org_id = org_job["organization"]["id"]

    rows = _csv(
        api.post("/v8/Reports/GenerateUserProtection", {"organizationId": org_id, "format": "CSV"})
    )
    with ctx.db.read() as s:
        tasks = {t.name: t for t in s.scalars(select(TaskSession))}
        points = {p.session_id: p for p in s.scalars(select(RestorePoint))}
    assert sorted(row["User"] for row in rows) == ["alice", "bob", "carol"]
    for row in rows:
        assert row["Organization"] == "acme"
        task = tasks.get(row["User"])
        if task is None:
            assert row["Status"] == "Unprotected" and row["Job"] == ""
            assert row["Last restore point"] == "" and row["Backed-up bytes"] == "0"
            continue
        point = points[task.session_id]
        assert row["Status"] == "Protected"
        assert row["Job"] == "acme backup"
        assert row["Last restore point"] == point.backup_time.strftime("%Y-%m-%d %H:%M:%S")
        assert int(row["Backed-up bytes"]) == task.total_bytes > 0

    mailboxes = _csv(api.post("/v8/Reports/GenerateMailboxProtection", {"format": "CSV"}))
    assert {r["User"]: r["Status"] for r in mailboxes} == {
        "alice": "Protected",
        "bob": "Protected",
        "carol": "Unprotected",
    }
    drives = _csv(api.post("/v8/Reports/GenerateOneDriveProtection", {"format": "CSV"}))
    # every local user has a OneDrive folder; the run's restore point holds drives
    assert {r["User"]: r["Status"] for r in drives} == {r["User"]: r["Status"] for r in mailboxes}

    storage = _csv(api.post("/v8/Reports/GenerateStorageConsumption", {"format": "CSV"}))
    assert len(storage) == 1  # one repository, one day with restore points
    [day] = storage
    stored = sum(p.size for p in points.values())
    assert day["Date"] == ctx.clock.now().date().isoformat()
    assert int(day["Restore points"]) == len(points)
    assert int(day["Stored bytes"]) == stored == int(day["Total bytes"])

    licence = _csv(api.post("/v8/Reports/GenerateLicenseOverview", {"format": "CSV"}))
    with ctx.db.read() as s:
        licensed = list(s.scalars(select(LicensedUser)))
    assert licence == [
        {
            "Organization": "acme",
            "Licensed users": str(len(licensed)),
            "New users": str(len(licensed)),
        }
    ]
    assert len(licensed) == 2
    # an interval that ended before the backup: nobody, and no storage that day
    before = {
        "endTime": (ctx.clock.now() - timedelta(days=1)).isoformat(),
        "format": "CSV",
    }
    assert _csv(api.post("/v8/Reports/GenerateLicenseOverview", before))[0]["Licensed users"] == "0"
    assert _csv(api.post("/v8/Reports/GenerateStorageConsumption", before)) == []

    pdf = api.post("/v8/Reports/GenerateUserProtection", {"organizationId": org_id})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    ink, text = _rendered_ink(pdf.content)
    assert ink > 0.005, ink  # a title and a table drawn, not a blank page
    for expected in ("User protection", "alice", "carol", "Unprotected", "acme backup"):
        assert expected in text, (expected, text)


@pytest.mark.sqlite_catalog  # input checks: the catalog's kind plays no part
@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("GenerateUserProtection", {"format": "XLSX"}, "format"),
        ("GenerateUserProtection", {"organizationId": "not-a-uuid"}, "organizationId"),
        ("GenerateMailboxProtection", {"timezone": "Mars/Olympus"}, "timezone"),
        # longer than a file name: ZoneInfo's OSError was a 500 (found by test_fuzz_writes)
        ("GenerateOneDriveProtection", {"timezone": "Europe/" + "x" * 300}, "timezone"),
        ("GenerateOneDriveProtection", {"timezone": "../../etc/passwd"}, "timezone"),
        ("GenerateOneDriveProtection", {"timezone": "Europe/\x00Berlin"}, "timezone"),
        ("GenerateStorageConsumption", {"startTime": "yesterday"}, "startTime"),
        (
            "GenerateLicenseOverview",
            {"startTime": "2026-06-10T00:00:00Z", "endTime": "2026-06-01T00:00:00Z"},
            "startTime",
        ),
    ],
)
def test_bad_report_options_are_400s_naming_the_property(
    api: Api, path: str, body: dict[str, Any], named: str
) -> None:
    answer = api.post(f"/v8/Reports/{path}", body)
    assert answer.status_code == 400, answer.text
    assert named in answer.json()["message"]


@pytest.mark.sqlite_catalog
def test_an_unknown_organization_is_a_404(api: Api) -> None:
    answer = api.post(
        "/v8/Reports/GenerateUserProtection",
        {"organizationId": "00000000-0000-0000-0000-000000000001"},
    )
    assert answer.status_code == 404
