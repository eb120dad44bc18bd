"""Backup servers: ``/api/backupServers``, of which there is one, this server."""

from __future__ import annotations

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone import __version__
from keepstone.api import public_url
from keepstone.api.em.deps import (
    Caller,
    Who,
    answer,
)
from keepstone.api.em.xml import child, element, links
from keepstone.domain.errors import NotFound

router = APIRouter(prefix="/api")


@router.get("/backupServers")
def list_backup_servers(request: Request, who: Who) -> Response:
    return answer(request, element("BackupServers", None, backup_server(request, who)))


@router.get("/backupServers/{server_id}")
def get_backup_server(server_id: str, request: Request, who: Who) -> Response:
    if server_id != SERVER_ID:
        raise NotFound(f"backup server '{server_id}' does not exist")
    return answer(request, backup_server(request, who))


SERVER_ID = "00000000-0000-0000-0000-000000000001"  # this server: the only one there is


def backup_server(request: Request, who: Caller) -> etree._Element:
    host, port = public_url.host_and_port(request)
    return element(
        "BackupServer",
        {
            "Href": who.href("backupServers", SERVER_ID),
            "Type": "BackupServer",
            "Name": host,
            "UID": f"urn:veeam:BackupServer:{SERVER_ID}",
        },
        links(("Up", who.href("backupServers"), "BackupServerReferenceList")),
        child("Description", "Keepstone backup server"),
        child("Port", str(port)),
        child("Version", __version__),
    )
