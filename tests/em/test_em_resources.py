"""Enterprise Manager backup sessions, repositories and this backup server."""

from __future__ import annotations

from typing import Any

from keepstone.api.em.xml import NS
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
    assert em.xml("GET", f"/api/repositories/{repo['id']}").tag == f"{{{NS}}}EntityRef"
    entity = em.xml("GET", f"/api/repositories/{repo['id']}?format=Entity")
    assert int(entity.findtext("e:Capacity", namespaces=N) or 0) == repo["capacity"]
    assert int(entity.findtext("e:FreeSpace", namespaces=N) or 0) > 0
    listed = em.xml("GET", "/api/repositories?format=Entity")
    assert len(listed.findall("e:Repository", N)) == 1
    # Without a format a list is references (backupservers.html), even of the one server.
    [server_ref] = em.xml("GET", "/api/backupServers").findall("e:Ref", N)
    assert server_ref.get("Type") == "BackupServerReference"
    [server] = em.xml("GET", "/api/backupServers?format=Entity").findall("e:BackupServer", N)
    assert server.findtext("e:Port", namespaces=N) == "4443"
    path = server.get("Href", "").split("4443", 1)[1]
    assert path.endswith("?format=Entity") and em.xml("GET", path).tag == f"{{{NS}}}BackupServer"
    assert em.request("GET", "/api/backupServers/other").status_code == 404
    assert em.request("GET", "/api/repositories/nope").status_code == 404


def test_the_query_service(
    em: Em, api: Api, job: dict[str, Any], org: dict[str, Any], repo: dict[str, Any]
) -> None:
    for name in ("alpha", "beta", "gamma"):
        api.post(f"/v2/Organizations/{org['id']}/Jobs", {"name": name, "repositoryId": repo["id"]})
    api.post(f"/v2/Jobs/{job['id']}/Action", {"disable": None})
    refs = em.xml("GET", "/api/query?type=Job&filter=ScheduleEnabled==true&sortDesc=name")
    assert [r.get("Name") for r in refs.findall("e:Refs/e:Ref", N)] == ["gamma", "beta", "alpha"]
    paging = refs.find("e:PagingInfo", N)
    assert paging is not None and (paging.get("PageNum"), paging.get("PagesCount")) == ("1", "1")

    page = em.xml(
        "GET",
        '/api/query?type=job&format=Entities&filter=(name=="alpha",name==beta)'
        "&sortAsc=Name&pageSize=1&page=2",
    )
    [entity] = page.findall("e:Entities/e:Jobs/e:Job", N)
    assert entity.get("Name") == "beta"
    paging = page.find("e:PagingInfo", N)
    assert paging is not None and (paging.get("PageSize"), paging.get("PagesCount")) == ("1", "2")
    rels = [link.get("Rel") for link in paging.iterfind("e:Links/e:Link", N)]
    assert rels == ["First", "Previous", "Last"]

    servers = em.xml("GET", "/api/query?type=BackupServer&format=Entities")
    assert len(servers.findall("e:Entities/e:BackupServers/e:BackupServer", N)) == 1
    repos = em.xml("GET", "/api/query?type=Repository&filter=freespace>0")
    assert len(repos.findall("e:Refs/e:Ref", N)) == 1
    as_json = em.request(
        "GET", "/api/query?type=Job&filter=name==alpha", headers={"Accept": "application/json"}
    ).json()
    # The vendor nests a query's refs as Refs.Refs[] and types PagingInfo's ints (RestAPI.xsd).
    assert as_json["Refs"]["Refs"][0]["Name"] == "alpha"
    assert as_json["PagingInfo"]["PagesCount"] == 1

    for bad in (
        "type=Planet",
        "type=Job&filter=name==",
        "type=Job&format=Rows",
        "type=Job&pageSize=0",
    ):
        response = em.request("GET", f"/api/query?{bad}")
        assert response.status_code == 400, bad


def test_query_backup_sessions_by_result_order(
    em: Em, api: Api, job: dict[str, Any], worker: ProxyWorker
) -> None:
    api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None})
    worker.run_one()
    found = em.xml(
        "GET", "/api/query?type=BackupJobSession&filter=result<=warning;jobname==test_job"
    )
    assert len(found.findall("e:Refs/e:Ref", N)) == 1
    none = em.xml("GET", "/api/query?type=BackupJobSession&filter=result>warning")
    assert none.findall("e:Refs/e:Ref", N) == []


def test_summary_reports(
    em: Em, api: Api, job: dict[str, Any], worker: ProxyWorker, clock: Any
) -> None:
    from datetime import timedelta

    api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None})
    clock.advance(timedelta(seconds=42))
    worker.run_one()
    overview = em.xml("GET", "/api/reports/summary/overview")
    assert overview.findtext("e:ScheduledJobs", namespaces=N) == "1"
    assert overview.findtext("e:SuccessfulVmLastestStates", namespaces=N) == "1"
    assert overview.findtext("e:RepositoryServers", namespaces=N) == "1"
    stats = em.xml("GET", "/api/reports/summary/job_statistics")
    assert stats.findtext("e:TotalJobRuns", namespaces=N) == "1"
    assert stats.findtext("e:SuccessfulJobRuns", namespaces=N) == "1"
    assert stats.findtext("e:MaxJobDuration", namespaces=N) == "42"
    assert stats.findtext("e:MaxDurationBackupJobName", namespaces=N) == "test_job"
    repository = em.xml("GET", "/api/reports/summary/repository")
    [period] = repository.findall("e:Period", N)
    assert period.findtext("e:Name", namespaces=N) == "Default Backup Repository"
    assert int(period.findtext("e:BackupSize", namespaces=N) or 0) > 0


def test_the_reports_count_a_stopped_run_as_the_sessions_show_it(
    em: Em, api: Api, job: dict[str, Any], worker: ProxyWorker
) -> None:
    """A run stopped while queued is ``Failed`` in ``/api/backupSessions``; the reports, which
    monitors read instead (``FailedJobRuns > 0`` is critical in Linuxfabrik's veeam-status),
    counted it in ``TotalJobRuns`` and as nothing else."""
    api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None})
    worker.run_one()
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None}).status_code == 200
    assert api.post(f"/v2/Jobs/{job['id']}/Action", {"stop": None}).status_code == 200
    sessions = em.xml("GET", "/api/backupSessions?format=Entity")
    results = sorted(s.findtext("e:Result", namespaces=N) or "" for s in sessions)
    assert results == ["Failed", "Success"]
    stats = em.xml("GET", "/api/reports/summary/job_statistics")
    assert [
        stats.findtext(f"e:{name}", namespaces=N)
        for name in ("TotalJobRuns", "SuccessfulJobRuns", "WarningsJobRuns", "FailedJobRuns")
    ] == ["2", "1", "0", "1"]
    overview = em.xml("GET", "/api/reports/summary/overview")  # the job's latest run: stopped
    assert [
        overview.findtext(f"e:{state}VmLastestStates", namespaces=N)
        for state in ("Successful", "Warning", "Failed")
    ] == ["0", "0", "1"]


def test_restore_points(em: Em, api: Api, job: dict[str, Any], worker: ProxyWorker) -> None:
    api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None})
    worker.run_one()
    [point] = api.get("/v2/RestorePoints").json()
    [ref] = em.xml("GET", "/api/restorePoints").findall("e:Ref", N)
    assert ref.get("UID") == f"urn:veeam:RestorePoint:{point['id']}"
    entity = em.xml("GET", f"/api/restorePoints/{point['id']}?format=Entity")
    assert entity.findtext("e:BackupDateUTC", namespaces=N) == point["backupTime"]
    assert entity.get("Name") == f"test_job@{point['backupTime']}"
    listed = em.xml("GET", "/api/restorePoints?format=Entity")
    assert len(listed.findall("e:RestorePoint", N)) == 1
    assert em.request("GET", "/api/restorePoints/nope").status_code == 404


def test_query_restore_points(em: Em, api: Api, job: dict[str, Any], worker: ProxyWorker) -> None:
    api.post(f"/v2/Jobs/{job['id']}/Action", {"start": None})
    worker.run_one()
    found = em.xml("GET", "/api/query?type=RestorePoint&format=Entities&filter=jobname==test_job")
    assert len(found.findall("e:Entities/e:RestorePoints/e:RestorePoint", N)) == 1
    none = em.xml("GET", "/api/query?type=RestorePoint&filter=backupdate<2020-01-01T00:00:00Z")
    assert none.findall("e:Refs/e:Ref", N) == []
