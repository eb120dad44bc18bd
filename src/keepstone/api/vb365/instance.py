"""The server itself: its version, its roles and their operators, the restore portal."""

from __future__ import annotations

from starlette.responses import Response

from keepstone.api.vb365 import views
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.versions import Version, VersionedRouter
from keepstone.domain.errors import NotFound
from keepstone.services import auth, catalog

router = VersionedRouter()


@router.get("/ServiceInstance", since=6)
def service_instance(ctx: Ctx) -> Response:
    return json(views.service_instance(catalog.installation_id(ctx)))


@router.get("/RestorePortalSettings", since=6)
def restore_portal_settings() -> Response:
    return json(views.restore_portal_settings())


def _role(role_id: str) -> str:
    for role in views.ROLES:
        if views.role_id(role) == role_id:
            return role
    raise NotFound(f"role '{role_id}' does not exist")


@router.get("/RbacRoles", since=6)
def list_roles(api: Version) -> Response:
    return json([views.rbac_role(role, api) for role in views.ROLES])


@router.get("/RbacRoles/{role_id}", since=6)
def get_role(role_id: str, api: Version) -> Response:
    return json(views.rbac_role(_role(role_id), api))


@router.get("/RbacRoles/{role_id}/operators", since=6)
def list_operators(role_id: str, ctx: Ctx, api: Version) -> Response:
    role = _role(role_id)
    users = [u for u in auth.list_users(ctx) if u.role == role]
    return json([views.rbac_operator(role, u, api) for u in users])


@router.get("/RbacRoles/{role_id}/operators/{operator_id}", since=6)
def get_operator(role_id: str, operator_id: str, ctx: Ctx, api: Version) -> Response:
    role = _role(role_id)
    for user in auth.list_users(ctx):
        if user.role == role and user.id == operator_id:
            return json(views.rbac_operator(role, user, api))
    raise NotFound(f"role {role} has no operator '{operator_id}'")
