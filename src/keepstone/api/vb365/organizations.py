"""Organizations: the protected tenants."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import OrganizationBody
from keepstone.api.vb365.deps import Ctx, Link, json
from keepstone.services import catalog

router = APIRouter()


@router.get("/Organizations")
def list_organizations(ctx: Ctx, link: Link) -> Response:
    backed_up = catalog.backed_up_organizations(ctx)
    return json(
        [views.organization(o, link, o.id in backed_up) for o in catalog.list_organizations(ctx)]
    )


@router.get("/Organizations/{org_id}")
def get_organization(org_id: str, ctx: Ctx, link: Link) -> Response:
    org = catalog.get_organization(ctx, org_id)
    return json(views.organization(org, link, org.id in catalog.backed_up_organizations(ctx)))


@router.get("/Organizations/{org_id}/Users")
def list_users(org_id: str, ctx: Ctx, link: Link) -> Response:
    return json(
        [
            views.organization_user(org_id, user, link)
            for user in catalog.organization_users(ctx, org_id)
        ]
    )


@router.post("/Organizations")
def create_organization(body: OrganizationBody, ctx: Ctx, link: Link) -> Response:
    org = catalog.create_organization(ctx, body.to_edit())
    return json(views.organization(org, link, False))


@router.put("/Organizations/{org_id}", response_class=Response)
def edit_organization(org_id: str, body: OrganizationBody, ctx: Ctx) -> Response:
    catalog.edit_organization(ctx, org_id, body.to_edit())
    return plain(200)


@router.delete("/Organizations/{org_id}", status_code=204)
def delete_organization(org_id: str, ctx: Ctx) -> Response:
    catalog.delete_organization(ctx, org_id)
    return plain(204)
