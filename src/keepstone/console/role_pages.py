"""The console's organization roles (the vendor's ``RbacRoles``): creating, editing and deleting
one organization's role over ``services.rbac``, the same rules and messages as
``/vN/Organizations/{id}/RbacRoles``, each change audited as coming from the console.

The form sends the whole role every time (an unchecked operator or user is no longer one), so an
edit is the vendor's PUT with every property sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.console.pages import Change, Changer, Viewer, context
from keepstone.console.render import page, see_other, window_of
from keepstone.console.user_pages import actor
from keepstone.console.web_session import WebSession
from keepstone.domain.errors import KeepstoneError
from keepstone.services import auth, catalog, rbac
from keepstone.services.context import Context
from keepstone.store.tables import Organization, RbacRole

router = APIRouter(include_in_schema=False)


def _edit_of(form: Change, organization_id: str) -> rbac.RoleEdit:
    def refs(field: str) -> list[rbac.Ref]:
        return [rbac.Ref("User", value) for value in form.all(field) if value]

    return rbac.RoleEdit(
        organization_id=organization_id,
        name=form.form.get("name", ""),
        description=form.form.get("description", ""),
        role_type=form.form.get("roleType", ""),
        access=form.form.get("access", ""),
        operators=refs("operator"),
        selected=refs("selected"),
        excluded=refs("excluded"),
    )


def _values_of(ctx: Context, role: RbacRole | None) -> dict[str, Any]:
    if role is None:
        return {
            "name": "",
            "description": "",
            "roleType": "EntireOrganization",
            "access": "Restore",
            "operator": set(),
            "selected": set(),
            "excluded": set(),
        }
    return {
        "name": role.name,
        "description": role.description,
        "roleType": role.role_type,
        "access": role.access,
        "operator": {u.id for u in rbac.operators(ctx, role.id)},
        "selected": {i.item_id for i in rbac.items(ctx, role.id, excluded=False)},
        "excluded": {i.item_id for i in rbac.items(ctx, role.id, excluded=True)},
    }


def _typed(change: Change) -> dict[str, Any]:
    keep = ("name", "description", "roleType", "access")
    return {k: change.form.get(k, "") for k in keep} | {
        many: set(change.all(many)) for many in ("operator", "selected", "excluded")
    }


def _form(
    request: Request,
    session: WebSession,
    org: Organization,
    role: RbacRole | None,
    values: dict[str, Any],
    error: str = "",
    status: int = 200,
) -> Response:
    ctx = context(request)
    users, operators = window_of(request, "users_page"), window_of(request, "operators_page")
    search = {k: request.query_params.get(k, "").strip() for k in ("user", "operator")}
    chosen: set[str] = values["selected"] | values["excluded"]
    try:
        rows = rbac.page_organization_users(ctx, org, users.offset, users.limit, search["user"])
    except KeepstoneError as failure:  # a source that cannot be read now: say so
        rows, error = [], error or failure.message
    # Operators are users without a global role (services.rbac refuses the others).
    candidates = auth.page_users(
        ctx, operators.offset, operators.limit, role=auth.Role.NONE, search=search["operator"]
    )
    named = auth.users_by_id(ctx, values["operator"]) if values["operator"] else []
    return page(
        request,
        "role.html",
        session,
        status,
        title=f"Role {role.name}" if role else f"New role for {org.name}",
        org=org,
        role=role,
        v=values,
        error=error,
        search=search,
        in_scope=_in_scope(ctx, role, chosen),
        org_users=[u for u in rows[: users.size] if u.id not in chosen],
        user_links=users.links(request, rows),
        operators=named,
        candidates=[u for u in candidates[: operators.size] if u.id not in values["operator"]],
        operator_links=operators.links(request, candidates),
    )


def _in_scope(ctx: Context, role: RbacRole | None, chosen: set[str]) -> list[rbac.OrgUser]:
    """The users the form selects or excludes, always shown whatever page of the organization's
    users is: by the names the role keeps (an id only typed is shown as itself)."""
    known: dict[str, rbac.OrgUser] = {}
    if role is not None:
        for excluded in (False, True):
            for item in rbac.items(ctx, role.id, excluded=excluded):
                known[item.item_id] = rbac.OrgUser(item.item_id, item.name, item.display_name)
    shown = [known.get(i, rbac.OrgUser(i, i, "")) for i in chosen]
    return sorted(shown, key=lambda u: (u.name, u.id))


@router.get("/roles/new")
def new_role_page(request: Request, session: Viewer, organization: str = "") -> Response:
    auth.authorize(session.principal, auth.Action.READ)  # never an organization's operator
    ctx = context(request)
    org = catalog.get_organization(ctx, organization)
    return _form(request, session, org, None, _values_of(ctx, None))


@router.post("/roles/new")
def create_role(request: Request, change: Changer) -> Response:
    org = catalog.get_organization(context(request), change.form.get("organizationId", ""))
    return _save(request, change, org, None)


def _save(request: Request, change: Change, org: Organization, role: RbacRole | None) -> Response:
    """The vendor's POST (no ``role``) or PUT of the form's role; a refusal shows the form again
    with what was typed and the service's message."""
    ctx, edit = context(request), _edit_of(change, org.id)
    try:
        if role is None:
            role = rbac.create_role(ctx, org.id, edit, **actor(request, change))
        else:
            rbac.edit_role(ctx, role.id, edit, **actor(request, change))
    except KeepstoneError as error:
        return _form(request, change.session, org, role, _typed(change), error.message, 400)
    return see_other(f"/roles/{role.id}")


@router.get("/roles/{role_id}")
def role_page(request: Request, role_id: str, session: Viewer) -> Response:
    auth.authorize(session.principal, auth.Action.READ)
    ctx = context(request)
    role = rbac.get_role(ctx, role_id)
    org = catalog.get_organization(ctx, role.organization_id)
    return _form(request, session, org, role, _values_of(ctx, role))


@router.post("/roles/{role_id}")
def edit_role(request: Request, role_id: str, change: Changer) -> Response:
    ctx = context(request)
    role = rbac.get_role(ctx, role_id)
    return _save(request, change, catalog.get_organization(ctx, role.organization_id), role)


@router.post("/roles/{role_id}/delete")
def delete_role(request: Request, role_id: str, change: Changer) -> Response:
    ctx = context(request)
    role = rbac.get_role(ctx, role_id)
    rbac.delete_role(ctx, role_id, **actor(request, change))
    return see_other(f"/users?organization={role.organization_id}#roles")
