"""The console's operating pages: repositories with their space, and the audit trail (which,
as through the API, only an administrator may read)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.console.pages import Viewer, context
from keepstone.console.render import page
from keepstone.services import audit, auth, catalog

router = APIRouter(include_in_schema=False)
REPOSITORIES_SHOWN = 50
AUDIT_SHOWN = 100  # the newest events; the CLI's `keepstone admin audit` reads further back


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
    events = audit.events(context(request), limit=AUDIT_SHOWN)
    return page(request, "audit.html", session, title="Audit trail", events=events)
