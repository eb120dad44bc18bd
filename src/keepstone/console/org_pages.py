"""The console's organization pages: the list, adding and editing Local and IMAP organizations
(the services validate them as for the API, with the same messages), and each one's users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.console.pages import Change, Changer, Viewer, context
from keepstone.console.render import page, see_other, window_of
from keepstone.console.web_session import WebSession
from keepstone.domain.errors import KeepstoneError
from keepstone.services import catalog, imap_settings
from keepstone.services.catalog import OrganizationEdit
from keepstone.store.tables import Organization

router = APIRouter(include_in_schema=False)
USER_ROWS = 5  # empty rows the IMAP form offers for new users
USERS_SHOWN = 100


@router.get("/organizations")
def organizations_page(request: Request, session: Viewer) -> Response:
    window = window_of(request)
    rows = catalog.page_organizations(context(request), window.offset, window.limit)
    return page(
        request,
        "organizations.html",
        session,
        title="Organizations",
        rows=rows[: window.size],
        links=window.links(request, rows),
    )


def _imap_body(form: dict[str, str], *, new: bool) -> dict[str, Any]:
    """The form's IMAP fields as the API's ``imapSettings`` object (an empty field is not
    sent: on an edit it keeps its value, as a property missing from a PUT does)."""
    body: dict[str, Any] = {
        key: form[key].strip() for key in ("host", "security") if form.get(key, "").strip()
    }
    if form.get("port", "").strip():
        body["port"] = int(form["port"]) if form["port"].strip().isdigit() else form["port"]
    body["allowCleartext"] = bool(form.get("allowCleartext"))
    users = []
    for key in sorted(k for k in form if k.startswith("user-") and k.endswith("-name")):
        row = key.removesuffix("-name")
        if not form[key].strip():
            continue
        user = {"name": form[key].strip()}
        for part in ("login", "password"):
            if form.get(f"{row}-{part}"):
                user[part] = form[f"{row}-{part}"]
        users.append(user)
    if users or new:
        body["users"] = users
    return body


def _edit_of(form: dict[str, str], kind: str, *, new: bool) -> OrganizationEdit:
    return OrganizationEdit(
        name=form.get("name", ""),
        description=form.get("description", ""),
        type=kind if new else None,
        local_path=form.get("path") if kind == "Local" else None,
        imap_settings=_imap_body(form, new=new) if kind == imap_settings.IMAP_TYPE else None,
    )


def _form(
    request: Request,
    session: WebSession,
    org: Organization | None,
    values: dict[str, str],
    error: str = "",
    status: int = 200,
) -> Response:
    ctx = context(request)
    users: list[Any] = []
    imap_users: list[Any] = []
    if org is not None:
        try:
            users = catalog.organization_users(ctx, org.id)[:USERS_SHOWN]
        except KeepstoneError as failure:  # a source that cannot be read now: say so
            error = error or failure.message
        if org.type == imap_settings.IMAP_TYPE:
            imap_users = list(imap_settings.from_record(org.settings).users)
    return page(
        request,
        "organization.html",
        session,
        status,
        title=f"Organization {org.name}" if org else "New organization",
        org=org,
        v=values,
        error=error,
        users=users,
        imap_users=imap_users,
        blank_rows=range(len(imap_users), len(imap_users) + USER_ROWS),
    )


def _values_of(org: Organization | None) -> dict[str, str]:
    if org is None:
        return {"type": "Local", "name": "", "description": "", "path": "", "host": "", "port": ""}
    settings = org.settings
    return {
        "type": org.type,
        "name": org.name,
        "description": org.description,
        "path": str(settings.get("path", "")),
        "host": str(settings.get("host", "")),
        "port": str(settings.get("port", "")),
        "security": str(settings.get("security", "")),
    }


@router.get("/organizations/new")
def new_organization_page(request: Request, session: Viewer) -> Response:
    return _form(request, session, None, _values_of(None))


@router.post("/organizations/new")
def create_organization(request: Request, change: Changer) -> Response:
    kind = change.form.get("type", "")
    try:
        org = catalog.create_organization(context(request), _edit_of(change.form, kind, new=True))
    except KeepstoneError as error:
        shown = _values_of(None) | _shown(change)
        return _form(request, change.session, None, shown, error.message, 400)
    return see_other(f"/organizations/{org.id}")


def _shown(change: Change) -> dict[str, str]:
    """What was typed, to show again (never the passwords)."""
    return {k: v for k, v in change.form.items() if "password" not in k and k != "csrf"}


@router.get("/organizations/{org_id}")
def organization_page(request: Request, org_id: str, session: Viewer) -> Response:
    org = catalog.get_organization(context(request), org_id)
    return _form(request, session, org, _values_of(org))


@router.post("/organizations/{org_id}")
def edit_organization(request: Request, org_id: str, change: Changer) -> Response:
    ctx = context(request)
    org = catalog.get_organization(ctx, org_id)
    try:
        catalog.edit_organization(ctx, org_id, _edit_of(change.form, org.type, new=False))
    except KeepstoneError as error:
        shown = _values_of(org) | _shown(change)
        return _form(request, change.session, org, shown, error.message, 400)
    return see_other(f"/organizations/{org_id}")
