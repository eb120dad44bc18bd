"""Summary reports: ``/api/reports/summary/...``."""

from collections.abc import Iterable

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api.em.deps import (
    Caller,
    Who,
    answer,
    ctx_of,
)
from keepstone.api.em.hypermedia import Link, links_of
from keepstone.api.em.xml import child, element
from keepstone.services import reports

router = APIRouter(prefix="/api")


def report_frame(
    who: Caller, tag: str, path: str, fields: Iterable[tuple[str, object]]
) -> etree._Element:
    """A summary report: a frame of named figures, in the schema's order."""
    return element(
        tag,
        {"Href": who.href("reports", "summary", path), "Type": tag},
        *(child(name, str(value)) for name, value in fields),
    )


# The reports index (reports_summary.html): (path, Name) of each report frame, in its order.
SUMMARY_REPORTS = (
    ("overview", "Overview"),
    ("vms_overview", "VmsOverview"),
    ("job_statistics", "JobStatistics"),
    ("processed_vms", "ProcessedVms"),
    ("repository", "Repositories"),
)


@router.get("/reports/summary")
def summary_reports(request: Request, who: Who) -> Response:
    """``SummaryReport``: a Down link to each report frame, named as the vendor names them."""
    frames = (
        Link("Down", who.href("reports", "summary", path), "ReportFrame", name)
        for path, name in SUMMARY_REPORTS
    )
    return answer(
        request,
        element(
            "SummaryReport",
            {"Href": who.href("reports", "summary"), "Type": "SummaryReport"},
            links_of(*frames),
        ),
    )


@router.get("/reports/summary/overview")
def overview_report(request: Request, who: Who) -> Response:
    f = reports.overview(ctx_of(request))
    return answer(
        request,
        report_frame(
            who,
            "OverviewReportFrame",
            "overview",
            (
                ("BackupServers", 1),
                ("ProxyServers", f.proxies),
                ("RepositoryServers", f.repositories),
                ("RunningJobs", f.running_jobs),
                ("ScheduledJobs", f.scheduled_jobs),
                ("SuccessfulVmLastestStates", f.successful),
                ("WarningVmLastestStates", f.warning),
                ("FailedVmLastestStates", f.failed),
            ),
        ),
    )


@router.get("/reports/summary/job_statistics")
def job_statistics_report(request: Request, who: Who) -> Response:
    f = reports.job_statistics(ctx_of(request))
    return answer(
        request,
        report_frame(
            who,
            "JobStatisticsReportFrame",
            "job_statistics",
            (
                ("RunningJobs", f.running_jobs),
                ("ScheduledJobs", f.scheduled_jobs),
                ("ScheduledBackupJobs", f.scheduled_jobs),
                ("ScheduledReplicaJobs", 0),
                ("TotalJobRuns", f.total_runs),
                ("SuccessfulJobRuns", f.successful_runs),
                ("WarningsJobRuns", f.warning_runs),
                ("FailedJobRuns", f.failed_runs),
                ("MaxJobDuration", f.longest_seconds),
                ("MaxBackupJobDuration", f.longest_seconds),
                ("MaxReplicaJobDuration", 0),
                ("MaxDurationBackupJobName", f.longest_job),
                ("MaxDurationReplicaJobName", ""),
                ("BackupJobStatusReportLink", who.href("backupSessions")),
            ),
        ),
    )


@router.get("/reports/summary/repository")
def repository_report(request: Request, who: Who) -> Response:
    periods = (
        element(
            "Period",
            None,
            child("Name", use.name),
            child("Capacity", str(use.capacity)),
            child("FreeSpace", str(use.free)),
            child("BackupSize", str(use.backup_size)),
        )
        for use in reports.repository_use(ctx_of(request))
    )
    return answer(
        request,
        element(
            "RepositoryReportFrame",
            {"Href": who.href("reports", "summary", "repository"), "Type": "RepositoryReportFrame"},
            *periods,
        ),
    )
