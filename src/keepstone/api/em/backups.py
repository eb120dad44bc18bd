"""Backups: ``/api/backups`` (backups_id.html), one per Keepstone job with restore points.

The vendor's Backup is the chain of restore points one job writes to one repository; a Keepstone
job's restore points are exactly that, so a Backup's id is its job's id and its repository is the
one holding the job's latest restore point.
"""

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api.em.deps import Caller, Who, answer, ctx_of
from keepstone.api.em.hypermedia import Link, entity_href, links_of, server_up
from keepstone.api.em.xml import child, element
from keepstone.domain.errors import NotFound
from keepstone.services import catalog, jobs, restore_points
from keepstone.services.restore_points import JobBackup

router = APIRouter(prefix="/api")


class Names:
    """Job and repository names for a document, read once (not once per backup)."""

    def __init__(self, request: Request) -> None:
        ctx = ctx_of(request)
        self.jobs = {j.id: j.name for j in jobs.list_jobs(ctx)}
        self.repositories = {r.id: r.name for r in catalog.list_repositories(ctx)}

    def job(self, job_id: str) -> str:
        return self.jobs.get(job_id, job_id)  # a deleted job's backup keeps its id as name

    def repository(self, repository_id: str) -> str:
        return self.repositories.get(repository_id, repository_id)


def _repository_up(who: Caller, backup: JobBackup, names: Names) -> Link:
    href = who.href("repositories", backup.repository_id)
    return Link("Up", href, "RepositoryReference", names.repository(backup.repository_id))


def _attributes(who: Caller, backup: JobBackup, names: Names, kind: str) -> dict[str, str]:
    return {
        "Href": who.href("backups", backup.job_id),
        "Type": kind,
        "Name": names.job(backup.job_id),
        "UID": f"urn:veeam:Backup:{backup.job_id}",
    }


def backup_reference(
    who: Caller, backup: JobBackup, names: Names, tag: str = "EntityRef"
) -> etree._Element:
    """backups_id.html: Up server, Up repository, Alternate (its child backups: none)."""
    attributes = _attributes(who, backup, names, "BackupReference")
    return element(
        tag,
        attributes,
        links_of(
            server_up(who),
            _repository_up(who, backup, names),
            Link("Alternate", entity_href(attributes["Href"]), "Backup", attributes["Name"]),
            Link("Down", f"{attributes['Href']}/restorePoints", "RestorePointReferenceList"),
        ),
    )


def backup_entity(who: Caller, backup: JobBackup, names: Names) -> etree._Element:
    """backups_id.html: Up repository, Up server, Alternate; then the schema's Ref (the
    repository) and Platform."""
    attributes = _attributes(who, backup, names, "Backup")
    href = attributes["Href"]
    repository = _repository_up(who, backup, names)
    return element(
        "Backup",
        attributes | {"Href": entity_href(href)},
        links_of(
            repository,
            server_up(who),
            Link("Alternate", href, "BackupReference", attributes["Name"]),
            Link("Down", f"{href}/restorePoints", "RestorePointReferenceList"),
        ),
        element(
            "Ref",
            {
                "Href": repository.href,
                "Type": "RepositoryReference",
                "Name": repository.name or "",
                "UID": f"urn:veeam:Repository:{backup.repository_id}",
            },
        ),
        child("Platform", "Microsoft365"),
    )


def backups_document(
    request: Request, who: Caller, format: str, repository_id: str | None = None
) -> Response:
    found = restore_points.job_backups(ctx_of(request), repository_id)
    names = Names(request)
    if format.lower() == "entity":
        return answer(
            request, element("Backups", None, *(backup_entity(who, b, names) for b in found))
        )
    return answer(
        request,
        element("EntityReferences", None, *(backup_reference(who, b, names, "Ref") for b in found)),
    )


def backup_of(request: Request, backup_id: str) -> JobBackup:
    for backup in restore_points.job_backups(ctx_of(request)):
        if backup.job_id == backup_id:
            return backup
    raise NotFound(f"backup '{backup_id}' does not exist")


@router.get("/backups")
def list_backups(request: Request, who: Who, format: str = "References") -> Response:
    return backups_document(request, who, format)


@router.get("/backups/{backup_id}")
def get_backup(backup_id: str, request: Request, who: Who, format: str = "Reference") -> Response:
    backup, names = backup_of(request, backup_id), Names(request)
    if format.lower() == "entity":
        return answer(request, backup_entity(who, backup, names))
    return answer(request, backup_reference(who, backup, names))
