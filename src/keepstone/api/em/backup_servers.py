"""Backup servers: ``/api/backupServers``, of which there is one, this server
(backupservers_id.html)."""

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone import __version__
from keepstone.api import public_url
from keepstone.api.em.deps import Caller, Who, answer
from keepstone.api.em.hypermedia import (
    SERVER_ID,
    Link,
    entity_href,
    links_of,
    server_href,
    server_name,
)
from keepstone.api.em.jobs import jobs_document
from keepstone.api.em.repositories import repositories_document
from keepstone.api.em.xml import child, element
from keepstone.domain.errors import NotFound

router = APIRouter(prefix="/api")
SERVER_UID = f"urn:veeam:BackupServer:{SERVER_ID}"


def _server_links(who: Caller, alternate: Link) -> etree._Element:
    """backupservers_id.html: Alternate, Down jobs, managed servers, repositories. Its Edit,
    Delete, credentials, passwords, VeeamZip, QuickBackup and collect links are left out: a
    Keepstone server is not managed through Enterprise Manager."""
    href = server_href(who)
    return links_of(
        alternate,
        Link("Down", f"{href}/jobs", "JobReferenceList"),
        Link("Down", f"{href}/managedServers", "ManagedServerReferenceList"),
        Link("Down", f"{href}/repositories", "RepositoryReferenceList"),
    )


def server_reference(who: Caller, tag: str = "EntityRef") -> etree._Element:
    href, name = server_href(who), server_name(who)
    return element(
        tag,
        {"Href": href, "Type": "BackupServerReference", "Name": name, "UID": SERVER_UID},
        _server_links(who, Link("Alternate", entity_href(href), "BackupServer", name)),
    )


def backup_server(request: Request, who: Caller) -> etree._Element:
    href, name = server_href(who), server_name(who)
    _, port = public_url.host_and_port(request)
    return element(
        "BackupServer",
        {"Href": entity_href(href), "Type": "BackupServer", "Name": name, "UID": SERVER_UID},
        _server_links(who, Link("Alternate", href, "BackupServerReference", name)),
        child("Description", "Keepstone backup server"),
        child("Port", str(port)),
        child("Version", __version__),
    )


def _this_server(server_id: str) -> None:
    if server_id != SERVER_ID:
        raise NotFound(f"backup server '{server_id}' does not exist")


@router.get("/backupServers")
def list_backup_servers(request: Request, who: Who, format: str = "References") -> Response:
    if format.lower() == "entity":
        return answer(request, element("BackupServers", None, backup_server(request, who)))
    return answer(request, element("EntityReferences", None, server_reference(who, "Ref")))


@router.get("/backupServers/{server_id}")
def get_backup_server(
    server_id: str, request: Request, who: Who, format: str = "Reference"
) -> Response:
    _this_server(server_id)
    if format.lower() == "entity":
        return answer(request, backup_server(request, who))
    return answer(request, server_reference(who))


@router.get("/backupServers/{server_id}/jobs")
def list_server_jobs(
    server_id: str, request: Request, who: Who, format: str = "References"
) -> Response:
    _this_server(server_id)
    return jobs_document(request, who, format)


@router.get("/backupServers/{server_id}/repositories")
def list_server_repositories(
    server_id: str, request: Request, who: Who, format: str = "References"
) -> Response:
    _this_server(server_id)
    return repositories_document(request, who, format)


@router.get("/backupServers/{server_id}/managedServers")
def list_server_managed_servers(
    server_id: str, request: Request, who: Who, format: str = "References"
) -> Response:
    """The servers this backup server manages (proxies, repositories' hosts): none it exposes."""
    del who
    _this_server(server_id)
    return answer(
        request, element("ManagedServers" if format.lower() == "entity" else "EntityReferences")
    )
