"""Asynchronous operations of the JSON dialect: ``Prefer: respond-async`` on a long operation
answers ``202 Accepted`` with a ``Location`` to poll, backed by the same persisted tasks as the
Enterprise Manager dialect."""

import re
from typing import Any

from fastapi import Request
from starlette.responses import Response

from keepstone.api.inputs import shorten
from keepstone.api.vb365.deps import Caller, Ctx, json
from keepstone.api.vb365.versions import LinkBuilder, Version, VersionedRouter, iso
from keepstone.domain.errors import InvalidInput
from keepstone.services import tasks
from keepstone.services.auth import Principal
from keepstone.services.context import Context
from keepstone.store.tables import Task

router = VersionedRouter()
_TASK_ID = re.compile(r"^(?:task-)?([0-9]{1,30})$")  # services.tasks.get bounds the number


def wants_async(request: Request) -> bool:
    return "respond-async" in request.headers.get("prefer", "").lower()


def accepted(
    ctx: Context, link: LinkBuilder, operation: str, work: tasks.Work, caller: Principal
) -> Response:
    """Run ``work`` as a task started by ``caller``; answer 202 with where to poll it."""
    task = tasks.submit(ctx, None, operation, work, started_by=caller.user_id)
    href = link.absolute("tasks", f"task-{task.number}")
    return json(
        task_view(task, link),
        202,
        headers={"Location": href, "Preference-Applied": "respond-async"},
    )


def task_view(task: Task, link: LinkBuilder) -> dict[str, Any]:
    return {
        "id": f"task-{task.number}",
        "operation": task.operation,
        "state": task.state,
        "success": task.success,
        "message": task.message,
        "result": task.related.get("result"),
        "creationTime": iso(task.created_at),
        "endTime": iso(task.finished_at),
        "_links": {"self": link("tasks", f"task-{task.number}")},
    }


@router.get("/Tasks/{task_id}")
def get_task(task_id: str, ctx: Ctx, api: Version, caller: Caller) -> Response:
    """A task; a user without a global role reads only the ones it started (a put-back it
    asked to run asynchronously)."""
    match = _TASK_ID.match(task_id)
    if match is None:
        raise InvalidInput(f"'{shorten(task_id, 40)}' is not a task id (task-N)", "taskId")
    return json(task_view(tasks.get(ctx, int(match.group(1)), caller), api.link))
