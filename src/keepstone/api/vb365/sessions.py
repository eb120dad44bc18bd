"""Job sessions and their log items."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from keepstone.api.vb365 import views
from keepstone.api.vb365.deps import Ctx, Link, json
from keepstone.services import runs

router = APIRouter()
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int | None, Query(ge=1, le=10_000)]


@router.get("/JobSessions")
def list_sessions(ctx: Ctx, link: Link, offset: Offset = 0, limit: Limit = None) -> Response:
    return json([views.job_session(s, link) for s in runs.list_sessions(ctx, None, offset, limit)])


@router.get("/Jobs/{job_id}/JobSessions")
def list_job_sessions(
    job_id: str, ctx: Ctx, link: Link, offset: Offset = 0, limit: Limit = None
) -> Response:
    return json(
        [views.job_session(s, link) for s in runs.list_sessions(ctx, job_id, offset, limit)]
    )


@router.get("/JobSessions/{session_id}")
def get_session(session_id: str, ctx: Ctx, link: Link) -> Response:
    return json(views.job_session(runs.get_session(ctx, session_id), link))


@router.get("/JobSessions/{session_id}/LogItems")
def list_log_items(session_id: str, ctx: Ctx, link: Link) -> Response:
    return json([views.log_item(i, link) for i in runs.list_log_items(ctx, session_id)])
