"""Backup job sessions: ``/api/backupSessions`` and a job's sessions."""

from typing import Any

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api.em.deps import (
    Caller,
    Who,
    answer,
    boolean,
    ctx_of,
)
from keepstone.api.em.hypermedia import Link, entity_href, links_of, server_up
from keepstone.api.em.tasks import task_accepted
from keepstone.api.em.xml import child, element
from keepstone.api.vb365.views import iso
from keepstone.domain.errors import InvalidInput
from keepstone.services import jobs, runs, tasks
from keepstone.store.tables import JobSession

router = APIRouter(prefix="/api")


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


def session_name(session: JobSession, job_name: str) -> str:
    return f"{job_name}@{iso(session.creation_time)}"


def _session_links(who: Caller, session: JobSession, job_name: str, alternate: Link) -> list[Link]:
    """backupsessions_id.html: Up server (by name: clients find a session's server there), Up
    job, Alternate, Down task sessions."""
    href = session_href(who, session)
    return [
        server_up(who),
        Link("Up", who.href("jobs", session.job_id), "JobReference", job_name),
        alternate,
        Link("Down", f"{href}/taskSessions", "BackupTaskSessionReferenceList"),
    ]


def session_reference(
    who: Caller, session: JobSession, job_name: str, tag: str = "EntityRef"
) -> etree._Element:
    href = session_href(who, session)
    name = session_name(session, job_name)
    return element(
        tag,
        {
            "Href": href,
            "Type": "BackupJobSessionReference",
            "Name": name,
            "UID": f"urn:veeam:BackupJobSession:{session.id}",
        },
        links_of(
            *_session_links(
                who,
                session,
                job_name,
                Link("Alternate", entity_href(href), "BackupJobSession", name),
            )
        ),
    )


def session_entity(who: Caller, session: JobSession, job_name: str, failure: str) -> etree._Element:
    """backupsessions_id.html; its Related restore point link is left out (a Keepstone run
    makes one restore point per organization it saves, found under /restorePoints)."""
    state, result = SESSION_STATES[session.status]
    href = session_href(who, session)
    name = session_name(session, job_name)
    alternate = Link("Alternate", href, "BackupJobSessionReference", name)
    return element(
        "BackupJobSession",
        {
            "Href": entity_href(href),
            "Type": "BackupJobSession",
            "Name": name,
            "UID": f"urn:veeam:BackupJobSession:{session.id}",
        },
        links_of(
            *_session_links(who, session, job_name, alternate), Link("Stop", f"{href}?action=stop")
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
