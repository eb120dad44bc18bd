"""``/_proxy/v1``: the API remote proxies (``keepstone proxy``) use; parsing and answers only,
the use cases are ``services/proxy_link.py``.

Every route but ``register`` needs ``Authorization: Bearer <proxy credential>``; a user's
access token is refused here, and a proxy credential is refused by the vendor's APIs. A run's
calls name its session and the claim the proxy holds (``/runs/{session}/{claim}/...``).
The work package carries secrets: it is answered only over TLS or to a loopback peer.
"""

import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, String
from starlette.responses import JSONResponse, Response

from keepstone.domain.errors import Forbidden, Unauthenticated
from keepstone.domain.jobs import SessionStatus
from keepstone.services import proxy_link, proxy_wire, runs
from keepstone.services.context import Context
from keepstone.services.task_sessions import UserTally
from keepstone.store.tables import TaskSession

PREFIX = "/_proxy/v1"
MESSAGE_MAX = 8000
# What the catalog keeps is refused beyond here, with a 400 naming the field, on every catalog:
# PostgreSQL enforces its columns (a longer subject or a larger count was a 500 there, and SQLite
# kept it). A subject is kept as a task's (and a log item's, and a licensed user's) id and name;
# a run's progress and a user's items are counts in 32-bit columns.
COUNT_MAX = 2**31 - 1


def _length(column: ColumnElement[Any]) -> int:
    """A ``String(n)`` column's ``n``."""
    kind = column.type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} is not a String(n) column")
    return kind.length


SUBJECT_ID_MAX = _length(TaskSession.__table__.c.object_id)
SUBJECT_NAME_MAX = _length(TaskSession.__table__.c.name)

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def _proxy(request: Request) -> str:
    """The id of the remote proxy whose credential authorises this request."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "a proxy credential is required: 'Authorization: Bearer <credential>'"
        )
    proxy_id = proxy_link.authenticate(_ctx(request), token.strip())
    request.state.user_name = f"proxy:{proxy_id}"  # for the access log
    return proxy_id


Ctx = Annotated[Context, Depends(_ctx)]
ProxyId = Annotated[str, Depends(_proxy)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class Registration(Strict):
    token: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=255)


class Heartbeat(Strict):
    cpu_percent: float | None = Field(None, alias="cpuPercent", ge=0, le=100)
    memory_percent: float | None = Field(None, alias="memoryPercent", ge=0, le=100)
    version: str = Field("", max_length=64)
    active_runs: int = Field(0, alias="activeRuns", ge=0, le=100_000)


Statistics = dict[str, float | Annotated[str, Field(max_length=64)]]


class Renewal(Strict):
    statistics: Statistics = Field(max_length=32)
    progress: int = Field(ge=0, le=COUNT_MAX)


class Subject(Strict):
    id: str = Field(min_length=1, max_length=SUBJECT_ID_MAX)
    name: str = Field(max_length=SUBJECT_NAME_MAX)


class LogEntry(Strict):
    status: SessionStatus
    message: str = Field(max_length=MESSAGE_MAX)
    subject: Subject | None = None


class TaskEnd(Strict):
    status: SessionStatus
    items: int = Field(ge=0, le=COUNT_MAX)
    total_bytes: int = Field(alias="totalBytes", ge=0)
    read_bytes: int = Field(alias="readBytes", ge=0)
    written_bytes: int = Field(alias="writtenBytes", ge=0)
    reason: str = Field("", max_length=MESSAGE_MAX)


class Recording(Strict):
    repository_id: str = Field(alias="repositoryId", max_length=64)
    facts: dict[str, Any]


class Ending(Strict):
    status: SessionStatus
    message: str = Field(max_length=MESSAGE_MAX)
    statistics: Statistics = Field(max_length=32)
    progress: int = Field(ge=0, le=COUNT_MAX)
    retryable: bool = True


def _attempt(session_id: str, claim: str) -> runs.AttemptOf:
    return proxy_wire.parse_claim(session_id, claim)


Attempt = Annotated[runs.AttemptOf, Depends(_attempt)]


@router.post("/register")
def register(body: Registration, ctx: Ctx) -> JSONResponse:
    registered = proxy_link.register(ctx, body.token, body.name)
    return JSONResponse({"proxyId": registered.proxy_id, "credential": registered.credential})


@router.post("/start")
def start(ctx: Ctx, proxy_id: ProxyId) -> JSONResponse:
    return JSONResponse({"abandoned": proxy_link.start(ctx, proxy_id)})


@router.post("/heartbeat")
def heartbeat(body: Heartbeat, ctx: Ctx, proxy_id: ProxyId) -> JSONResponse:
    report = proxy_link.Report(
        body.cpu_percent, body.memory_percent, body.version, body.active_runs
    )
    return JSONResponse({"threadsNumber": proxy_link.heartbeat(ctx, proxy_id, report)})


@router.post("/claim")
def claim(ctx: Ctx, proxy_id: ProxyId) -> Response:
    run = proxy_link.claim(ctx, proxy_id)
    return Response(status_code=204) if run is None else JSONResponse(run)


@router.post("/runs/{session_id}/{claim}/work")
def work(request: Request, ctx: Ctx, proxy_id: ProxyId, attempt: Attempt) -> JSONResponse:
    if not _private_transport(request):
        raise Forbidden("a work package carries secrets: it is sent over TLS or loopback only")
    package = proxy_link.work(ctx, proxy_id, attempt)
    return JSONResponse(package, headers={"Cache-Control": "no-store"})


@router.post("/runs/{session_id}/{claim}/renew")
def renew(body: Renewal, ctx: Ctx, proxy_id: ProxyId, attempt: Attempt) -> JSONResponse:
    state = proxy_link.renew(ctx, proxy_id, attempt, dict(body.statistics), body.progress)
    return JSONResponse({"state": state.value})


@router.post("/runs/{session_id}/{claim}/log", status_code=204)
def log(body: LogEntry, ctx: Ctx, proxy_id: ProxyId, attempt: Attempt) -> Response:
    subject = None if body.subject is None else (body.subject.id, body.subject.name)
    proxy_link.log(ctx, proxy_id, attempt, body.status, body.message, subject)
    return Response(status_code=204)


@router.post("/runs/{session_id}/{claim}/tasks")
def start_task(body: Subject, ctx: Ctx, proxy_id: ProxyId, attempt: Attempt) -> JSONResponse:
    task_id = proxy_link.start_task(ctx, proxy_id, attempt, (body.id, body.name))
    return JSONResponse({"taskId": task_id})


@router.post("/runs/{session_id}/{claim}/tasks/{task_id}/finish", status_code=204)
def finish_task(
    task_id: str, body: TaskEnd, ctx: Ctx, proxy_id: ProxyId, attempt: Attempt
) -> Response:
    tally = UserTally(body.items, body.total_bytes, body.read_bytes, body.written_bytes)
    proxy_link.finish_task(ctx, proxy_id, attempt, task_id, body.status, tally, body.reason)
    return Response(status_code=204)


@router.post("/runs/{session_id}/{claim}/record", status_code=204)
def record(body: Recording, ctx: Ctx, proxy_id: ProxyId, attempt: Attempt) -> Response:
    facts = proxy_wire.decode_facts(body.facts)
    proxy_link.record(ctx, proxy_id, attempt, body.repository_id, facts)
    return Response(status_code=204)


@router.post("/runs/{session_id}/{claim}/end", status_code=204)
def end(body: Ending, ctx: Ctx, proxy_id: ProxyId, attempt: Attempt) -> Response:
    proxy_link.end(
        ctx,
        proxy_id,
        attempt,
        body.status,
        body.message,
        dict(body.statistics),
        body.progress,
        body.retryable,
    )
    return Response(status_code=204)


def _private_transport(request: Request) -> bool:
    """TLS, or a peer on this host (whose connection never leaves it)."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False
