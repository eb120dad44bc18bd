"""Tasks: the asynchronous operations a logon session started (``/api/tasks``)."""

import re

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
from keepstone.api.em.xml import child, element, links
from keepstone.domain.errors import InvalidInput, NotFound
from keepstone.services import tasks
from keepstone.store.tables import Task

router = APIRouter(prefix="/api")


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
