"""The summary reports about protected objects: the vendor's "VMs" are Keepstone's users, each
the owner of a mailbox and a OneDrive (see ``services.reports`` for the figures).

Shapes per RestAPI.xsd (``VmsOverviewReportFrameType``, ``ProcessedVmsReportFrameType``) and the
vendor's pages (helpcenter.veeam.com/docs/backup/em_rest/reports_summary_vms_overview.html and
reports_summary_processed_vms.html: one ``Day`` per day of the last seven, the newest first,
stamped at the server's local midnight). Keepstone replicates nothing: replica figures are 0.
"""

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.api.em.deps import Who, answer, ctx_of
from keepstone.api.em.reports import report_frame
from keepstone.api.em.xml import element
from keepstone.services import reports

router = APIRouter(prefix="/api")
DAYS = 7


@router.get("/reports/summary/vms_overview")
def vms_overview_report(request: Request, who: Who) -> Response:
    ctx = ctx_of(request)
    f = reports.vms_overview_of(ctx)
    return answer(
        request,
        report_frame(
            who,
            "VmsOverviewReportFrame",
            "vms_overview",
            (
                ("ProtectedVms", f.protected),
                ("BackedUpVms", f.backed_up),
                ("ReplicatedVms", 0),
                ("RestorePoints", f.restore_points),
                ("FullBackupPointsSize", f.full_points_size),
                ("IncrementalBackupPointsSize", f.incremental_points_size),
                ("ReplicaRestorePointsSize", 0),
                ("SourceVmsSize", f.source_size),
                ("SuccessBackupPercents", f.success_percents),
                # The vendor links its own report page; ours lists every user's task sessions.
                ("ProtectedVmsReportLink", who.href("backupTaskSessions")),
            ),
        ),
    )


@router.get("/reports/summary/processed_vms")
def processed_vms_report(request: Request, who: Who) -> Response:
    days = reports.processed_days(ctx_of(request), DAYS)
    return answer(
        request,
        element(
            "ProcessedVmsReportFrame",
            {
                "Href": who.href("reports", "summary", "processed_vms"),
                "Type": "ProcessedVmsReportFrame",
            },
            *(
                element(
                    "Day",
                    {
                        "Timestamp": day.start.isoformat(),
                        "ReplicatedVms": "0",
                        "BackupedVms": str(day.backed_up),
                    },
                )
                for day in days
            ),
        ),
    )
