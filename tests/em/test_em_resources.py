"""Enterprise Manager backup sessions, repositories and this backup server."""

from __future__ import annotations

from typing import Any

from keepstone.proxy.worker import ProxyWorker
from tests.conftest import Api
from tests.em.conftest import Em, N


def test_backup_sessions_from_the_job_sessions(
    em: Em, api: Api, job: dict[str, Any], worker: ProxyWorker
) -> None:
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    worker.run_one()
    [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    refs = em.xml("GET", "/api/backupSessions")
    [ref] = refs.findall("e:Ref", N)
    assert ref.get("UID") == f"urn:veeam:BackupJobSession:{session['id']}"
    entity = em.xml("GET", f"/api/backupSessions/{session['id']}?format=Entity")
    assert entity.findtext("e:JobUid", namespaces=N) == f"urn:veeam:Job:{job['id']}"
    assert entity.findtext("e:JobName", namespaces=N) == "test_job"
    assert entity.findtext("e:CreationTimeUTC", namespaces=N) == session["creationTime"]
    assert (
        entity.findtext("e:State", namespaces=N),
        entity.findtext("e:Result", namespaces=N),
    ) == ("Stopped", "Success")
    assert entity.findtext("e:IsRetry", namespaces=N) == "false"
    per_job = em.xml("GET", f"/api/jobs/{job['id']}/backupSessions?format=Entity")
    assert len(per_job.findall("e:BackupJobSession", N)) == 1
    finished = em.wait_for(
        em.xml("POST", f"/api/backupSessions/{session['id']}?action=stop").get("Href") or ""
    )
    result = finished.find("e:Result", N)
    assert result is not None and result.get("Success") == "false"  # it had already ended
    assert "not running" in (result.findtext("e:Message", namespaces=N) or "")


def test_stop_a_queued_backup_session(em: Em, api: Api, job: dict[str, Any]) -> None:
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    [session] = api.get(f"/v2/Jobs/{job['id']}/JobSessions").json()
    done = em.wait_for(
        em.xml("POST", f"/api/backupSessions/{session['id']}?action=stop").get("Href") or ""
    )
    assert done.find("e:Result", N).get("Success") == "true"  # type: ignore[union-attr]
    entity = em.xml("GET", f"/api/backupSessions/{session['id']}?format=Entity")
    assert entity.findtext("e:Result", namespaces=N) == "Failed"
    assert "stopped by user" in (entity.findtext("e:FailureMessage", namespaces=N) or "")


def test_repositories_and_the_backup_server(em: Em, repo: dict[str, Any]) -> None:
    [ref] = em.xml("GET", "/api/repositories").findall("e:Ref", N)
    assert ref.get("UID") == f"urn:veeam:Repository:{repo['id']}"
    entity = em.xml("GET", f"/api/repositories/{repo['id']}")
    assert int(entity.findtext("e:Capacity", namespaces=N) or 0) == repo["capacity"]
    assert int(entity.findtext("e:FreeSpace", namespaces=N) or 0) > 0
    listed = em.xml("GET", "/api/repositories?format=Entity")
    assert len(listed.findall("e:Repository", N)) == 1
    [server] = em.xml("GET", "/api/backupServers").findall("e:BackupServer", N)
    assert server.findtext("e:Port", namespaces=N) == "4443"
    assert em.xml("GET", server.get("Href", "").split("4443", 1)[1]).tag.endswith("BackupServer")
    assert em.request("GET", "/api/backupServers/other").status_code == 404
    assert em.request("GET", "/api/repositories/nope").status_code == 404
