"""The server itself: its version, its licence, its roles and their operators, the restore
portal."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from keepstone.api import public_url
from keepstone.api.vb365 import views
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.versions import Version, VersionedRouter
from keepstone.domain.errors import NotFound
from keepstone.services import auth, catalog, licensing
from keepstone.services.context import Context
from keepstone.store.tables import Organization

router = VersionedRouter()


@router.get("/ServiceInstance", since=6)
def service_instance(ctx: Ctx) -> Response:
    return json(views.service_instance(catalog.installation_id(ctx)))


@router.get("/License", since=6)
def get_license(ctx: Ctx, api: Version) -> Response:
    return json(views.license_body(licensing.license_of(ctx), api))


@router.get("/RestorePortalSettings", since=6)
def restore_portal_settings(request: Request, api: Version) -> Response:
    return json(views.restore_portal_settings(api, public_url.base_url(request)))


def _roles(ctx: Context) -> list[tuple[str, Organization]]:
    return views.scoped_roles(catalog.list_organizations(ctx))


def _role(ctx: Context, role_id: str) -> tuple[str, Organization]:
    for role, org in _roles(ctx):
        if views.role_id(role, org.id) == role_id:
            return role, org
    raise NotFound(f"role '{role_id}' does not exist")


@router.get("/RbacRoles", since=6)
def list_roles(ctx: Ctx, api: Version) -> Response:
    return json([views.rbac_role(role, org, api) for role, org in _roles(ctx)])


@router.get("/Organizations/{org_id}/RbacRoles", since=6)
def list_organization_roles(org_id: str, ctx: Ctx, api: Version) -> Response:
    org = catalog.get_organization(ctx, org_id)
    return json([views.rbac_role(role, org, api) for role, _ in views.scoped_roles([org])])


@router.get("/RbacRoles/{role_id}", since=6)
def get_role(role_id: str, ctx: Ctx, api: Version) -> Response:
    return json(views.rbac_role(*_role(ctx, role_id), api))


@router.get("/RbacRoles/{role_id}/operators", since=6)
def list_operators(role_id: str, ctx: Ctx, api: Version) -> Response:
    role, org = _role(ctx, role_id)
    users = [u for u in auth.list_users(ctx) if u.role == role]
    return json([views.rbac_operator(role, org.id, u, api) for u in users])


@router.get("/RbacRoles/{role_id}/operators/{operator_id}", since=6)
def get_operator(role_id: str, operator_id: str, ctx: Ctx, api: Version) -> Response:
    role, org = _role(ctx, role_id)
    for user in auth.list_users(ctx):
        if user.role == role and user.id == operator_id:
            return json(views.rbac_operator(role, org.id, user, api))
    raise NotFound(f"role {role} has no operator '{operator_id}'")
