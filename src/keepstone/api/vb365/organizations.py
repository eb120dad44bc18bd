"""Organizations, their users, licensing and audit items, and the licensed users across them."""

from functools import partial
from typing import Any

from fastapi import Request
from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365 import org_objects, views
from keepstone.api.vb365.bodies import OrganizationBody
from keepstone.api.vb365.deps import Caller, Ctx, json
from keepstone.api.vb365.pages import Paging, listing
from keepstone.api.vb365.versions import ApiVersion, Version, VersionedRouter
from keepstone.domain.errors import NotFound
from keepstone.domain.scope import stable_user_id
from keepstone.services import (
    audit,
    auth,
    catalog,
    imap_settings,
    licensing,
    m365_settings,
    organization_storage,
)
from keepstone.services.context import Context
from keepstone.sources.local import LocalUser
from keepstone.store.tables import Organization

router = VersionedRouter()


@router.get("/Organizations")
def list_organizations(
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    caller: Caller,
    extendedView: bool = True,
) -> Response:
    backups = catalog.organization_backups(ctx)

    def render(org: Organization) -> dict[str, Any]:
        return _organization(ctx, org, api, backups.get(org.id))

    rows = partial(catalog.list_organizations, ctx, caller)
    return json(listing(request, api, "organizations", rows, render, paging, ctx.clock.now()))


# Before /Organizations/{org_id}, which would take "SyncState" for an id.
@router.get("/Organizations/SyncState", since=8)
def sync_states(ctx: Ctx, api: Version) -> Response:
    return org_objects.get_sync_states(ctx, api)


@router.get("/Organizations/{org_id}")
def get_organization(
    org_id: str, ctx: Ctx, api: Version, caller: Caller, extendedView: bool = True
) -> Response:
    org = catalog.get_organization(ctx, org_id, caller)
    return json(_organization(ctx, org, api, catalog.organization_backups(ctx).get(org.id)))


@router.post("/Organizations")
def create_organization(body: OrganizationBody, ctx: Ctx, api: Version) -> Response:
    org = catalog.create_organization(ctx, body.to_edit())
    return json(_organization(ctx, org, api, None), api.created)


def _organization(ctx: Context, org: Organization, api: ApiVersion, backups: Any) -> dict[str, Any]:
    return views.organization(org, api, backups, imap_settings.kept_secrets(ctx, org))


@router.put("/Organizations/{org_id}", response_class=Response)
def edit_organization(org_id: str, body: OrganizationBody, ctx: Ctx, api: Version) -> Response:
    catalog.edit_organization(ctx, org_id, body.to_edit())
    return plain(204 if api.at_least(6) else 200)


@router.delete("/Organizations/{org_id}", status_code=204)
def delete_organization(org_id: str, ctx: Ctx) -> Response:
    catalog.delete_organization(ctx, org_id)
    return plain(204)


@router.get("/Organizations/{org_id}/Users")
def list_users(
    org_id: str,
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    caller: Caller,
    userName: str | None = None,
    displayName: str | None = None,
    locationFilter: str | None = None,
) -> Response:
    if catalog.get_organization(ctx, org_id, caller).type == m365_settings.OFFICE365_TYPE:
        return json(
            org_objects.list_users(
                org_id, request, ctx, api, paging, userName, displayName, locationFilter
            )
        )
    wanted = [n.lower() for n in (userName, displayName) if n]

    def rows() -> list[LocalUser]:
        users = catalog.organization_users(ctx, org_id)
        return [u for u in users if all(n in u.name.lower() for n in wanted)]

    render = partial(views.organization_user, org_id, api=api)
    return json(listing(request, api, "users", rows, render, paging, ctx.clock.now()))


# Since v3 (helpcenter.veeam.com/archive/vbo365/30/rest/get_organizations_id_users_id.html).
@router.get("/Organizations/{org_id}/Users/{user_id}", since=3)
def get_user(org_id: str, user_id: str, ctx: Ctx, api: Version, caller: Caller) -> Response:
    if catalog.get_organization(ctx, org_id, caller).type == m365_settings.OFFICE365_TYPE:
        return json(org_objects.get_user(org_id, user_id, ctx, api))
    for user in catalog.organization_users(ctx, org_id):
        if stable_user_id(org_id, user.name) == user_id:
            return json(views.organization_user(org_id, user, api))
    raise NotFound(f"organization '{org_id}' has no user '{user_id}'")


org_objects.install(router)


@router.get("/Organizations/{org_id}/AuditItems", since=6)
def list_audit_items(org_id: str, ctx: Ctx, api: Version, caller: Caller) -> Response:
    """The organization's users whose backed-up data the audit trail records operations on
    (explore, save, put back), as the vendor's audit items of type User. Administrators only;
    every event itself is listed by ``keepstone admin audit``."""
    auth.authorize(caller, auth.Action.READ_AUDIT)
    catalog.get_organization(ctx, org_id)
    names = audit.audited_users(ctx, org_id)
    return json([views.audit_item(org_id, name, api) for name in names])


# Since v3 (helpcenter.veeam.com/archive/vbo365/30/rest/get_organizations_id_usedrepositories
# .html): a bare array until v5, a page from v6.
@router.get("/Organizations/{org_id}/usedRepositories", since=3)
def used_repositories(
    org_id: str, request: Request, ctx: Ctx, api: Version, paging: Paging, caller: Caller
) -> Response:
    catalog.get_organization(ctx, org_id, caller)
    rows = partial(organization_storage.used_repositories, ctx, org_id)
    render = partial(views.used_repository, api=api)
    return json(listing(request, api, "usedRepositories", rows, render, paging, ctx.clock.now()))


# In every version since v2 (helpcenter.veeam.com/archive/vbo365/20/rest/
# get_organizations_id_licensing_information.html).
@router.get("/Organizations/{org_id}/LicensingInformation")
def licensing_information(org_id: str, ctx: Ctx) -> Response:
    catalog.get_organization(ctx, org_id)
    return json(views.licensing(licensing.count_licensed(ctx, org_id)))


# Since v3 (helpcenter.veeam.com/archive/vbo365/30/rest/get_licensedusers.html).
@router.get("/LicensedUsers", since=3)
def licensed_users(
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    organizationId: str | None = None,
    name: str | None = None,
) -> Response:
    rows = partial(licensing.licensed_users, ctx, organizationId, name)
    render = partial(views.licensed_user, api=api)
    return json(listing(request, api, "licensedUsers", rows, render, paging, ctx.clock.now()))
