"""The Enterprise Manager dialect's resources: ``/api/``, logon sessions, jobs and tasks.

Every write that changes a job is an asynchronous operation: the answer is ``202 Accepted`` with a
``Task`` the client polls (seed 000), even when the work is quick, so clients have one rule.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from lxml import etree
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from keepstone import __version__
from keepstone.api import public_url
from keepstone.api.em.deps import (
    SESSION_HEADER,
    Caller,
    LoggedOn,
    Who,
    answer,
    base_of,
    boolean,
    ctx_of,
    origin_of,
)
from keepstone.api.em.query import parse_filter, sort_key
from keepstone.api.em.schedule_xml import parse_schedule_options, render_schedule_options
from keepstone.api.em.xml import NS, child, element, links, parse_body, text_of
from keepstone.api.vb365.views import iso
from keepstone.domain.errors import BadCredentials, InvalidInput, NotFound, Unauthenticated
from keepstone.domain.jobs import JobEdit
from keepstone.services import auth, catalog, jobs, reports, restore_points, runs, tasks
from keepstone.store.codecs import policy_from_record
from keepstone.store.tables import Job, JobSession, Repository, RestorePoint, Task

router = APIRouter(prefix="/api")
VERSIONS = ("v1_1", "v1_2", "v1_3", "v1_4", "v1_5", "v1_6", "v1_7")


# ---- discovery and logon ----------------------------------------------------------------------


@router.get("/")
def enterprise_manager(request: Request) -> Response:
    base = base_of(request)
    versions = element(
        "SupportedVersions",
        None,
        *(
            element(
                "SupportedVersion",
                {"Name": v},
                links(("Create", f"{base}/sessionMngr/?v={v}", "LogonSession")),
            )
            for v in VERSIONS
        ),
    )
    document = element(
        "EnterpriseManager",
        {"Href": f"{base}/", "Type": "EnterpriseManager"},
        links(
            ("Down", f"{base}/logonSessions", "LogonSessionList"),
            ("Create", f"{base}/sessionMngr/?v=latest", "LogonSession"),
        ),
        versions,
    )
    return answer(request, document)


@router.post("/sessionMngr/")
def log_on(request: Request, v: str = "latest") -> Response:
    if v != "latest" and v not in VERSIONS:
        raise InvalidInput(
            f"API version '{v}' is not supported; use latest or one of " + ", ".join(VERSIONS), "v"
        )
    name, password = _basic_credentials(request)
    guard = request.app.state.login_guard
    try:
        logon = auth.start_logon(ctx_of(request), guard, name, password, origin_of(request))
    except BadCredentials:
        raise Unauthenticated("the user name or password is incorrect") from None
    request.state.user_name = logon.principal.user_name
    base = base_of(request)
    headers = {
        SESSION_HEADER: logon.token,
        "Location": f"{base}/logonSessions/{logon.session_id}",
        "Set-Cookie": session_cookie(request, logon.token),
    }
    return answer(
        request, logon_session(base, logon.session_id, logon.principal.user_name), 201, headers
    )


def session_cookie(request: Request, token: str) -> str:
    """The logon session's cookie: never readable by scripts nor sent cross-site, and over HTTPS
    never sent over plain HTTP."""
    secure = "; Secure" if public_url.is_secure(request) else ""
    return f"{SESSION_HEADER}={token}; Path=/api; HttpOnly; SameSite=Strict{secure}"


def _basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        name, found, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        found = ""
    if scheme.lower() != "basic" or not found:
        raise Unauthenticated("log on with HTTP Basic authentication")
    return name, password


def logon_session(base: str, session_id: str, user: str) -> etree._Element:
    href = f"{base}/logonSessions/{session_id}"
    return element(
        "LogonSession",
        {"Href": href, "Type": "LogonSession"},
        links(
            ("Up", f"{base}/", "EnterpriseManager"),
            ("Down", f"{base}/jobs", "JobReferenceList"),
            ("Down", f"{base}/jobs?format=Entity", "JobList"),
            ("Down", f"{base}/tasks", "TaskList"),
            ("Delete", href, None),
        ),
        child("UserName", user),
        child("SessionId", session_id),
    )


@router.get("/logonSessions/{session_id}")
def get_logon_session(session_id: str, request: Request, who: Who) -> Response:
    auth.get_logon(ctx_of(request), session_id, who.principal)
    return answer(request, logon_session(who.base, session_id, who.principal.user_name))


@router.delete("/logonSessions/{session_id}", status_code=204)
def log_off(session_id: str, request: Request, who: LoggedOn) -> Response:
    auth.end_logon(ctx_of(request), session_id, who.principal, origin_of(request))
    return Response(status_code=204)


# ---- jobs -------------------------------------------------------------------------------------


def job_uid(job: Job) -> str:
    return f"urn:veeam:Job:{job.id}"


def job_links(who: Caller, job: Job) -> etree._Element:
    href = who.href("jobs", job.id)
    return links(
        ("Up", who.href("jobs"), "JobReferenceList"),
        ("Alternate", href, "JobReference"),
        ("Edit", f"{href}?action=edit", "Job"),
        ("Start", f"{href}?action=start", None),
        ("Stop", f"{href}?action=stop", None),
        ("Retry", f"{href}?action=retry", None),
        ("Clone", f"{href}?action=clone", "Job"),
        ("ToggleScheduleEnabled", f"{href}?action=toggleScheduleEnabled", None),
    )


def job_reference(who: Caller, job: Job, tag: str = "EntityRef") -> etree._Element:
    return element(
        tag,
        {
            "Href": who.href("jobs", job.id),
            "Type": "JobReference",
            "Name": job.name,
            "UID": job_uid(job),
        },
        links(("Alternate", f"{who.href('jobs', job.id)}?format=Entity", "Job")),
    )


def job_entity(who: Caller, job: Job) -> etree._Element:
    policy = policy_from_record(job.schedule_policy)
    return element(
        "Job",
        {
            "Href": f"{who.href('jobs', job.id)}?format=Entity",
            "Type": "Job",
            "Name": job.name,
            "UID": job_uid(job),
        },
        job_links(who, job),
        child("JobType", "Backup"),
        child("Platform", "Microsoft365"),
        child("Description", job.description),
        child("ScheduleConfigured", boolean(policy.type.value != "ManualOnly")),
        child("ScheduleEnabled", boolean(job.is_enabled)),
        child("NextRun", iso(job.next_run)),
        render_schedule_options(policy),
    )


@router.get("/jobs")
def list_jobs(request: Request, who: Who, format: str = "References") -> Response:
    rows = jobs.list_jobs(ctx_of(request))
    if format.lower() == "entity":
        return answer(request, element("Jobs", None, *(job_entity(who, j) for j in rows)))
    return answer(
        request, element("EntityReferences", None, *(job_reference(who, j, "Ref") for j in rows))
    )


@router.get("/jobs/{job_id}")
def get_job(job_id: str, request: Request, who: Who, format: str = "Reference") -> Response:
    job = jobs.get_job(ctx_of(request), job_id)
    return answer(
        request, job_entity(who, job) if format.lower() == "entity" else job_reference(who, job)
    )


@router.put("/jobs/{job_id}")
async def edit_job(job_id: str, request: Request, who: Who, action: str = "edit") -> Response:
    """Seed 000: the body conforms to RestAPI.xsd and holds the whole job or only what changes."""
    if action.lower() != "edit":
        raise InvalidInput(f"PUT takes ?action=edit, not '{action}'", "action")
    edit = job_edit(parse_body(await request.body(), "Job", request.headers.get("content-type")))
    ctx = ctx_of(request)

    def work() -> tuple[str, dict[str, Any]]:
        jobs.edit_job(ctx, job_id, edit)
        return "Ok", {}

    def accept() -> Task:
        jobs.get_job(ctx, job_id)  # an unknown job is a 404 now, not a failed task later
        return tasks.submit(ctx, who.logon_session_id, "EditJob", work)

    return task_accepted(request, who, await run_in_threadpool(accept))


def job_edit(document: etree._Element) -> JobEdit:
    """What a Job body changes. Its attributes (Href, Type, Name, UID) identify the job and are
    required by the schema, so they are not edits; JobType, Platform, ScheduleConfigured and
    NextRun are read-only and ignored, like read-only JSON properties."""
    if document.find("{http://www.veeam.com/ent/v1.0}JobInfo") is not None:
        raise InvalidInput(
            "JobInfo (backup objects of a virtual machine job) cannot be edited: "
            "Keepstone jobs protect organizations",
            "Job/JobInfo",
        )
    enabled = text_of(document, "ScheduleEnabled")
    options = document.find("{http://www.veeam.com/ent/v1.0}JobScheduleOptions")
    return JobEdit(
        description=text_of(document, "Description"),
        is_enabled=None if enabled is None else enabled.strip() in ("true", "1"),
        schedule=None if options is None else parse_schedule_options(options),
    )


ACTIONS = {
    "start": "StartJob",
    "stop": "StopJob",
    "retry": "RetryJob",
    "togglescheduleenabled": "UpdateJob",
    "clone": "CloneJob",
}


@router.post("/jobs/{job_id}")
def job_action(job_id: str, request: Request, who: Who, action: str = "") -> Response:
    operation = ACTIONS.get(action.lower())
    if operation is None:
        raise InvalidInput(f"action must be one of {', '.join(sorted(ACTIONS))}", "action")
    ctx = ctx_of(request)
    job = jobs.get_job(ctx, job_id)

    def work() -> tuple[str, dict[str, Any]]:
        match operation:
            case "StartJob" | "RetryJob":
                runs.start_job(ctx, job.id, f"Started through Enterprise Manager ({action})")
                return f'Job "{job.name}" triggered to start.', {}
            case "StopJob":
                runs.stop_job(ctx, job.id)
                return f'Job "{job.name}" triggered to stop.', {}
            case "UpdateJob":
                changed = jobs.toggle_schedule(ctx, job.id)
                state = "enabled" if changed.is_enabled else "disabled"
                return f'Schedule of job "{job.name}" {state}.', {}
        clone = jobs.clone_job(ctx, job.id)
        return f'Job "{job.name}" cloned as "{clone.name}".', {"job": clone.id}

    return task_accepted(request, who, tasks.submit(ctx, who.logon_session_id, operation, work))


# ---- tasks ------------------------------------------------------------------------------------


TASK_ID = re.compile(r"task-([0-9]+)")
MAX_TASK_NUMBER = 2**63 - 1  # SQLite's INTEGER: no task can have a larger number


def task_number(task_id: str) -> int:
    """The number of ``task-N``: a 400 if it is not of that form (ASCII digits only), a 404 if
    it is beyond any number a task can have."""
    match = TASK_ID.fullmatch(task_id)
    if match is None:
        raise InvalidInput(f"'{task_id}' is not a task id (task-N)", "taskId")
    digits = match.group(1).lstrip("0") or "0"
    if len(digits) > len(str(MAX_TASK_NUMBER)) or int(digits) > MAX_TASK_NUMBER:
        raise NotFound(f"task '{task_id}' does not exist")
    return int(digits)


def task_document(who: Caller, task: Task) -> etree._Element:
    href = who.href("tasks", f"task-{task.number}")
    entries: list[tuple[str, str, str | None]] = [("Delete", href, "Task")]
    if "job" in task.related:
        entries.append(("Related", who.href("jobs", task.related["job"]), "JobReference"))
    result = None
    if task.state == "Finished":
        result = element(
            "Result", {"Success": boolean(bool(task.success))}, child("Message", task.message)
        )
    return element(
        "Task",
        {"Href": href, "Type": "Task"},
        links(*entries),
        child("TaskId", f"task-{task.number}"),
        child("State", task.state),
        child("Operation", task.operation),
        result,
    )


def task_accepted(request: Request, who: Caller, task: Task) -> Response:
    href = who.href("tasks", f"task-{task.number}")
    return answer(request, task_document(who, task), 202, {"Location": href})


@router.get("/tasks")
def list_tasks(request: Request, who: Who) -> Response:
    found = tasks.list_for(ctx_of(request), who.logon_session_id)
    return answer(request, element("Tasks", None, *(task_document(who, t) for t in found)))


@router.get("/tasks/{task_id}")
def get_task(task_id: str, request: Request, who: Who) -> Response:
    return answer(request, task_document(who, tasks.get(ctx_of(request), task_number(task_id))))


@router.delete("/tasks/{task_id}", status_code=204)
def delete_task(task_id: str, request: Request, who: Who) -> Response:
    del who
    tasks.cancel(ctx_of(request), task_number(task_id))
    return Response(status_code=204)


# ---- backup sessions --------------------------------------------------------------------------

# Session status -> (EM State, EM Result). A stopped run did not complete: Failed, with the reason.
SESSION_STATES = {
    "Queued": ("Starting", "None"),
    "Running": ("Working", "None"),
    "Success": ("Stopped", "Success"),
    "Warning": ("Stopped", "Warning"),
    "Failed": ("Stopped", "Failed"),
    "Stopped": ("Stopped", "Failed"),
}


def session_href(who: Caller, session: JobSession) -> str:
    return who.href("backupSessions", session.id)


def session_reference(
    who: Caller, session: JobSession, job_name: str, tag: str = "EntityRef"
) -> etree._Element:
    return element(
        tag,
        {
            "Href": session_href(who, session),
            "Type": "BackupJobSessionReference",
            "Name": f"{job_name}@{iso(session.creation_time)}",
            "UID": f"urn:veeam:BackupJobSession:{session.id}",
        },
        links(("Alternate", f"{session_href(who, session)}?format=Entity", "BackupJobSession")),
    )


def session_entity(who: Caller, session: JobSession, job_name: str, failure: str) -> etree._Element:
    state, result = SESSION_STATES[session.status]
    href = session_href(who, session)
    return element(
        "BackupJobSession",
        {
            "Href": f"{href}?format=Entity",
            "Type": "BackupJobSession",
            "Name": f"{job_name}@{iso(session.creation_time)}",
            "UID": f"urn:veeam:BackupJobSession:{session.id}",
        },
        links(
            ("Up", who.href("backupSessions"), "BackupJobSessionReferenceList"),
            ("Up", who.href("jobs", session.job_id), "JobReference"),
            ("Stop", f"{href}?action=stop", None),
        ),
        child("JobUid", f"urn:veeam:Job:{session.job_id}"),
        child("JobName", job_name),
        child("JobType", "Backup"),
        child("CreationTimeUTC", iso(session.creation_time)),
        child("EndTimeUTC", iso(session.end_time)),
        child("State", state),
        child("Result", result),
        child("Progress", str(session.progress)),
        child("FailureMessage", failure),
        child("IsRetry", boolean(session.retry_count > 0)),
    )


def _sessions_document(
    request: Request, who: Caller, rows: list[JobSession], format: str
) -> Response:
    ctx = ctx_of(request)
    names = {j.id: j.name for j in jobs.list_jobs(ctx)}
    if format.lower() == "entity":
        return answer(
            request,
            element(
                "BackupJobSessions",
                None,
                *(
                    session_entity(who, s, names.get(s.job_id, ""), runs.failure_of(ctx, s.id))
                    for s in rows
                ),
            ),
        )
    return answer(
        request,
        element(
            "EntityReferences",
            None,
            *(session_reference(who, s, names.get(s.job_id, ""), "Ref") for s in rows),
        ),
    )


@router.get("/backupSessions")
def list_backup_sessions(request: Request, who: Who, format: str = "References") -> Response:
    return _sessions_document(request, who, runs.list_sessions(ctx_of(request)), format)


@router.get("/jobs/{job_id}/backupSessions")
def list_job_backup_sessions(
    job_id: str, request: Request, who: Who, format: str = "References"
) -> Response:
    return _sessions_document(request, who, runs.list_sessions(ctx_of(request), job_id), format)


@router.get("/backupSessions/{session_id}")
def get_backup_session(
    session_id: str, request: Request, who: Who, format: str = "Reference"
) -> Response:
    ctx = ctx_of(request)
    session = runs.get_session(ctx, session_id)
    name = jobs.get_job(ctx, session.job_id).name
    if format.lower() == "entity":
        return answer(request, session_entity(who, session, name, runs.failure_of(ctx, session.id)))
    return answer(request, session_reference(who, session, name))


@router.post("/backupSessions/{session_id}")
def backup_session_action(
    session_id: str, request: Request, who: Who, action: str = ""
) -> Response:
    if action.lower() != "stop":
        raise InvalidInput("action must be stop", "action")
    ctx = ctx_of(request)
    session = runs.get_session(ctx, session_id)

    def work() -> tuple[str, dict[str, Any]]:
        runs.stop_session(ctx, session.id)
        return f"Session {session.id} triggered to stop.", {}

    return task_accepted(request, who, tasks.submit(ctx, who.logon_session_id, "StopJob", work))


# ---- repositories and this backup server ------------------------------------------------------


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


# ---- the query service ------------------------------------------------------------------------


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


# ---- summary reports --------------------------------------------------------------------------


def report_frame(
    who: Caller, tag: str, path: str, fields: Iterable[tuple[str, object]]
) -> etree._Element:
    """A summary report: a frame of named figures, in the schema's order."""
    return element(
        tag,
        {"Href": who.href("reports", "summary", path), "Type": tag},
        *(child(name, str(value)) for name, value in fields),
    )


@router.get("/reports/summary/overview")
def overview_report(request: Request, who: Who) -> Response:
    f = reports.overview(ctx_of(request))
    return answer(
        request,
        report_frame(
            who,
            "OverviewReportFrame",
            "overview",
            (
                ("BackupServers", 1),
                ("ProxyServers", f.proxies),
                ("RepositoryServers", f.repositories),
                ("RunningJobs", f.running_jobs),
                ("ScheduledJobs", f.scheduled_jobs),
                ("SuccessfulVmLastestStates", f.successful),
                ("WarningVmLastestStates", f.warning),
                ("FailedVmLastestStates", f.failed),
            ),
        ),
    )


@router.get("/reports/summary/job_statistics")
def job_statistics_report(request: Request, who: Who) -> Response:
    f = reports.job_statistics(ctx_of(request))
    return answer(
        request,
        report_frame(
            who,
            "JobStatisticsReportFrame",
            "job_statistics",
            (
                ("RunningJobs", f.running_jobs),
                ("ScheduledJobs", f.scheduled_jobs),
                ("ScheduledBackupJobs", f.scheduled_jobs),
                ("ScheduledReplicaJobs", 0),
                ("TotalJobRuns", f.total_runs),
                ("SuccessfulJobRuns", f.successful_runs),
                ("WarningsJobRuns", f.warning_runs),
                ("FailedJobRuns", f.failed_runs),
                ("MaxJobDuration", f.longest_seconds),
                ("MaxBackupJobDuration", f.longest_seconds),
                ("MaxReplicaJobDuration", 0),
                ("MaxDurationBackupJobName", f.longest_job),
                ("MaxDurationReplicaJobName", ""),
                ("BackupJobStatusReportLink", who.href("backupSessions")),
            ),
        ),
    )


@router.get("/reports/summary/repository")
def repository_report(request: Request, who: Who) -> Response:
    periods = (
        element(
            "Period",
            None,
            child("Name", use.name),
            child("Capacity", str(use.capacity)),
            child("FreeSpace", str(use.free)),
            child("BackupSize", str(use.backup_size)),
        )
        for use in reports.repository_use(ctx_of(request))
    )
    return answer(
        request,
        element(
            "RepositoryReportFrame",
            {"Href": who.href("reports", "summary", "repository"), "Type": "RepositoryReportFrame"},
            *periods,
        ),
    )


# ---- restore points ---------------------------------------------------------------------------


def restore_point_entity(who: Caller, point: RestorePoint, job_name: str) -> etree._Element:
    href = who.href("restorePoints", point.id)
    name = f"{job_name}@{iso(point.backup_time)}"
    return element(
        "RestorePoint",
        {
            "Href": f"{href}?format=Entity",
            "Type": "RestorePoint",
            "Name": name,
            "UID": f"urn:veeam:RestorePoint:{point.id}",
        },
        links(("Up", who.href("restorePoints"), "RestorePointReferenceList")),
        element(
            "Ref",
            {
                "Href": who.href("repositories", point.repository_id),
                "Type": "RepositoryReference",
                "Name": point.repository_id,
                "UID": f"urn:veeam:Repository:{point.repository_id}",
            },
        ),
        child("BackupDateUTC", iso(point.backup_time)),
    )


def restore_point_reference(
    who: Caller, point: RestorePoint, job_name: str, tag: str = "EntityRef"
) -> etree._Element:
    return element(
        tag,
        {
            "Href": who.href("restorePoints", point.id),
            "Type": "RestorePointReference",
            "Name": f"{job_name}@{iso(point.backup_time)}",
            "UID": f"urn:veeam:RestorePoint:{point.id}",
        },
        links(
            ("Alternate", f"{who.href('restorePoints', point.id)}?format=Entity", "RestorePoint")
        ),
    )


@router.get("/restorePoints")
def list_restore_points(request: Request, who: Who, format: str = "References") -> Response:
    ctx = ctx_of(request)
    names = {j.id: j.name for j in jobs.list_jobs(ctx)}
    points = restore_points.list_points(ctx)
    if format.lower() == "entity":
        return answer(
            request,
            element(
                "RestorePoints",
                None,
                *(restore_point_entity(who, p, names.get(p.job_id or "", "")) for p in points),
            ),
        )
    return answer(
        request,
        element(
            "EntityReferences",
            None,
            *(
                restore_point_reference(who, p, names.get(p.job_id or "", ""), "Ref")
                for p in points
            ),
        ),
    )


@router.get("/restorePoints/{point_id}")
def get_restore_point(
    point_id: str, request: Request, who: Who, format: str = "Reference"
) -> Response:
    ctx = ctx_of(request)
    point = restore_points.get_point(ctx, point_id)
    name = {j.id: j.name for j in jobs.list_jobs(ctx)}.get(point.job_id or "", "")
    if format.lower() == "entity":
        return answer(request, restore_point_entity(who, point, name))
    return answer(request, restore_point_reference(who, point, name))
