"""Restore points: ``/api/restorePoints``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api.em.deps import (
    Caller,
    Who,
    answer,
    ctx_of,
)
from keepstone.api.em.xml import child, element, links
from keepstone.api.vb365.views import iso
from keepstone.services import jobs, restore_points
from keepstone.store.tables import RestorePoint

router = APIRouter(prefix="/api")


def restore_point_entity(who: Caller, point: RestorePoint, job_name: str) -> etree._Element:
    href = who.href("restorePoints", point.id)
    name = f"{job_name}@{iso(point.backup_time)}"
    return element(
        "RestorePoint",
        {
            "Href": f"{href}?format=Entity",
            "Type": "RestorePoint",
            "Name": name,
            "UID": f"urn:veeam:RestorePoint:{point.id}",
        },
        links(("Up", who.href("restorePoints"), "RestorePointReferenceList")),
        element(
            "Ref",
            {
                "Href": who.href("repositories", point.repository_id),
                "Type": "RepositoryReference",
                "Name": point.repository_id,
                "UID": f"urn:veeam:Repository:{point.repository_id}",
            },
        ),
        child("BackupDateUTC", iso(point.backup_time)),
    )


def restore_point_reference(
    who: Caller, point: RestorePoint, job_name: str, tag: str = "EntityRef"
) -> etree._Element:
    return element(
        tag,
        {
            "Href": who.href("restorePoints", point.id),
            "Type": "RestorePointReference",
            "Name": f"{job_name}@{iso(point.backup_time)}",
            "UID": f"urn:veeam:RestorePoint:{point.id}",
        },
        links(
            ("Alternate", f"{who.href('restorePoints', point.id)}?format=Entity", "RestorePoint")
        ),
    )


@router.get("/restorePoints")
def list_restore_points(request: Request, who: Who, format: str = "References") -> Response:
    ctx = ctx_of(request)
    names = {j.id: j.name for j in jobs.list_jobs(ctx)}
    points = restore_points.list_points(ctx)
    if format.lower() == "entity":
        return answer(
            request,
            element(
                "RestorePoints",
                None,
                *(restore_point_entity(who, p, names.get(p.job_id or "", "")) for p in points),
            ),
        )
    return answer(
        request,
        element(
            "EntityReferences",
            None,
            *(
                restore_point_reference(who, p, names.get(p.job_id or "", ""), "Ref")
                for p in points
            ),
        ),
    )


@router.get("/restorePoints/{point_id}")
def get_restore_point(
    point_id: str, request: Request, who: Who, format: str = "Reference"
) -> Response:
    ctx = ctx_of(request)
    point = restore_points.get_point(ctx, point_id)
    name = {j.id: j.name for j in jobs.list_jobs(ctx)}.get(point.job_id or "", "")
    if format.lower() == "entity":
        return answer(request, restore_point_entity(who, point, name))
    return answer(request, restore_point_reference(who, point, name))
