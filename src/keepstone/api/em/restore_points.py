"""Restore points: ``/api/restorePoints`` and a backup's (restorepoints_id.html)."""

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api.em.backups import Names, backup_of
from keepstone.api.em.deps import Caller, Who, answer, ctx_of
from keepstone.api.em.hypermedia import Link, entity_href, links_of, server_up
from keepstone.api.em.xml import child, element
from keepstone.api.vb365.views import iso
from keepstone.services import restore_points
from keepstone.store.tables import RestorePoint

router = APIRouter(prefix="/api")


def point_name(point: RestorePoint, names: Names) -> str:
    return f"{names.job(point.job_id or '')}@{iso(point.backup_time)}"


def _point_links(who: Caller, point: RestorePoint, names: Names, alternate: Link) -> etree._Element:
    """restorepoints_id.html: Up backup (its job's), Up server, Alternate. Its Down lists of VM
    and vApp restore points and Related backup files are left out: a Keepstone restore point
    holds an organization's mail and files, none of those."""
    entries = [server_up(who), alternate]
    if point.job_id is not None:
        backup = who.href("backups", point.job_id)
        entries.insert(0, Link("Up", backup, "BackupReference", names.job(point.job_id)))
    return links_of(*entries)


def restore_point_entity(who: Caller, point: RestorePoint, names: Names) -> etree._Element:
    href = who.href("restorePoints", point.id)
    name = point_name(point, names)
    return element(
        "RestorePoint",
        {
            "Href": entity_href(href),
            "Type": "RestorePoint",
            "Name": name,
            "UID": f"urn:veeam:RestorePoint:{point.id}",
        },
        _point_links(who, point, names, Link("Alternate", href, "RestorePointReference", name)),
        element(
            "Ref",
            {
                "Href": who.href("repositories", point.repository_id),
                "Type": "RepositoryReference",
                "Name": names.repository(point.repository_id),
                "UID": f"urn:veeam:Repository:{point.repository_id}",
            },
        ),
        child("BackupDateUTC", iso(point.backup_time)),
    )


def restore_point_reference(
    who: Caller, point: RestorePoint, names: Names, tag: str = "EntityRef"
) -> etree._Element:
    href = who.href("restorePoints", point.id)
    name = point_name(point, names)
    return element(
        tag,
        {
            "Href": href,
            "Type": "RestorePointReference",
            "Name": name,
            "UID": f"urn:veeam:RestorePoint:{point.id}",
        },
        _point_links(who, point, names, Link("Alternate", entity_href(href), "RestorePoint", name)),
    )


def _points_document(
    request: Request, who: Caller, points: list[RestorePoint], format: str
) -> Response:
    names = Names(request)
    if format.lower() == "entity":
        return answer(
            request,
            element("RestorePoints", None, *(restore_point_entity(who, p, names) for p in points)),
        )
    return answer(
        request,
        element(
            "EntityReferences",
            None,
            *(restore_point_reference(who, p, names, "Ref") for p in points),
        ),
    )


@router.get("/restorePoints")
def list_restore_points(request: Request, who: Who, format: str = "References") -> Response:
    points = restore_points.list_points(ctx_of(request), caller=who.principal)
    return _points_document(request, who, points, format)


@router.get("/backups/{backup_id}/restorePoints")
def list_backup_restore_points(
    backup_id: str, request: Request, who: Who, format: str = "References"
) -> Response:
    backup = backup_of(request, backup_id)
    points = restore_points.list_points(ctx_of(request), job_id=backup.job_id, caller=who.principal)
    return _points_document(request, who, points, format)


@router.get("/restorePoints/{point_id}")
def get_restore_point(
    point_id: str, request: Request, who: Who, format: str = "Reference"
) -> Response:
    point = restore_points.get_point(ctx_of(request), point_id, who.principal)
    names = Names(request)
    if format.lower() == "entity":
        return answer(request, restore_point_entity(who, point, names))
    return answer(request, restore_point_reference(who, point, names))
