"""The table of every Enterprise Manager resource in ``docs/compatibility.md``.

One row per resource of ``reference/em-rest-resources.tsv`` (the vendor's EM REST reference):
whether Keepstone serves it, serves it as an always-empty collection, or does not serve it, and
why. What is served is read from the app's EM routes; "empty" comes from ``NO_OBJECTS`` (which
kinds of object Keepstone never has, checked against the answers by
``tests/contract/test_em_contract.py``); a resource that is not served and matches no entry of
``REASONS`` is an error, so nothing is left unexplained.

    uv run python -m tests.contract.em_compat_table            # print the generated region
    uv run python -m tests.contract.em_compat_table --write    # rewrite it in docs/compatibility.md
"""

from __future__ import annotations

import csv
import functools
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi.routing import APIRoute

from keepstone.api.em.resources import ROUTERS
from tests.contract.compat_table import Region, print_or_write, reason_for

RESOURCES = Path(__file__).resolve().parents[2] / "reference" / "em-rest-resources.tsv"
PAGE = "https://helpcenter.veeam.com/docs/vbr/em_rest/{}.html"
EM_REGION = Region(
    "<!-- BEGIN GENERATED: em resources -->",
    "<!-- END GENERATED: em resources -->",
    "## Every resource of the Enterprise Manager reference",
)
COMMAND = "uv run python -m tests.contract.em_compat_table --write"
METHOD_ORDER = ("GET", "POST", "PUT", "DELETE")
SERVED, EMPTY, NOT_SERVED = "served", "empty", "not served"

# (regex on the resource path, why Keepstone has no such objects): the collection answers, with
# no items. The first match wins; matching is case-insensitive.
NO_OBJECTS: list[tuple[str, str]] = [
    (
        r"^/(replicas|vmReplicaPoints|vAppReplicaPoints|replicaSessions|replicaTaskSessions|"
        r"failoverPlans)$|^/repositories/\{ID\}/replicas$",
        "Keepstone replicates nothing: it keeps backups in repositories only",
    ),
    (
        r"^/systemSessions$",
        "Keepstone is its own backup server: there are no Enterprise Manager system sessions "
        "(collecting data from backup servers) to list",
    ),
    (r"^/cdp", "Keepstone has no continuous data protection (CDP) replication"),
    (
        r"^/(vmRestorePoints|vAppRestorePoints|catalog/vms|hierarchyRoots|managedServers|"
        r"backupServers/\{ID\}/managedServers)$",
        "Keepstone backs up no virtual machines, vApps or virtualization hosts: its protected "
        "objects are the users of its organizations",
    ),
    (r"^/agents/", "no Veeam Agent computers, protection groups or agent backups exist here"),
    (r"^/nas/", "Keepstone has no file share (NAS) backup jobs or file servers"),
    (r"^/cloud/", "Keepstone is no Veeam Cloud Connect service provider"),
    (
        r"^/(wanAccelerators|externalRepositories|backupServers/\{ID\}/externalRepositories)$",
        "Keepstone has no WAN accelerators and no external (cloud object storage) repositories",
    ),
    (
        r"^/(restoreSessions|restorePoints/\{ID\}/(vmRestorePoints|vAppRestorePoints|"
        r"agentRestorePoints))$",
        "Keepstone's restores are VB365 restore sessions (`/vN/RestoreSessions`); no VM, vApp "
        "or agent restore points exist",
    ),
]

# (regex on the resource path, why it is not served): the first match wins; case-insensitive.
REASONS: list[tuple[str, str]] = [
    (
        r"/(credentials|passwords)(/|$)",
        "Keepstone stores no credentials or encryption passwords for backup servers to use; a "
        "repository's password is given when the repository is created (VB365 dialect)",
    ),
    (
        r"^/security(/|$)",
        "Keepstone's users and roles are managed with `keepstone admin user`; the fixed "
        "Administrator and ReadOnly roles have no hierarchy scopes",
    ),
    (
        r"^/(lookupSvc|lookup|hierarchyRoots/\{ID\}|managedServers/\{ID\})$",
        "there is no virtualization hierarchy (vCenter, Hyper-V) to look objects up in",
    ),
    (
        r"/mounts(/|$)|/guestfs/|^/catalog/",
        "file-level restore from VM restore points (mounts, guest file system browsing) needs "
        "VM backups, which Keepstone does not make; browse a restore point through the VB365 "
        "dialect's restore sessions instead",
    ),
    (
        r"/includes(/|$)",
        "a Keepstone job protects whole organizations or the users its `SelectedItems` name "
        "(VB365 dialect); it has no VM objects in job to list",
    ),
    (
        r"^/(backups|backupFiles)(/|$)|/(backups|backupFiles|childBackups)$",
        "Keepstone keeps no backup chains of files: a repository holds deduplicated restore "
        "points, listed at `/api/restorePoints`",
    ),
    (
        r"^/(replicas|vmReplicaPoints|vAppReplicaPoints|replicaSessions|replicaTaskSessions|"
        r"failoverPlans)(/|$)",
        "Keepstone replicates nothing: it keeps backups in repositories only",
    ),
    (r"^/cdp", "Keepstone has no continuous data protection (CDP) replication"),
    (
        r"^/(vmRestorePoints|vAppRestorePoints|catalog|hierarchyRoots|managedServers)(/|$)|"
        r"/managedServers$",
        "Keepstone backs up no virtual machines, vApps or virtualization hosts",
    ),
    (r"^/agents(/|$)", "no Veeam Agent computers, protection groups or agent backups exist here"),
    (r"^/nas(/|$)", "Keepstone has no file share (NAS) backup jobs or file servers"),
    (r"^/cloud(/|$)", "Keepstone is no Veeam Cloud Connect service provider"),
    (
        r"^/(vCloud|selfService)(/|$)",
        "there is no VMware Cloud Director and no vSphere Self-Service Backup Portal to configure",
    ),
    (
        r"^/systemSessions(/|$)",
        "Keepstone is its own backup server: there are no Enterprise Manager system sessions",
    ),
    (r"/replicas$", "Keepstone replicates nothing: it keeps backups in repositories only"),
    (
        r"^/(wanAccelerators|externalRepositories)(/|$)|/externalRepositories$",
        "Keepstone has no WAN accelerators and no external (cloud object storage) repositories",
    ),
    (
        r"^/restoreSessions(/|$)|/(vmRestorePoints|vAppRestorePoints|agentRestorePoints)$",
        "Keepstone's restores are VB365 restore sessions (`/vN/RestoreSessions`); no VM, vApp "
        "or agent restore points exist",
    ),
    (
        r"/agentManagementSessions$",
        "agent management sessions belong to Veeam Agent backup jobs, which Keepstone has not",
    ),
    (
        r"^/reports$",
        "the reporting service's entry point is not served; its one report collection, "
        "`/api/reports/summary`, is",
    ),
    (
        r"^/querySvc$|^/reports/summary$|^/reports/summary/(vms_overview|processed_vms)$",
        "not served yet",
    ),
    (r"^/logonSessions$", "not served yet: `GET /api/logonSessions/{id}` shows one session"),
    (
        r"^/(backupTaskSessions(/\{ID\})?|backupSessions/\{ID\}/taskSessions)$",
        "not served yet: a run's per-user outcomes are in the VB365 dialect's "
        "`ProcessedObjects` and log items",
    ),
    (
        r"^/backupServers/\{ID\}/(jobs|repositories)$",
        "not served yet: see `/api/jobs`, "
        "`/api/repositories` (this server is the only backup server)",
    ),
]


@dataclass(frozen=True)
class Resource:
    """One resource of the vendor's reference (a row of ``reference/em-rest-resources.tsv``)."""

    path: str
    methods: tuple[str, ...]
    root: str
    entity_root: str | None
    page: str
    source: str  # "page": the roots were read on the resource's page; "rule": the pages' rule

    @property
    def is_collection(self) -> bool:
        return self.root == "EntityReferences"

    @property
    def url(self) -> str:
        return PAGE.format(self.page)


@dataclass(frozen=True)
class Row:
    resource: Resource
    status: str  # SERVED, EMPTY or NOT_SERVED
    served_methods: tuple[str, ...]
    note: str


@functools.cache
def resources() -> tuple[Resource, ...]:
    """Every resource of the vendor's reference, in the list's order."""
    lines = [
        line
        for line in RESOURCES.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    table = csv.DictReader(lines, delimiter="\t")
    return tuple(
        Resource(
            path=row["path"],
            methods=tuple(row["methods"].split(",")),
            root=row["root"],
            entity_root=None if row["entity_root"] == "-" else row["entity_root"],
            page=row["page"],
            source=row["from"],
        )
        for row in table
    )


def template_key(path: str) -> str:
    """A path template with every parameter spelt ``{ID}``, lower case, without a trailing
    slash: the vendor's ``{vmname}`` and the app's ``{job_id}`` compare equal."""
    key = re.sub(r"\{[^}]+\}", "{ID}", path).lower()
    return key.rstrip("/") or "/"


def em_operations(routes: Iterable[object]) -> dict[str, set[str]]:
    """``template_key`` of every EM route (``/api`` left out) -> the methods it answers."""
    served: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api"):
            key = template_key(route.path.removeprefix("/api") or "/")
            served.setdefault(key, set()).update((route.methods or set()) - {"HEAD"})
    return served


def app_operations() -> dict[str, set[str]]:
    """The EM operations of the app as the code is now (read from ``ROUTERS``)."""
    return em_operations(route for router in ROUTERS for route in router.routes)


def _matching(path: str, table: Sequence[tuple[str, str]]) -> str | None:
    for pattern, reason in table:
        if re.search(pattern, path, re.IGNORECASE):
            return reason
    return None


def rows(served: Mapping[str, set[str]]) -> list[Row]:
    """The table, from the app's EM operations (``app_operations``)."""
    table: list[Row] = []
    for resource in resources():
        methods = tuple(
            m for m in METHOD_ORDER if m in served.get(template_key(resource.path), set())
        )
        methods = tuple(m for m in methods if m in resource.methods)
        if not methods:
            reason = reason_for(resource.path, REASONS, __name__)
            table.append(Row(resource, NOT_SERVED, (), reason))
            continue
        empty = _matching(resource.path, NO_OBJECTS) if "GET" in methods else None
        table.append(Row(resource, EMPTY if empty else SERVED, methods, empty or ""))
    return table


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(served: Mapping[str, set[str]]) -> str:
    """The generated region: legend, counts and the table (without the markers)."""
    table = rows(served)
    counts = {status: sum(row.status == status for row in table) for status in (SERVED, EMPTY)}
    legend = (
        "One row per resource of the vendor's Enterprise Manager REST reference "
        "(`reference/em-rest-resources.tsv` says how the list was compiled), under `/api`. "
        "`served` lists the vendor's methods Keepstone answers; `empty` means the collection "
        "answers, always without items, and the note says why Keepstone has no such objects; "
        "`not served` answers 404 and the note says why. Generated from the list and the "
        f"app's routes by `{COMMAND}`; do not edit it by hand."
    )
    legend = textwrap.fill(legend, width=100, break_long_words=False, break_on_hyphens=False)
    summary = (
        f"{counts[SERVED]} of {len(table)} resources served, {counts[EMPTY]} served empty, "
        f"{len(table) - counts[SERVED] - counts[EMPTY]} not served."
    )
    header = "| resource | vendor's methods | Keepstone | note |\n|---|---|---|---|"
    lines = [
        f"| [`{row.resource.path}`]({row.resource.url}) | {', '.join(row.resource.methods)} | "
        + (f"{row.status} ({', '.join(row.served_methods)})" if row.served_methods else row.status)
        + f" | {_cell(row.note)} |"
        for row in table
    ]
    return "\n".join([legend, "", summary, "", header, *lines])


def main(argv: Sequence[str] | None = None) -> int:
    return print_or_write(argv, render(app_operations()), EM_REGION, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
