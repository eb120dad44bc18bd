"""Summary reports: ``/api/reports/summary/...``."""

from collections import Counter
from collections.abc import Iterable, Mapping

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api.em.backup_sessions import SESSION_STATES
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


def by_result(by_status: Mapping[str, int]) -> Counter[str]:
    """Counts by session status as counts by the ``Result`` the dialect shows for each status
    (``SESSION_STATES``: a stopped run is ``Failed``), so a report's figures are what the
    sessions it sums show: a monitor that reads ``FailedJobRuns`` learns of the run that
    ``/api/backupSessions`` lists as failed."""
    results: Counter[str] = Counter()
    for status, count in by_status.items():
        results[SESSION_STATES.get(status, ("", "None"))[1]] += count
    return results


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
    latest = by_result(f.latest)
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
                ("SuccessfulVmLastestStates", latest["Success"]),
                ("WarningVmLastestStates", latest["Warning"]),
                ("FailedVmLastestStates", latest["Failed"]),
            ),
        ),
    )


@router.get("/reports/summary/job_statistics")
def job_statistics_report(request: Request, who: Who) -> Response:
    f = reports.job_statistics(ctx_of(request))
    runs = by_result(f.runs)
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
                ("SuccessfulJobRuns", runs["Success"]),
                ("WarningsJobRuns", runs["Warning"]),
                ("FailedJobRuns", runs["Failed"]),
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
