"""The table of every path of the vendor's v6, v7 and v8 specs in ``docs/compatibility.md``.

One row per path (the ``/vN`` prefix left out): for each version whether Keepstone serves every
method the spec has for it, some, or none, and why not. What is served is read from the app's
routes (``implemented_operations``); why something is not comes from ``REASONS``, and a path
that is not served and matches no reason is an error, so nothing is left unexplained.

    uv run python -m tests.contract.compat_table            # print the generated region
    uv run python -m tests.contract.compat_table --write    # rewrite it in docs/compatibility.md
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.contract.openapi import VERSIONS, Operation, normalise, spec

DOC = Path(__file__).resolve().parents[2] / "docs" / "compatibility.md"
BEGIN = "<!-- BEGIN GENERATED: vb365 paths -->"
END = "<!-- END GENERATED: vb365 paths -->"
SECTION_TITLE = "## Every path of the vendor's v6, v7 and v8 specs"
COMMAND = "uv run python -m tests.contract.compat_table --write"
METHOD_ORDER = ("GET", "POST", "PUT", "PATCH", "DELETE")
ABSENT = "\u2013"  # an en dash

_ID = r"\{[^}]+\}"
_LOCAL = (
    "Keepstone's organizations are local sources read from disk (Maildir++ mailboxes and "
    "OneDrive-style folders); there is no Microsoft Graph tenant"
)

# (regex on the version-less path, why it is not served): the first match wins, so the specific
# rules come before the general ones. Matching is case-insensitive.
REASONS: list[tuple[str, str]] = [
    # -- whole feature areas Keepstone has not --
    (
        r"^/DataRetriev",
        "data retrieval brings backups back from archive storage (Amazon S3 Glacier, Azure "
        "Blob Archive); Keepstone's repositories are local directories, always readable, whose "
        "restore points are explored directly",
    ),
    (
        r"^/CopyJobs(/|$)|/CopyJob$",
        "Keepstone has no backup copy jobs: a job writes its restore points to one repository",
    ),
    (
        r"/(Teams|Sites|Webs|Groups|ProtectedGroups|ProtectedSites|ProtectedTeams|GroupData|"
        r"SiteData|TeamData|searchTeams|versionBackupOptions)(/|$)",
        "no Keepstone source has Teams or SharePoint data yet: a Local organization has only "
        "mailboxes and OneDrive-style folders, so there are no sites, teams or Microsoft 365 "
        "groups to list, back up or restore",
    ),
    (
        r"^/(objectstoragerepositories|S3Resources|S3CompatibleResources|AzureResources|"
        r"EC2Resources|Accounts|AzureServiceAccounts)(/|$)",
        "Keepstone's repositories are local directories on a file system the server writes to; "
        "there is no object storage (Amazon S3, S3-compatible, Azure Blob), no cloud "
        "credentials and no archiver appliance (EC2 or Azure VM) to set up",
    ),
    (
        rf"^/BackupRepositories/{_ID}/changeOwner$|^/RepositoryOwnerChangeSessions(/|$)",
        "handing a repository's backups over to another organization (after a Microsoft 365 "
        "tenant migration) does not exist: a restore point keeps the organization it was "
        "taken from",
    ),
    (
        r"EmailSettings(/|$)|/send(ToDefaultAddress|ToDifferentAddress)?$",
        "Keepstone mails notifications about backup and copy jobs only (`VboEmailSettings`, "
        "over SMTP, with STARTTLS or TLS and a password): there are no audit or Explorer "
        "(Veod, Vesp, Vex, Vet) mail settings, no OAuth sign-in to Gmail or Microsoft 365 "
        "to send through, and backed-up items are saved (downloaded) or put back, never mailed",
    ),
    (
        r"/AuditItems(/|$)",
        "audit notifications are emails, and Keepstone sends none: every user is audited "
        "always, so audit items cannot be added or removed; `GET` lists the users whose data "
        "the audit trail records operations on, and `keepstone admin audit` lists the events",
    ),
    (
        r"^/(License|licensing|LicensedUsers)(/|$)",
        "Keepstone needs no licence: there is none to install, update, report on or revoke "
        "from a user (`GET /License` describes Keepstone's: valid, unlimited, never expiring; "
        "`GET /LicensedUsers` lists the users that have backups)",
    ),
    (
        r"^/Reports/",
        "Keepstone backs up no SharePoint sites or Teams, so it has no protection report on "
        "them; the user, mailbox, OneDrive, storage and licence reports are served",
    ),
    (
        r"^/token/AuthCode$",
        "Keepstone's users sign in with a user name and password (`grant_type=password`, or a "
        "refresh token); there are no Microsoft 365 accounts to sign in with an authorization "
        "code",
    ),
    (
        r"^/Organization(/|$)|/operator(Restore|Export|StartExportTask)(/|$)|"
        r"/startOperatorExportPosts$",
        "there is no self-service Restore Portal: its users sign in with their Microsoft 365 "
        "accounts, which Keepstone's local organizations do not have; restores are done by "
        "Keepstone's administrators through this API",
    ),
    (
        r"exportToPst",
        "Keepstone has no PST writer; save messages instead (`.../items/{itemId}/save` gives "
        "an `.eml` file, `.../items/Save` a zip of them)",
    ),
    (
        r"/search(Exchange)?$",
        "searching a restore session is not implemented; browse the folders and page through "
        "their items (`folderId`, `offset`, `limit`)",
    ),
    (
        r"/Versions(/|$)",
        "Keepstone keeps one version of a file per restore point; explore an earlier restore "
        "point to get an earlier version",
    ),
    # -- repositories --
    (
        rf"^/BackupRepositories/{_ID}/(MailboxData|OneDriveData|UserData|OrganizationData|"
        r"backedupOrganizations)(/|$)",
        "listing or removing a repository's data per user or organization is not served; "
        "`GET /RestorePoints?repositoryId=` lists what a repository holds",
    ),
    (
        rf"^/BackupRepositories/{_ID}/Sync$|^/RepositorySynchronizeSessions(/|$)",
        "the catalog is rebuilt from a repository when the repository is added (`POST "
        "/BackupRepositories` on a path that already holds one); there is no separate "
        "synchronisation session",
    ),
    (
        rf"^/BackupRepositories/{_ID}/explore$",
        "exploring a repository as a whole is not served; explore a job or an organization "
        "(`/Jobs/{jobId}/explore`, `/Organizations/{organizationId}/explore`), which opens the "
        "restore point of the given time",
    ),
    (
        r"^/EncryptionKeys(/|$)",
        "a repository's password is given when the repository is created (`encryptionPassword` "
        "on `POST /BackupRepositories`) and cannot be changed; passwords are not added or "
        "deleted on their own",
    ),
    (
        r"RetentionExclusion",
        "retention is per repository and snapshot-based (restore points older than the period "
        "expire, each job's newest one stays); no item types are excluded from it",
    ),
    # -- the Microsoft 365 tenant --
    (
        r"DeviceCode|/Applications$|/BackupApplications$|/BackupAccounts$|/Sync$|/SyncState$|"
        r"/tenantInformation$",
        f"{_LOCAL}: no Azure AD applications, device-code sign-in, backup accounts or tenant "
        "synchronisation",
    ),
    (
        rf"^/Organizations/{_ID}/Users/{_ID}/OneDrives(/|$)",
        "a Keepstone user has at most one OneDrive, the `OneDrive` folder beside their `Mail`; "
        "the OneDrives that were backed up are listed in a restore session "
        "(`.../Organization/OneDrives`)",
    ),
    # -- infrastructure and settings --
    (
        r"^/Prox",
        "a Keepstone proxy is the built-in one of a server or a `keepstone proxy` process that "
        "registers itself with a one-time token: there is no host to rescan or deploy to over "
        "SSH, and no SSH connection to check",
    ),
    (
        r"^/ExclusionSettings$",
        "Keepstone backs up every Maildir folder of a mailbox; there is no global list of "
        "excluded folders (a job's `ExcludedItems` leave out users, mailboxes or OneDrives)",
    ),
    (
        r"^/HistorySettings$",
        "Keepstone keeps a job's sessions for as long as the job exists; there is no history "
        "limit to set",
    ),
    (
        r"^/InternetProxySettings$",
        "Keepstone makes no outbound connections (its sources are local directories), so there "
        "is no internet proxy to configure",
    ),
    (
        r"^/ManagementMode$",
        "Keepstone is managed through this API and the `keepstone admin` command only; it is "
        "never managed by Veeam Service Provider Console or Veeam ONE",
    ),
    (
        r"^/Configuration/Updates$",
        "Keepstone does not update itself; install new releases with your package manager or "
        "deployment tooling",
    ),
    (
        r"^/(JobSessions|RestorePoints)/Changes$|^/Events$",
        "change feeds (a change token and long polling) are not served; poll the lists instead",
    ),
    # -- restore points and restore sessions --
    (
        rf"^/ProtectedUsers(/|$)|^/RestorePoints/{_ID}/(mailboxes|onedrives|protected\w+)$",
        "not implemented: explore the restore point (`POST /Jobs/{jobId}/explore` with its "
        "`backupTime`) and list the mailboxes and OneDrives of the restore session",
    ),
    (
        rf"^/RestoreSessions/{_ID}/organization/(mailboxes|OneDrives)/restore$",
        "restoring several mailboxes or OneDrives in one request is not served; restore each "
        "one (`.../{mailboxId}/restore`, `.../{oneDriveId}/restore`)",
    ),
    (
        rf"/Folders(/{_ID})?/(restore|restoreTo|copyTo|save)$",
        "putting back or saving a folder as a whole is not served; list its items "
        "(`folderId`) and restore or save them by id",
    ),
    (
        rf"/OneDrives/{_ID}/save$",
        "saving a whole OneDrive in one request is not served; save its documents by id "
        "(`.../Documents/save`)",
    ),
    (
        rf"^/RestoreSessions/{_ID}/organization/(mailboxes|OneDrives)(/{_ID}(/Folders)?)?$",
        "Keepstone serves these for mailboxes and OneDrives through one route, "
        "`/RestoreSessions/{id}/Organization/{collection}[/{ownerId}/Folders]`, which this "
        "table does not count as the spec's path",
    ),
    (
        rf"/(items|Documents)/{_ID}$",
        "not implemented: an item's or document's properties are in its listing "
        "(`.../items`, `.../Documents`)",
    ),
]

# Served paths whose behaviour differs from the vendor's (version-less path -> note).
DIFFERENCES: dict[str, str] = {
    "/token": (
        "password and refresh-token grants; tokens are opaque random strings, not JWTs; "
        "refresh tokens work once"
    ),
    "/Organizations": (
        "POST creates `Local` organizations only (`localSettings.path`: a directory of "
        "Maildir++ mailboxes and OneDrive-style folders); other types answer 400"
    ),
    "/BackupRepositories": (
        "POST takes a local directory (created if missing; a Keepstone repository already "
        "there is attached with its restore points); Keepstone's write-only "
        "`encryptionPassword` makes it encrypted"
    ),
    "/BackupRepositories/{repositoryId}": (
        "the path of an existing repository cannot change (400); a repository used by a job "
        "cannot be deleted (409)"
    ),
    "/Organizations/{organizationId}/usedRepositories": (
        "the repositories its backup and copy jobs write to or that hold its restore points; "
        "a repository shared by organizations is apportioned among them by the size of their "
        "latest restore points there (deduplication makes a shared byte no one's); "
        "`details` is the repository's name; `protectedObjectsCount` is `null`"
    ),
    "/RestorePoints": (
        "`from`/`to` (inclusive; an instant without a zone is UTC), `isCopy` (a copy job's "
        "points), `orderAsc`; `isLongTermCopy`, `isRetrieved`, `groupId`, `siteId`, `teamId` "
        "find no point (none are made); `userId` is refused (400): which points hold a user "
        "is in their snapshots, not the catalog; v6's `backupTime` is not read; v8's `eTag` "
        "and `objectsEtag` are a digest of the point's snapshot (item-level retention changes "
        "them)"
    ),
    "/JobSessions": (
        "v8's `eTag` is a digest of what changes in a session (status, progress, end, retries, "
        "details): it changes when the session does"
    ),
    "/License": (
        "type `Community`, status `Valid`, no expiry (`null`), `totalNumber` the int32 maximum "
        "(no limit), `usedNumber` the users with a backup, `licenseID` the installation's id"
    ),
    "/Proxies/{proxyId}": (
        "the built-in proxy of each server and remote `keepstone proxy` processes; status, "
        "`version` and the load are what each last reported; PUT changes `description` and "
        "`threadsNumber`"
    ),
    "/Proxies": (
        "POST adds a remote proxy (`hostName`, `port`, `description`, `threadsNumber`) that "
        "`keepstone proxy --name <hostName>` then registers as; the vendor's deployment "
        "properties (domain, credentials, SSH, service account) are ignored; v8's `role` is "
        "`Processor` (the server schedules), `useInternetProxy` false, `operatingSystem` "
        "shown for a server's built-in proxy only (a remote one does not report it)"
    ),
    "/Proxies/{proxyId}/maintenance/enable": (
        "the proxy claims nothing more; the runs it works finish (`maintenanceModeState` is "
        "`Enabling` until they have); the credentials in the body are not needed"
    ),
    "/ProxyPools": (
        "a pool's members run the jobs of the repositories it owns (`proxyPoolId`), the least "
        "loaded member first; a proxy belongs to one pool at most"
    ),
    "/ProxyPools/{poolId}": (
        "PUT with `proxyIds` sets the members; DELETE is refused (409) while the pool owns a "
        "repository"
    ),
    "/Proxies/{proxyId}/Remove": (
        "refused (409) for a built-in proxy and for one a repository or job uses, `force` or not"
    ),
    "/Jobs/{jobId}": (
        "answers carry an `ETag`; `If-Match` on PUT makes the edit conditional (412 once it "
        "no longer matches)"
    ),
    (
        "/RestoreSessions/{restoreSessionId}/organization/mailboxes/{mailboxId}/items/{itemId}/save"
    ): ("the message as sent, `message/rfc822` (an `.eml` file), not an Outlook MSG file"),
    "/RestoreSessions/{restoreSessionId}/organization/mailboxes/{mailboxId}/items/Save": (
        "a zip of `.eml` files"
    ),
}


class UnexplainedPath(LookupError):
    """A path that is not served has no entry in ``REASONS``."""


@dataclass(frozen=True)
class Row:
    path: str  # version-less, as the newest spec that has it spells it
    cells: dict[int, str]  # version -> "yes (GET, PUT)", "partly (GET)", "n/a" or ABSENT
    note: str


def version_less(template: str) -> str:
    return re.sub(r"^/v\d+(?=/)", "", template)


def reason_for(
    path: str, reasons: Sequence[tuple[str, str]] | None = None, table: str = __name__
) -> str:
    """The first reason of ``reasons`` (this module's ``REASONS`` by default) whose pattern
    matches ``path``; ``table`` names the module that holds them, for the error."""
    for pattern, reason in REASONS if reasons is None else reasons:
        if re.search(pattern, path, re.IGNORECASE):
            return reason
    raise UnexplainedPath(
        f"{path} is not served and no entry of REASONS in {table} says why; add one"
    )


def _methods(methods: set[str]) -> str:
    return ", ".join(sorted(methods, key=METHOD_ORDER.index))


def rows(implemented: Mapping[int, set[Operation] | frozenset[Operation]]) -> list[Row]:
    """The table, from what each version serves (``implemented_operations`` per version)."""
    spec_methods: dict[str, dict[int, set[str]]] = {}
    served: dict[str, dict[int, set[str]]] = {}
    spelled: dict[str, str] = {}
    for version in VERSIONS:
        for method, template in spec(version).operations():
            key = version_less(normalise(template))
            spelled[key] = version_less(template)  # the newest version's spelling wins
            spec_methods.setdefault(key, {}).setdefault(version, set()).add(method)
            if (method, template) in implemented.get(version, ()):
                served.setdefault(key, {}).setdefault(version, set()).add(method)
    differences = {version_less(normalise(path)): note for path, note in DIFFERENCES.items()}
    table: list[Row] = []
    for key, by_version in spec_methods.items():
        path = spelled[key]
        cells: dict[int, str] = {}
        missing: dict[int, set[str]] = {}
        for version in VERSIONS:
            methods = by_version.get(version)
            if methods is None:
                cells[version] = ABSENT
                continue
            got = served.get(key, {}).get(version, set())
            if got == methods:
                cells[version] = f"yes ({_methods(got)})"
            elif got:
                cells[version] = f"partly ({_methods(got)})"
            else:
                cells[version] = "n/a"
            if methods - got:
                missing[version] = methods - got
        notes = []
        if missing:
            notes.append(f"{_missing(missing)}: {reason_for(path)}")
        if key in differences:
            notes.append(differences[key])
        table.append(Row(path, cells, ". ".join(notes)))
    return sorted(table, key=lambda row: row.path.lower())


def _missing(missing: dict[int, set[str]]) -> str:
    """``GET, POST`` when every version lacks the same methods, else ``v6, v7: POST; v8: -``."""
    groups: dict[str, list[int]] = {}
    for version, methods in missing.items():
        groups.setdefault(_methods(methods), []).append(version)
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(
        f"{', '.join(f'v{v}' for v in versions)}: {methods}" for methods, versions in groups.items()
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(implemented: Mapping[int, set[Operation] | frozenset[Operation]]) -> str:
    """The generated region: legend, counts and the table (without the markers)."""
    table = rows(implemented)
    counts = []
    for version in VERSIONS:
        operations = spec(version).operations()
        served = len(implemented.get(version, set()) & operations)
        paths = [row for row in table if row.cells[version] != ABSENT]
        whole = sum(row.cells[version].startswith("yes") for row in paths)
        counts.append(
            f"- v{version}: {served} of {len(operations)} operations served; "
            f"{whole} of {len(paths)} paths with every method"
        )
    legend = (
        "One row per path of the vendor's OpenAPI specs (`reference/vb365-openapi`), the "
        "`/vN` prefix left out. For each version: `yes (…)` means every method the spec has "
        "for the path is served (they are listed); `partly (…)` means the listed methods are "
        "served and the note names the others and why not; `n/a` means none is served and "
        "the note says why; `\u2013` means the path is not in that version's spec. Paths match "
        "case-insensitively, so the vendor's own mix of cases (`/organization/mailboxes`, "
        "`/Organization/OneDrives`) is shown as its spec spells it. Generated from the specs "
        f"and the app's routes by `{COMMAND}`; do not edit it by hand."
    )
    legend = textwrap.fill(legend, width=100, break_long_words=False, break_on_hyphens=False)
    header = "| path | v6 | v7 | v8 | note |\n|---|---|---|---|---|"
    lines = [
        f"| `{row.path}` | "
        + " | ".join(row.cells[version] for version in VERSIONS)
        + f" | {_cell(row.note)} |"
        for row in table
    ]
    return "\n".join([legend, "", *counts, "", header, *lines])


@dataclass(frozen=True)
class Region:
    """Where a generated table lives in ``docs/compatibility.md``: its markers, and the section
    title it is appended under when the markers are absent."""

    begin: str
    end: str
    title: str


VB365_REGION = Region(BEGIN, END, SECTION_TITLE)


def rewrite(document: str, region: str, where: Region = VB365_REGION) -> str:
    """``document`` with the text between the markers replaced by ``region`` (the section is
    appended at the end when the markers are absent)."""
    block = f"{where.begin}\n{region}\n{where.end}"
    if where.begin in document and where.end in document:
        start = document.index(where.begin)
        end = document.index(where.end, start) + len(where.end)
        return document[:start] + block + document[end:]
    return document.rstrip("\n") + f"\n\n{where.title}\n\n{block}\n"


def committed_region(document: str, where: Region = VB365_REGION) -> str | None:
    if where.begin not in document or where.end not in document:
        return None
    start = document.index(where.begin) + len(where.begin)
    return document[start : document.index(where.end, start)].strip("\n")


def print_or_write(
    argv: Sequence[str] | None, region: str, where: Region, usage: str | None
) -> int:
    """The command line of a table generator: print ``region``, or write it into the doc with
    ``--write``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--write"]:
        DOC.write_text(rewrite(DOC.read_text(encoding="utf-8"), region, where), encoding="utf-8")
        print(f"rewrote the generated region {where.begin} of {DOC}")
    elif not args:
        print(region)
    else:
        print(usage, file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from tests.contract.served import implemented_by_version

    return print_or_write(argv, render(implemented_by_version()), VB365_REGION, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
