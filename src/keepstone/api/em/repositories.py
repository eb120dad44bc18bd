"""Backup repositories: ``/api/repositories`` (repositories_id.html)."""

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api.em.backups import backups_document
from keepstone.api.em.deps import Caller, Who, answer, ctx_of
from keepstone.api.em.hypermedia import Link, entity_href, links_of, server_up
from keepstone.api.em.xml import child, element
from keepstone.services import catalog
from keepstone.store.tables import Repository

router = APIRouter(prefix="/api")


def repository_uid(row: Repository) -> str:
    return f"urn:veeam:Repository:{row.id}"


def _repository_links(who: Caller, row: Repository, alternate: Link) -> etree._Element:
    """repositories_id.html: Up server, Alternate, Down backups, Down replicas (none)."""
    href = who.href("repositories", row.id)
    return links_of(
        server_up(who),
        alternate,
        Link("Down", f"{href}/backups", "BackupReferenceList"),
        Link("Down", f"{href}/replicas", "ReplicaReferenceList"),
    )


def repository_reference(who: Caller, row: Repository, tag: str = "EntityRef") -> etree._Element:
    href = who.href("repositories", row.id)
    alternate = Link("Alternate", entity_href(href), "Repository", row.name)
    return element(
        tag,
        {"Href": href, "Type": "RepositoryReference", "Name": row.name, "UID": repository_uid(row)},
        _repository_links(who, row, alternate),
    )


def repository_entity(who: Caller, row: Repository) -> etree._Element:
    href = who.href("repositories", row.id)
    space = catalog.disk_space(row.path)
    alternate = Link("Alternate", href, "RepositoryReference", row.name)
    return element(
        "Repository",
        {
            "Href": entity_href(href),
            "Type": "Repository",
            "Name": row.name,
            "UID": repository_uid(row),
        },
        _repository_links(who, row, alternate),
        child("Capacity", str(space.capacity)),
        child("FreeSpace", str(space.free)),
    )


def repositories_document(request: Request, who: Caller, format: str) -> Response:
    rows = catalog.list_repositories(ctx_of(request))
    if format.lower() == "entity":
        return answer(
            request, element("Repositories", None, *(repository_entity(who, r) for r in rows))
        )
    return answer(
        request,
        element("EntityReferences", None, *(repository_reference(who, r, "Ref") for r in rows)),
    )


@router.get("/repositories")
def list_repositories(request: Request, who: Who, format: str = "References") -> Response:
    return repositories_document(request, who, format)


@router.get("/repositories/{repo_id}")
def get_repository(repo_id: str, request: Request, who: Who, format: str = "Reference") -> Response:
    row = catalog.get_repository(ctx_of(request), repo_id)
    if format.lower() == "entity":
        return answer(request, repository_entity(who, row))
    return answer(request, repository_reference(who, row))


@router.get("/repositories/{repo_id}/backups")
def list_repository_backups(
    repo_id: str, request: Request, who: Who, format: str = "References"
) -> Response:
    catalog.get_repository(ctx_of(request), repo_id)
    return backups_document(request, who, format, repository_id=repo_id)


@router.get("/repositories/{repo_id}/replicas")
def list_repository_replicas(
    repo_id: str, request: Request, who: Who, format: str = "References"
) -> Response:
    """Replicas kept in the repository: none, Keepstone keeps backups only."""
    del who
    catalog.get_repository(ctx_of(request), repo_id)
    return answer(
        request, element("Replicas" if format.lower() == "entity" else "EntityReferences")
    )
