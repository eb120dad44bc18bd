"""The query service: ``/api/query``, filters, sorts and pages over every queryable type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone import __version__
from keepstone.api.em.backup_servers import backup_server
from keepstone.api.em.backup_sessions import SESSION_STATES, session_entity, session_reference
from keepstone.api.em.deps import (
    Caller,
    Who,
    answer,
    base_of,
    boolean,
    ctx_of,
)
from keepstone.api.em.jobs import job_entity, job_reference, job_uid
from keepstone.api.em.query import parse_filter, sort_key
from keepstone.api.em.repositories import repository_entity
from keepstone.api.em.restore_points import restore_point_entity, restore_point_reference
from keepstone.api.em.xml import NS, element, links
from keepstone.api.vb365.views import iso
from keepstone.domain.errors import InvalidInput
from keepstone.services import catalog, jobs, restore_points, runs

router = APIRouter(prefix="/api")


@dataclass(frozen=True, slots=True)
class Found:
    fields: dict[str, Any]  # lower-case names, as filters and sorts name them
    ref: etree._Element
    entity: etree._Element


def _job_rows(request: Request, who: Caller) -> list[Found]:
    rows = []
    for job in jobs.list_jobs(ctx_of(request)):
        entity = job_entity(who, job)
        fields = {
            "name": job.name,
            "uid": job_uid(job),
            "jobtype": "Backup",
            "platform": "Microsoft365",
            "description": job.description,
            "scheduleenabled": boolean(job.is_enabled),
            "nextrun": iso(job.next_run),
            "scheduleconfigured": entity.findtext(f"{{{NS}}}ScheduleConfigured"),
        }
        rows.append(Found(fields, job_reference(who, job, "Ref"), entity))
    return rows


def _session_rows(request: Request, who: Caller) -> list[Found]:
    ctx = ctx_of(request)
    names = {j.id: j.name for j in jobs.list_jobs(ctx)}
    rows = []
    for session in runs.list_sessions(ctx):
        name = names.get(session.job_id, "")
        state, result = SESSION_STATES[session.status]
        fields = {
            "name": f"{name}@{iso(session.creation_time)}",
            "jobname": name,
            "uid": f"urn:veeam:BackupJobSession:{session.id}",
            "jobuid": f"urn:veeam:Job:{session.job_id}",
            "jobtype": "Backup",
            "creationtime": iso(session.creation_time),
            "creationtimeutc": iso(session.creation_time),
            "endtime": iso(session.end_time),
            "endtimeutc": iso(session.end_time),
            "state": state,
            "result": result,
            "progress": session.progress,
            "isretry": boolean(session.retry_count > 0),
        }
        rows.append(
            Found(
                fields,
                session_reference(who, session, name, "Ref"),
                session_entity(who, session, name, runs.failure_of(ctx, session.id)),
            )
        )
    return rows


def _repository_rows(request: Request, who: Caller) -> list[Found]:
    rows = []
    for repo in catalog.list_repositories(ctx_of(request)):
        entity = repository_entity(who, repo)
        ref = element(
            "Ref",
            {
                "Href": who.href("repositories", repo.id),
                "Type": "RepositoryReference",
                "Name": repo.name,
                "UID": f"urn:veeam:Repository:{repo.id}",
            },
        )
        fields = {
            "name": repo.name,
            "uid": ref.get("UID"),
            "capacity": int(entity.findtext(f"{{{NS}}}Capacity") or 0),
            "freespace": int(entity.findtext(f"{{{NS}}}FreeSpace") or 0),
        }
        rows.append(Found(fields, ref, entity))
    return rows


def _server_rows(request: Request, who: Caller) -> list[Found]:
    entity = backup_server(request, who)
    ref = element(
        "Ref",
        {
            "Href": entity.get("Href", ""),
            "Type": "BackupServerReference",
            "Name": entity.get("Name", ""),
            "UID": entity.get("UID", ""),
        },
    )
    fields = {
        "name": entity.get("Name"),
        "uid": entity.get("UID"),
        "description": entity.findtext(f"{{{NS}}}Description"),
        "port": int(entity.findtext(f"{{{NS}}}Port") or 0),
        "version": __version__,
    }
    return [Found(fields, ref, entity)]


def _restore_point_rows(request: Request, who: Caller) -> list[Found]:
    ctx = ctx_of(request)
    names = {j.id: j.name for j in jobs.list_jobs(ctx)}
    rows = []
    for point in restore_points.list_points(ctx):
        name = names.get(point.job_id or "", "")
        fields = {
            "name": f"{name}@{iso(point.backup_time)}",
            "jobname": name,
            "uid": f"urn:veeam:RestorePoint:{point.id}",
            "backupdate": iso(point.backup_time),
            "backupdateutc": iso(point.backup_time),
        }
        rows.append(
            Found(
                fields,
                restore_point_reference(who, point, name, "Ref"),
                restore_point_entity(who, point, name),
            )
        )
    return rows


QUERY_TYPES = {
    "job": ("Jobs", _job_rows),
    "backupjobsession": ("BackupJobSessions", _session_rows),
    "repository": ("Repositories", _repository_rows),
    "backupserver": ("BackupServers", _server_rows),
    "restorepoint": ("RestorePoints", _restore_point_rows),
}
MAX_PAGE = 2**31 - 1  # PagingInfo's PageNum is an xsd:int
QUERY_TYPE_NAMES = ("Job", "BackupJobSession", "Repository", "BackupServer", "RestorePoint")


@router.get("/query")
def query(
    request: Request,
    who: Who,
    type: str = "",
    format: str = "Refs",
    filter: str | None = None,
    sortAsc: str | None = None,
    sortDesc: str | None = None,
    pageSize: int = 100,
    page: int = 1,
) -> Response:
    kind = QUERY_TYPES.get(type.lower())
    if kind is None:
        raise InvalidInput(
            f"query type '{type}' is not supported; use one of " + ", ".join(QUERY_TYPE_NAMES),
            "type",
        )
    if format.lower() not in ("refs", "entities"):
        raise InvalidInput("format must be Refs or Entities", "format")
    if not 1 <= pageSize <= 10_000:
        raise InvalidInput("must be 1 to 10000", "pageSize")
    if not 1 <= page <= MAX_PAGE:
        raise InvalidInput(f"must be 1 to {MAX_PAGE}", "page")
    found = kind[1](request, who)
    if filter:
        keep = parse_filter(filter)
        found = [row for row in found if keep(row.fields)]
    if sortAsc or sortDesc:
        found.sort(
            key=lambda row: sort_key(sortAsc or sortDesc or "")(row.fields),
            reverse=bool(sortDesc and not sortAsc),
        )
    pages = max(1, -(-len(found) // pageSize))
    shown = found[(page - 1) * pageSize : page * pageSize]
    listing = (
        element("Refs", None, *(row.ref for row in shown))
        if format.lower() == "refs"
        else element("Entities", None, element(kind[0], None, *(row.entity for row in shown)))
    )
    return answer(
        request,
        element(
            "QueryResult",
            None,
            listing,
            element(
                "PagingInfo",
                {"PageNum": str(page), "PageSize": str(pageSize), "PagesCount": str(pages)},
                _paging_links(request, page, pages),
            ),
        ),
    )


def _paging_links(request: Request, page: int, pages: int) -> etree._Element:
    def at(number: int) -> str:
        params = dict(request.query_params) | {"page": str(number)}
        return f"{base_of(request)}/query?" + "&".join(f"{k}={v}" for k, v in params.items())

    entries: list[tuple[str, str, str | None]] = [("First", at(1), None)]
    if page > 1:
        entries.append(("Previous", at(page - 1), None))
    if page < pages:
        entries.append(("Next", at(page + 1), None))
    entries.append(("Last", at(pages), None))
    return links(*entries)
