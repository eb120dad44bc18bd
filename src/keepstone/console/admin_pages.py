"""The console's operating pages: repositories with their space, and the audit trail (which,
as through the API, only an administrator may read)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.console.pages import Viewer, context
from keepstone.console.render import page
from keepstone.domain.errors import InvalidInput
from keepstone.services import audit, auth, catalog

router = APIRouter(include_in_schema=False)
REPOSITORIES_SHOWN = 50
AUDIT_SHOWN = 100  # events a page shows, newest first; "Older events" continues by key


@router.get("/repositories")
def repositories_page(request: Request, session: Viewer) -> Response:
    rows = catalog.list_repositories(context(request))[:REPOSITORIES_SHOWN]
    return page(
        request,
        "repositories.html",
        session,
        title="Repositories",
        rows=[(repo, catalog.disk_space(repo.path)) for repo in rows],
    )


@router.get("/audit")
def audit_page(request: Request, session: Viewer) -> Response:
    auth.authorize(session.principal, auth.Action.READ_AUDIT)
    before = request.query_params.get("before")
    if before is not None and not re.fullmatch(r"[0-9]{1,18}", before):
        raise InvalidInput(f"before must be an event's number; got {before!r}", "before")
    events = audit.events(
        context(request), limit=AUDIT_SHOWN + 1, before=int(before) if before else None
    )
    older = f"/audit?before={events[AUDIT_SHOWN - 1].id}" if len(events) > AUDIT_SHOWN else None
    return page(
        request,
        "audit.html",
        session,
        title="Audit trail",
        events=events[:AUDIT_SHOWN],
        older=older,
        continued=before is not None,
    )
