"""Backup repositories: ``/api/repositories``."""

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
from keepstone.services import catalog
from keepstone.store.tables import Repository

router = APIRouter(prefix="/api")


@router.get("/repositories")
def list_repositories(request: Request, who: Who, format: str = "References") -> Response:
    rows = catalog.list_repositories(ctx_of(request))
    if format.lower() == "entity":
        return answer(
            request, element("Repositories", None, *(repository_entity(who, r) for r in rows))
        )
    return answer(
        request,
        element(
            "EntityReferences",
            None,
            *(
                element(
                    "Ref",
                    {
                        "Href": who.href("repositories", r.id),
                        "Type": "RepositoryReference",
                        "Name": r.name,
                        "UID": f"urn:veeam:Repository:{r.id}",
                    },
                )
                for r in rows
            ),
        ),
    )


@router.get("/repositories/{repo_id}")
def get_repository(repo_id: str, request: Request, who: Who) -> Response:
    return answer(request, repository_entity(who, catalog.get_repository(ctx_of(request), repo_id)))


def repository_entity(who: Caller, row: Repository) -> etree._Element:
    space = catalog.disk_space(row.path)
    return element(
        "Repository",
        {
            "Href": who.href("repositories", row.id),
            "Type": "Repository",
            "Name": row.name,
            "UID": f"urn:veeam:Repository:{row.id}",
        },
        links(("Up", who.href("repositories"), "RepositoryReferenceList")),
        child("Capacity", str(space.capacity)),
        child("FreeSpace", str(space.free)),
    )
