"""The console's organization pages: the list, adding and editing Local, IMAP and Microsoft 365
organizations (the services validate them as for the API, with the same messages), and each one's
users. Secrets (IMAP passwords, an application's secret or certificate) are write-only: a field
left empty keeps the stored one, and none is ever rendered back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.console.pages import Change, Changer, Viewer, context
from keepstone.console.render import page, see_other, window_of
from keepstone.console.web_session import WebSession
from keepstone.domain.errors import KeepstoneError
from keepstone.services import catalog, imap_settings, m365_settings
from keepstone.services.catalog import OrganizationEdit
from keepstone.store.tables import Organization

router = APIRouter(include_in_schema=False)
USER_ROWS = 5  # empty rows the IMAP form offers for new users


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


def _office365_body(form: dict[str, str]) -> dict[str, Any]:
    """The form's Microsoft 365 fields as the API's top-level Office365 properties, with one
    ``exchangeOnlineSettings`` (app-only authentication, the only kind Keepstone accepts); a
    credential left empty is not sent, so an edit keeps the stored one."""
    service: dict[str, Any] = {"useApplicationOnlyAuth": True}
    for prop, key in (("officeOrganizationName", "tenant"), ("applicationId", "applicationId")):
        if form.get(key, "").strip():
            service[prop] = form[key].strip()
    if form.get("credential") == "certificate":
        for prop in ("applicationCertificate", "applicationCertificatePassword"):
            if form.get(prop, "").strip():
                service[prop] = (
                    form[prop].strip() if prop == "applicationCertificate" else form[prop]
                )
    elif form.get("applicationSecret"):
        service["applicationSecret"] = form["applicationSecret"]
    body: dict[str, Any] = {m365_settings.EXCHANGE: service}
    body |= {flag: bool(form.get(flag)) for flag in m365_settings.FLAGS}
    if form.get("region"):
        body["region"] = form["region"]
    return body


def _edit_of(form: dict[str, str], kind: str, *, new: bool) -> OrganizationEdit:
    name: str | None = form.get("name", "")
    if new and kind == m365_settings.OFFICE365_TYPE and not (name or "").strip():
        name = None  # as a body without name: the organization is named after its tenant
    return OrganizationEdit(
        name=name,
        description=form.get("description", ""),
        type=kind if new else None,
        local_path=form.get("path") if kind == "Local" else None,
        imap_settings=_imap_body(form, new=new) if kind == imap_settings.IMAP_TYPE else None,
        office365=_office365_body(form) if kind == m365_settings.OFFICE365_TYPE else None,
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
    window = window_of(request, "users_page")
    search = request.query_params.get("user", "").strip()
    users: list[Any] = []
    imap_users: list[Any] = []
    if org is not None:
        try:
            users = catalog.page_organization_users(
                ctx, org.id, window.offset, window.limit, search
            )
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
        users=users[: window.size],
        user_links=window.links(request, users),
        user_search=search,
        imap_users=imap_users,
        blank_rows=range(len(imap_users), len(imap_users) + USER_ROWS),
        regions=m365_settings.REGIONS,
        services=[
            ("isExchangeOnline", "Exchange Online (mail)"),
            ("isSharePointOnline", "SharePoint Online and OneDrive"),
            ("isTeamsOnline", "Teams"),
            ("isTeamsChatsOnline", "Teams chats"),
        ],
    )


NEW_OFFICE365 = {"tenant": "", "applicationId": "", "credential": "secret", "region": "Worldwide"}
NEW_OFFICE365 |= {"isExchangeOnline": "1", "isSharePointOnline": "1"}


def _values_of(org: Organization | None) -> dict[str, str]:
    if org is None:
        return {
            "type": "Local",
            "name": "",
            "description": "",
            "path": "",
            "host": "",
            "port": "",
        } | NEW_OFFICE365
    settings = org.settings
    if org.type == m365_settings.OFFICE365_TYPE:
        kept = m365_settings.from_record(settings)
        return {
            "type": org.type,
            "name": org.name,
            "description": org.description,
            "tenant": kept.tenant,
            "applicationId": kept.application_id,
            "credential": kept.credential,
            "region": kept.region,
            "thumbprint": kept.certificate_thumbprint or "",
            "tenantName": kept.tenant_name or "",
            "tenantId": kept.tenant_id or "",
        } | {flag: "1" if settings.get(flag) else "" for flag in m365_settings.FLAGS}
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


SECRET_FIELDS = ("password", "applicationSecret", "applicationCertificate", "csrf")


def _shown(change: Change) -> dict[str, str]:
    """What was typed, to show again (never a password, secret or certificate); a checkbox
    left unchecked is shown unchecked."""
    typed = {k: v for k, v in change.form.items() if not any(s in k for s in SECRET_FIELDS)}
    return typed | {flag: change.form.get(flag, "") for flag in m365_settings.FLAGS}


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
