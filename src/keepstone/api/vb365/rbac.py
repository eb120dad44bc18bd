"""Organization roles (``/RbacRoles``, ``/Organizations/{id}/RbacRoles``), v6 on as in the
vendor's specs: the roles, their operators and the users in their scope. Bare arrays, as the
specs have them. Administrators change them (the method rule of ``deps.principal``); the rules
are ``services.rbac``'s."""

from typing import Any

from fastapi import Request
from starlette.responses import Response

from keepstone.api.client_address import client_address
from keepstone.api.plumbing import plain
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import WireModel, parse_nested
from keepstone.api.vb365.deps import Caller, Ctx, json
from keepstone.api.vb365.versions import Version, VersionedRouter
from keepstone.domain.errors import InvalidInput
from keepstone.services import rbac
from keepstone.services.audit import Origin

router = VersionedRouter()
SINCE = 6  # RbacRoles appear in the vendor's v6 spec


class UserBody(WireModel):
    id: str | None = None
    name: str | None = None


class RefBody(WireModel):
    """``RESTRbacOperator`` / ``RESTRbacItemComposed``: a type and an id, here or in ``user``."""

    type: str | None = None
    id: str | None = None
    user: UserBody | None = None

    def ref(self) -> rbac.Ref:
        user = self.user or UserBody()
        return rbac.Ref(self.type, self.id or user.id, user.name)


class RoleBody(WireModel):
    """``RESTRbacRoleCreateModel``, with Keepstone's ``access``."""

    organization_id: str | None = None
    name: str | None = None
    description: str | None = None
    role_type: str | None = None
    access: str | None = None
    operators: list[Any] | None = None
    selected_items: list[Any] | None = None
    excluded_items: list[Any] | None = None

    def edit(self) -> rbac.RoleEdit:
        return rbac.RoleEdit(
            organization_id=self.organization_id,
            name=self.name,
            description=self.description,
            role_type=self.role_type,
            access=self.access,
            operators=_refs(self.operators, "operators"),
            selected=_refs(self.selected_items, "selectedItems"),
            excluded=_refs(self.excluded_items, "excludedItems"),
        )


def _refs(values: list[Any] | None, where: str) -> list[rbac.Ref] | None:
    if values is None:
        return None
    return [parse_nested(RefBody, v, f"{where}[{n}]").ref() for n, v in enumerate(values)]


def _array(body: Any, where: str) -> list[rbac.Ref]:
    if not isinstance(body, list):
        raise InvalidInput("the body must be a JSON array", where)
    return _refs(body, where) or []


def _ids(ids: str | None) -> list[str]:
    found = [part.strip() for part in (ids or "").split(",") if part.strip()]
    if not found:
        raise InvalidInput("name the ids to remove: ?ids=<id>,<id>", "ids")
    return found


def _origin(request: Request) -> Origin:
    return Origin(client_address(request), "vb365")


@router.get("/RbacRoles", since=SINCE)
def list_roles(ctx: Ctx, api: Version) -> Response:
    return json([views.rbac_role(role, api) for role in rbac.list_roles(ctx)])


@router.get("/Organizations/{org_id}/RbacRoles", since=SINCE)
def list_organization_roles(org_id: str, ctx: Ctx, api: Version) -> Response:
    return json([views.rbac_role(role, api) for role in rbac.list_roles(ctx, org_id)])


@router.post("/Organizations/{org_id}/RbacRoles", since=SINCE)
def create_role(
    org_id: str, body: RoleBody, request: Request, ctx: Ctx, api: Version, caller: Caller
) -> Response:
    role = rbac.create_role(ctx, org_id, body.edit(), by=caller.user_name, origin=_origin(request))
    return json(views.rbac_role(role, api), api.created)  # 200 in v6/v7, 201 in v8


@router.get("/RbacRoles/{role_id}", since=SINCE)
def get_role(role_id: str, ctx: Ctx, api: Version) -> Response:
    return json(views.rbac_role(rbac.get_role(ctx, role_id), api))


@router.put("/RbacRoles/{role_id}", since=SINCE, response_class=Response)
def edit_role(role_id: str, body: RoleBody, request: Request, ctx: Ctx, caller: Caller) -> Response:
    rbac.edit_role(ctx, role_id, body.edit(), by=caller.user_name, origin=_origin(request))
    return plain(204)


@router.delete("/RbacRoles/{role_id}", since=SINCE, response_class=Response)
def delete_role(role_id: str, request: Request, ctx: Ctx, caller: Caller) -> Response:
    rbac.delete_role(ctx, role_id, by=caller.user_name, origin=_origin(request))
    return plain(204)


@router.get("/RbacRoles/{role_id}/operators", since=SINCE)
def list_operators(role_id: str, ctx: Ctx, api: Version) -> Response:
    return json([views.rbac_operator(role_id, u, api) for u in rbac.operators(ctx, role_id)])


@router.post("/RbacRoles/{role_id}/operators", since=SINCE, response_class=Response)
def add_operators(
    role_id: str, body: list[Any], request: Request, ctx: Ctx, caller: Caller
) -> Response:
    refs = _array(body, "operators")
    rbac.add_operators(ctx, role_id, refs, by=caller.user_name, origin=_origin(request))
    return plain(204)


@router.delete("/RbacRoles/{role_id}/operators", since=SINCE, response_class=Response)
def remove_operators(
    role_id: str, request: Request, ctx: Ctx, caller: Caller, ids: str | None = None
) -> Response:
    rbac.remove_operators(ctx, role_id, _ids(ids), by=caller.user_name, origin=_origin(request))
    return plain(204)


@router.get("/RbacRoles/{role_id}/operators/{operator_id}", since=SINCE)
def get_operator(role_id: str, operator_id: str, ctx: Ctx, api: Version) -> Response:
    return json(views.rbac_operator(role_id, rbac.operator(ctx, role_id, operator_id), api))


def _item_routes(collection: str, excluded: bool) -> None:
    base = f"/RbacRoles/{{role_id}}/{collection}"

    def list_items(role_id: str, ctx: Ctx, api: Version) -> Response:
        found = rbac.items(ctx, role_id, excluded=excluded)
        return json([views.rbac_item(item, api) for item in found])

    def add_items(
        role_id: str, body: list[Any], request: Request, ctx: Ctx, caller: Caller
    ) -> Response:
        refs = _array(body, collection)
        rbac.add_items(
            ctx, role_id, refs, excluded=excluded, by=caller.user_name, origin=_origin(request)
        )
        return plain(204)

    def remove_items(
        role_id: str, request: Request, ctx: Ctx, caller: Caller, ids: str | None = None
    ) -> Response:
        rbac.remove_items(
            ctx,
            role_id,
            _ids(ids),
            excluded=excluded,
            by=caller.user_name,
            origin=_origin(request),
        )
        return plain(204)

    def get_item(role_id: str, item_id: str, ctx: Ctx, api: Version) -> Response:
        return json(views.rbac_item(rbac.item(ctx, role_id, item_id, excluded=excluded), api))

    router.get(base, since=SINCE)(list_items)
    router.post(base, since=SINCE, response_class=Response)(add_items)
    router.delete(base, since=SINCE, response_class=Response)(remove_items)
    router.get(f"{base}/{{item_id}}", since=SINCE)(get_item)


_item_routes("selectedItems", excluded=False)
_item_routes("excludedItems", excluded=True)
