"""Backup task sessions: one per protected user (a mailbox and OneDrive owner) of a job session.

Representation per RestAPI.xsd ``BackupTaskSessionEntityType`` and the vendor's reference pages
(helpcenter.veeam.com/docs/backup/em_rest/backuptasksessions_id.html,
get_backupsessions_id_tasksessions.html): a reference's links are Up to the backup server (with
its name), Up to the job session (with its name), then Alternate to the entity; the name is
``<user>@<yyyy-MM-dd HH:mm:ss>`` (UTC), State and Result as a job session's. ``TotalSize`` is
the size of the user's items in the run's restore point.
"""

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api.em.backup_servers import backup_server
from keepstone.api.em.backup_sessions import SESSION_STATES
from keepstone.api.em.deps import Caller, Who, answer, ctx_of
from keepstone.api.em.queryable import Found
from keepstone.api.em.xml import child, element, links
from keepstone.api.vb365.views import iso
from keepstone.services import task_sessions
from keepstone.services.task_sessions import TaskView

router = APIRouter(prefix="/api")


@dataclass(frozen=True, slots=True)
class Server:
    """The backup server every task ran on, as the Up link names it."""

    href: str
    name: str


def server_of(request: Request, who: Caller) -> Server:
    made = backup_server(request, who)
    return Server(made.get("Href", ""), made.get("Name", ""))


def task_name(view: TaskView) -> str:
    return f"{view.task.name}@{view.task.creation_time:%Y-%m-%d %H:%M:%S}"


def task_uid(view: TaskView) -> str:
    return f"urn:veeam:BackupTaskSession:{view.task.id}"


def session_name(view: TaskView) -> str:
    """The job session's name, as its own representation writes it."""
    return f"{view.job_name}@{iso(view.session_created)}"


def _attributes(who: Caller, view: TaskView, kind: str, entity: bool) -> dict[str, str]:
    href = who.href("backupTaskSessions", view.task.id)
    return {
        "Href": f"{href}?format=Entity" if entity else href,
        "Type": kind,
        "Name": task_name(view),
        "UID": task_uid(view),
    }


def _links(who: Caller, server: Server, view: TaskView, alternate: str) -> etree._Element:
    href = who.href("backupTaskSessions", view.task.id)
    session = who.href("backupSessions", view.task.session_id)
    entries = (
        ("Up", server.href, "BackupServerReference", server.name),
        ("Up", session, "BackupJobSessionReference", session_name(view)),
        (
            "Alternate",
            href if alternate == "BackupTaskSessionReference" else f"{href}?format=Entity",
            alternate,
            task_name(view),
        ),
    )
    made = links(*((rel, link, kind) for rel, link, kind, _ in entries))
    for link_element, (*_, name) in zip(made, entries, strict=True):
        link_element.set("Name", name)
    return made


def task_reference(
    who: Caller, server: Server, view: TaskView, tag: str = "EntityRef"
) -> etree._Element:
    return element(
        tag,
        _attributes(who, view, "BackupTaskSessionReference", entity=False),
        _links(who, server, view, "BackupTaskSession"),
    )


def task_entity(who: Caller, server: Server, view: TaskView) -> etree._Element:
    state, result = SESSION_STATES[view.task.status]
    attributes = _attributes(who, view, "BackupTaskSession", entity=True)
    return element(
        "BackupTaskSession",
        attributes | {"VmDisplayName": view.task.name},
        _links(who, server, view, "BackupTaskSessionReference"),
        child("JobSessionUid", f"urn:veeam:BackupJobSession:{view.task.session_id}"),
        child("CreationTimeUTC", iso(view.task.creation_time)),
        child("EndTimeUTC", iso(view.task.end_time)),
        child("State", state),
        child("Result", result),
        child("Reason", view.task.reason),
        child("TotalSize", str(view.task.total_bytes)),
    )


def _listing(request: Request, who: Caller, views: list[TaskView], format: str) -> Response:
    server = server_of(request, who)
    if format.lower() == "entity":
        document = element(
            "BackupTaskSessions", None, *(task_entity(who, server, v) for v in views)
        )
    else:
        document = element(
            "EntityReferences", None, *(task_reference(who, server, v, "Ref") for v in views)
        )
    return answer(request, document)


@router.get("/backupTaskSessions")
def list_task_sessions(request: Request, who: Who, format: str = "References") -> Response:
    return _listing(request, who, task_sessions.list_tasks(ctx_of(request)), format)


@router.get("/backupTaskSessions/{task_id}")
def get_task_session(
    task_id: str, request: Request, who: Who, format: str = "Reference"
) -> Response:
    view = task_sessions.get_task(ctx_of(request), task_id)
    server = server_of(request, who)
    if format.lower() == "entity":
        return answer(request, task_entity(who, server, view))
    return answer(request, task_reference(who, server, view))


@router.get("/backupSessions/{session_id}/taskSessions")
def list_session_task_sessions(
    session_id: str, request: Request, who: Who, format: str = "References"
) -> Response:
    return _listing(request, who, task_sessions.tasks_of(ctx_of(request), session_id), format)


def query_rows(request: Request, who: Caller) -> list[Found]:
    """The query service's rows for type ``BackupTaskSession``: the fields the vendor's query
    reference lists (get_query_backuptasksession.html), lower-cased as filters name them."""
    server = server_of(request, who)
    rows = []
    for view in task_sessions.list_tasks(ctx_of(request)):
        state, result = SESSION_STATES[view.task.status]
        fields: dict[str, Any] = {
            "uid": task_uid(view),
            "name": task_name(view),
            "creationtime": iso(view.task.creation_time),
            "endtime": iso(view.task.end_time),
            "state": state,
            "result": result,
            "reason": view.task.reason,
            "totalsize": view.task.total_bytes,
            "jobsessionuid": f"urn:veeam:BackupJobSession:{view.task.session_id}",
            "jobuid": f"urn:veeam:Job:{view.job_id}",
            "jobname": view.job_name,
            "vmdisplayname": view.task.name,
        }
        rows.append(
            Found(
                fields,
                task_reference(who, server, view, "Ref"),
                task_entity(who, server, view),
            )
        )
    return rows
