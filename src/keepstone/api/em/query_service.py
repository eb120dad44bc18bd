"""The query service: ``/api/querySvc`` (its entry point) and ``/api/query``, which filters,
sorts and pages over every type of ``query_types``.

A result nests as RestAPI.xsd's ``QueryResultType`` says: ``Refs/Ref`` or
``Entities/<list>/<item>`` with the list element the schema's ``EntitiesType`` names
(``Entities/BackupJobSessions/BackupJobSession``); tasks, which have no references, come as
``Resources/Tasks``. A type newer than the shipped schema (agents, NAS, CDP, ...) nests the same
way under its plural name, outside the schema.
"""

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api.em.deps import Who, answer, base_of
from keepstone.api.em.hypermedia import Link, links_of
from keepstone.api.em.query import parse_filter_clause, sort_key
from keepstone.api.em.query_types import QUERY_TYPE_NAMES, query_type
from keepstone.api.em.queryable import Asked, Found, QueryType
from keepstone.api.em.schema_names import query_container
from keepstone.api.em.xml import element
from keepstone.domain.errors import InvalidInput

router = APIRouter(prefix="/api")
MAX_PAGE = 2**31 - 1  # PagingInfo's PageNum is an xsd:int
__all__ = ["QUERY_TYPE_NAMES", "router"]

# The vendor's /querySvc links in its order (querysvc.html): (link Type, query type, sort field).
QUERY_SERVICE_LINKS = (
    ("VmRestorePointList", "VmRestorePoint", "name"),
    ("VAppRestorePointList", "VAppRestorePoint", "name"),
    ("VmReplicaPointList", "VmReplicaPoint", "name"),
    ("TaskList", "Task", "TaskUid"),
    ("JobList", "Job", "name"),
    ("RestorePointList", "RestorePoint", "name"),
    ("BackupTaskSessionList", "BackupTaskSession", "name"),
    ("ReplicaTaskSessionList", "ReplicaTaskSession", "name"),
    ("RestoreSessionList", "RestoreSession", "name"),
    ("RepositoryList", "Repository", "name"),
    ("BackupList", "Backup", "name"),
    ("ReplicaList", "Replica", "name"),
    ("HierarchyRootList", "HierarchyRoot", "name"),
    ("BackupJobSessionList", "BackupJobSession", "name"),
    ("ReplicaJobSessionList", "ReplicaJobSession", "name"),
    ("BackupServerList", "BackupServer", "name"),
    ("ManagedServerList", "ManagedServer", "name"),
    ("FailoverPlanList", "FailoverPlan", "name"),
    ("WanAcceleratorList", "WanAccelerator", "name"),
    ("CloudGatewayList", "CloudGateway", "name"),
    ("CloudTenantList", "CloudTenant", "name"),
    ("PasswordKeyList", "Passwords", "BackupServerUid"),
    ("CredentialsList", "Credentials", "BackupServerUid"),
    ("CloudReplicaList", "CloudReplica", "name"),
    ("BackupFileList", "BackupFile", "name"),
    ("VCloudOrganizationConfigList", "VCloudOrganizationConfig", "name"),
    ("CloudSubtenantList", "CloudSubtenant", "Name"),
    ("CloudHardwarePlanList", "CloudHardwarePlan", "Name"),
    ("CloudPublicIpAddressList", "CloudPublicIpAddress", "Name"),
    ("AgentBackupJobList", "AgentBackupJob", "name"),
    ("AgentRestorePointList", "AgentRestorePoint", "name"),
    ("AgentProtectionGroupList", "AgentProtectionGroup", "name"),
    ("DiscoveredComputerList", "DiscoveredComputer", "name"),
    ("CloudFailoverPlanList", "CloudFailoverPlan", "Name"),
    ("CloudGatewayPoolList", "CloudGatewayPool", "Name"),
    ("VSphereSelfServiceConfigList", "VsphereSelfServiceConfig", "Name"),
    ("NasJobList", "NasJob", "name"),
    ("FileServerList", "FileServer", "name"),
    ("VAppReplicaPointList", "vAppReplicaPoint", "name"),
)


@router.get("/querySvc")
def query_service(request: Request, who: Who) -> Response:
    """querysvc.html: up to the caller's logon session, then one preconfigured query per type."""
    base = base_of(request)
    queries = (
        Link(
            "Down",
            f"{base}/query?"
            + urlencode(
                {"type": kind, "format": "Entities", "sortAsc": sort, "pageSize": 15, "page": 1}
            ),
            link_type,
        )
        for link_type, kind, sort in QUERY_SERVICE_LINKS
    )
    return answer(
        request,
        element(
            "QuerySvc",
            {"Href": who.href("querySvc"), "Type": "QueryService"},
            links_of(
                Link("Up", who.href("logonSessions", who.logon_session_id), "LogonSession"),
                *queries,
            ),
        ),
    )


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
    kind = query_type(type)
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
    shown, total = _page(request, who, kind, filter, sortAsc, sortDesc, page, pageSize)
    pages = max(1, -(-total // pageSize))
    paging = element(
        "PagingInfo",
        {"PageNum": str(page), "PageSize": str(pageSize), "PagesCount": str(pages)},
        _paging_links(request, page, pages),
    )
    return answer(request, element("QueryResult", None, _listing(kind, shown, format), paging))


def _page(
    request: Request,
    who: Who,
    kind: QueryType,
    text: str | None,
    ascending: str | None,
    descending: str | None,
    page: int,
    size: int,
) -> tuple[list[Found], int]:
    """One page of the type's rows and their count: read from the catalog when the type pages
    there and can evaluate the filter and order itself, else every row filtered and sorted in
    memory."""
    start = (page - 1) * size
    field = ascending or descending
    keep, clause = parse_filter_clause(text) if text else (None, None)
    if kind.pager is not None:
        order = None if not field else (field.lower(), bool(ascending))
        window = kind.pager(request, who, Asked(clause, order, start, size))
        if window is not None:
            return window.rows, window.total
    found = kind.rows(request, who)
    if keep is not None:
        found = [row for row in found if keep(row.fields)]
    found = _sorted(found, ascending, descending)
    return found[start : start + size], len(found)


def _sorted(found: list[Found], ascending: str | None, descending: str | None) -> list[Found]:
    field = ascending or descending
    if not field:
        return found
    return sorted(found, key=lambda row: sort_key(field)(row.fields), reverse=not ascending)


def _listing(kind: QueryType, shown: list[Found], format: str) -> etree._Element:
    """``Refs``, or the list of entities nested as the schema nests it."""
    holder, plural = query_container(kind.item) or ("Entities", f"{kind.item}s")
    if format.lower() == "refs" and holder == "Entities":
        return element("Refs", None, *(row.ref for row in shown))
    return element(holder, None, element(plural, None, *(row.entity for row in shown)))


def _paging_links(request: Request, page: int, pages: int) -> etree._Element:
    """First, Previous, Next, Last: this query with another page, its parameters encoded so a
    filter holding ``&``, ``;`` or spaces survives the round trip."""

    def at(number: int) -> str:
        params = dict(request.query_params) | {"page": str(number)}
        return f"{base_of(request)}/query?{urlencode(params)}"

    entries = [Link("First", at(1))]
    if page > 1:
        entries.append(Link("Previous", at(page - 1)))
    if page < pages:
        entries.append(Link("Next", at(page + 1)))
    entries.append(Link("Last", at(pages)))
    return links_of(*entries)
