"""The console's users page: Keepstone's users with their global role, adding one, changing its
role, removing it and revoking its sessions and tokens, over ``services.auth`` (the same rules as
``keepstone admin user``), each change audited as coming from the console. Administrators change;
ReadOnly users see; a user without a global role is refused (``pages.viewer``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from keepstone.console.pages import Change, Changer, Viewer, context
from keepstone.console.render import page, see_other, window_of
from keepstone.console.web_session import WebSession, origin
from keepstone.domain.errors import InvalidInput, KeepstoneError
from keepstone.services import auth, catalog, rbac

router = APIRouter(include_in_schema=False)
ORGANIZATIONS_OFFERED = 200  # in the new-role form's choice of organization
ROLES: tuple[auth.Role, ...] = tuple(auth.Role)


def actor(request: Request, change: Change) -> dict[str, Any]:
    """Who makes a change and from where, as the services audit it (``by``, ``origin``)."""
    return {"by": change.session.principal.user_name, "origin": origin(request)}


def role_of(text: str) -> auth.Role:
    try:
        return auth.Role(text)
    except ValueError:
        allowed = ", ".join(r.value for r in auth.Role)
        raise InvalidInput(f"role must be one of {allowed}; got '{text}'", "role") from None


def users_page_of(
    request: Request,
    session: WebSession,
    *,
    organization: str = "",
    error: str = "",
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    ctx = context(request)
    window = window_of(request)
    users = auth.page_users(ctx, window.offset, window.limit)
    organizations = catalog.page_organizations(ctx, 0, ORGANIZATIONS_OFFERED)
    role_window = window_of(request, "roles_page")
    role_rows = rbac.page_roles(ctx, organization or None, role_window.offset, role_window.limit)
    roles = role_rows[: role_window.size]
    names = catalog.organization_names(ctx, {role.organization_id for role in roles})
    return page(
        request,
        "users.html",
        session,
        status,
        title="Users and roles",
        users=users[: window.size],
        links=window.links(request, users),
        roles=roles,
        role_links=role_window.links(request, role_rows),
        organizations=organizations,
        names=names,
        chosen=organization,
        global_roles=[r.value for r in ROLES],
        error=error,
        v={"name": "", "role": auth.Role.ADMINISTRATOR.value} | (typed or {}),
    )


@router.get("/users")
def users_page(request: Request, session: Viewer, organization: str = "") -> Response:
    auth.authorize(session.principal, auth.Action.READ)  # never an organization's operator
    return users_page_of(request, session, organization=organization)


@router.post("/users/new")
def add_user(request: Request, change: Changer) -> Response:
    form = change.form
    name = form.get("name", "")
    try:
        auth.add_user(
            context(request),
            name,
            form.get("password", ""),
            role_of(form.get("role", "")),
            **actor(request, change),
        )
    except KeepstoneError as error:  # shown again as typed, except the password
        typed = {"name": name, "role": form.get("role", "")}
        return users_page_of(request, change.session, error=error.message, typed=typed, status=400)
    return see_other("/users")


@router.post("/users/role")
def change_role(request: Request, change: Changer) -> Response:
    auth.set_role(
        context(request),
        change.form.get("user", ""),
        role_of(change.form.get("role", "")),
        **actor(request, change),
    )
    return see_other("/users")


@router.post("/users/revoke")
def revoke_user(request: Request, change: Changer) -> Response:
    """What ``keepstone admin user revoke-tokens`` does: every token and console or API logon
    session of the user ends (the administrator's own, too, if it names itself)."""
    auth.revoke_tokens(context(request), change.form.get("user", ""), **actor(request, change))
    return see_other("/users")


@router.post("/users/remove")
def remove_user(request: Request, change: Changer) -> Response:
    auth.remove_user(context(request), change.form.get("user", ""), **actor(request, change))
    return see_other("/users")
