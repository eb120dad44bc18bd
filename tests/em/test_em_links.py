"""Item 4 of issue 11: links as the vendor orders them. Each test asserts one representation's
(Rel, Type) sequence as the vendor's page for it shows it (cited), less the links to what
Keepstone does not serve (left out, the others keeping their order; see ``hypermedia``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from lxml import etree

from keepstone.api.em.hypermedia import SERVER_ID
from keepstone.proxy.worker import ProxyWorker
from tests.conftest import Api
from tests.em.conftest import Em, N

SERVER = f"/api/backupServers/{SERVER_ID}"
UP_SERVER = ("Up", "BackupServerReference")


def sequence(document: etree._Element) -> list[tuple[str | None, str | None]]:
    return [(link.get("Rel"), link.get("Type")) for link in document.findall("e:Links/e:Link", N)]


def path_of(href: str) -> str:
    parts = urlsplit(href)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def ran(em: Em, api: Api, job: dict[str, Any], worker: ProxyWorker) -> dict[str, Any]:
    """A job that ran once for real: a session and a restore point."""
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    worker.run_one()
    [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    [point] = em.xml("GET", "/api/restorePoints").findall("e:Ref", N)
    return {"job": job, "session": session, "point": point.get("Href", "").rsplit("/", 1)[1]}


def test_enterprise_manager_links(em: Em) -> None:
    # reference: veeam-api.md 2.2 (a published fixture of GET /api/)
    assert sequence(em.xml("GET", "/api/")) == [
        ("Down", "LogonSessionList"),
        ("Create", "LogonSession"),
    ]


def test_logon_session_links(em: Em) -> None:
    # loginsessions.html (build 13.1): Up, the reference lists, tasks, the services, the entity
    # lists, Delete; /security, /vCloud, /selfService/vSphere and Create backupServers left out.
    logon = em.xml("GET", "/api/logonSessions").find("e:LogonSession", N)
    assert logon is not None
    links = sequence(logon)
    assert links[:8] == [
        ("Up", "EnterpriseManager"),
        ("Down", "BackupServerReferenceList"),
        ("Down", "ManagedServerReferenceList"),
        ("Down", "JobReferenceList"),
        ("Down", "FailoverPlanReferenceList"),
        ("Down", "HierarchyRootReferenceList"),
        ("Down", "RepositoryReferenceList"),
        ("Down", "BackupReferenceList"),
    ]
    services = [("Down", "TaskList"), ("Down", "QueryService"), ("Down", "LookupService")]
    start = links.index(("Down", "TaskList"))
    assert links[start : start + 4] == [*services, ("Down", "Report")]
    assert links[start + 4] == ("Down", "BackupServerList")
    assert links[-1] == ("Delete", None) and len(links) == 64
    summary = logon.findall("e:Links/e:Link", N)[start + 3]
    assert summary.get("Name") == "Summary"


def test_job_links(em: Em, job: dict[str, Any]) -> None:
    # jobs_id.html (entity; Create ObjectInJob left out) and resource_representation_for_ke.html
    entity = em.xml("GET", f"/api/jobs/{job['id']}?format=Entity")
    assert sequence(entity) == [
        UP_SERVER,
        ("Alternate", "JobReference"),
        ("Edit", "JobReference"),
        ("Clone", None),
        ("ToggleScheduleEnabled", None),
        ("Down", "ObjectInJobList"),
        ("Down", "BackupJobSessionReferenceList"),
        ("Start", None),
        ("Stop", None),
        ("Retry", None),
    ]
    assert [link.get("Name") for link in entity.findall("e:Links/e:Link", N)][1:3] == [
        "test_job",
        "test_job",
    ]
    assert sequence(em.xml("GET", f"/api/jobs/{job['id']}")) == [
        UP_SERVER,
        ("Alternate", "Job"),
        ("Down", "BackupJobSessionReferenceList"),
    ]


def test_backup_session_links_start_with_the_named_backup_server(
    em: Em, ran: dict[str, Any]
) -> None:
    # backupsessions_id.html (its Related restore point link left out)
    href = f"/api/backupSessions/{ran['session']['id']}"
    entity = em.xml("GET", f"{href}?format=Entity")
    assert sequence(entity) == [
        UP_SERVER,
        ("Up", "JobReference"),
        ("Alternate", "BackupJobSessionReference"),
        ("Down", "BackupTaskSessionReferenceList"),
        ("Stop", None),
    ]
    first = entity.find("e:Links/e:Link", N)
    assert first is not None and first.get("Name") == "backup.example.test"
    server = em.xml("GET", path_of(first.get("Href", "")))
    assert (
        server.get("Name") == "backup.example.test"
        and server.get("Type") == "BackupServerReference"
    )
    assert sequence(em.xml("GET", href)) == [
        UP_SERVER,
        ("Up", "JobReference"),
        ("Alternate", "BackupJobSession"),
        ("Down", "BackupTaskSessionReferenceList"),
    ]


def test_repository_links(em: Em, repo: dict[str, Any]) -> None:
    # repositories_id.html, both representations
    down = [("Down", "BackupReferenceList"), ("Down", "ReplicaReferenceList")]
    href = f"/api/repositories/{repo['id']}"
    entity = em.xml("GET", f"{href}?format=Entity")
    assert sequence(entity) == [UP_SERVER, ("Alternate", "RepositoryReference"), *down]
    assert sequence(em.xml("GET", href)) == [UP_SERVER, ("Alternate", "Repository"), *down]


def test_backup_server_links(em: Em) -> None:
    # backupservers_id.html (Edit, Delete, credentials, passwords and actions left out)
    down = [
        ("Down", "JobReferenceList"),
        ("Down", "ManagedServerReferenceList"),
        ("Down", "RepositoryReferenceList"),
    ]
    entity = em.xml("GET", f"{SERVER}?format=Entity")
    assert sequence(entity) == [("Alternate", "BackupServerReference"), *down]
    assert sequence(em.xml("GET", SERVER)) == [("Alternate", "BackupServer"), *down]


def test_restore_point_and_backup_links(em: Em, ran: dict[str, Any]) -> None:
    # restorepoints_id.html (its VM/vApp lists and backup files left out) and backups_id.html
    href = f"/api/restorePoints/{ran['point']}"
    ups = [("Up", "BackupReference"), UP_SERVER]
    assert sequence(em.xml("GET", f"{href}?format=Entity")) == [
        *ups,
        ("Alternate", "RestorePointReference"),
    ]
    assert sequence(em.xml("GET", href)) == [*ups, ("Alternate", "RestorePoint")]
    backup = f"/api/backups/{ran['job']['id']}"
    assert sequence(em.xml("GET", f"{backup}?format=Entity")) == [
        ("Up", "RepositoryReference"),
        UP_SERVER,
        ("Alternate", "BackupReference"),
        ("Down", "RestorePointReferenceList"),
    ]
    assert sequence(em.xml("GET", backup)) == [
        UP_SERVER,
        ("Up", "RepositoryReference"),
        ("Alternate", "Backup"),
        ("Down", "RestorePointReferenceList"),
    ]


def test_task_links(em: Em, job: dict[str, Any]) -> None:
    # veeam-api.md 2.5 (put_jobs_id_actionedit.html): Delete, then Related once finished
    task = em.xml("POST", f"/api/jobs/{job['id']}?action=clone")
    assert sequence(task)[0] == ("Delete", "Task")
    done = em.wait_for(task.get("Href") or "")
    assert sequence(done) == [("Delete", "Task"), ("Related", "JobReference")]


# What another helper of issue 11 serves (task sessions, the VM reports); not on this branch.


def test_every_link_to_read_leads_somewhere(em: Em, ran: dict[str, Any]) -> None:
    """Every Up, Down and Alternate link of every representation answers: no link points
    nowhere."""
    session = f"/api/backupSessions/{ran['session']['id']}"
    starts = [
        "/api/",
        "/api/logonSessions",
        f"/api/jobs/{ran['job']['id']}?format=Entity",
        f"/api/jobs/{ran['job']['id']}",
        f"{session}?format=Entity",
        session,
        f"/api/restorePoints/{ran['point']}?format=Entity",
        f"/api/backups/{ran['job']['id']}?format=Entity",
        f"{SERVER}?format=Entity",
        "/api/repositories?format=Entity",
        "/api/agents",
        "/api/nas",
        "/api/cloud",
        "/api/querySvc",
        "/api/reports/summary",
    ]
    followed = set()
    for start in starts:
        document = em.xml("GET", start)
        for link in document.iter(f"{{{N['e']}}}Link"):
            path = path_of(link.get("Href", ""))
            if link.get("Rel") in ("Up", "Down", "Alternate"):
                followed.add(path)
    for path in sorted(followed):
        assert em.request("GET", path).status_code == 200, path
    assert len(followed) > 100
