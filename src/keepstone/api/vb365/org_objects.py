"""An Office365 organization's objects from its cache, in the vendor's paged shapes (graph.md
§5.2): users (wildcard and location filters), a user's OneDrives, groups and their members,
sites, teams; and the cache's sync (``POST /Sync``, ``GET /SyncState``). What a listing selects
(the filters) is ``services.m365_objects``'s; these routes parse and render.

The routes are installed on the organizations router (``install``), beside the routes of the
other organization types they share paths with."""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from fastapi import Request
from starlette.responses import Response

from keepstone.api.plumbing import plain
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import SyncOptionsBody
from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.pages import PageRequest, Paging, envelope, page_sets
from keepstone.api.vb365.versions import ApiVersion, Version, VersionedRouter
from keepstone.domain.errors import NotFound
from keepstone.domain.scope import stable_user_id
from keepstone.services import catalog, m365_directory, m365_objects, m365_settings
from keepstone.services.context import Context


def object_listing(
    request: Request,
    api: ApiVersion,
    collection: str,
    rows: Callable[[], Sequence[Any]],
    render: Callable[[Any], dict[str, Any]],
    paging: PageRequest,
    ctx: Context,
) -> Any:
    """A cached list as the version lists an organization's users: a bare array before v6, a
    page (with a set id the client may pass back) since."""
    if not api.pages("users"):
        everything = list(rows())
        end = None if paging.limit is None else paging.offset + paging.limit
        return [render(row) for row in everything[paging.offset : end]]
    now = ctx.clock.now()
    set_id, snapshot = page_sets(request).snapshot(
        collection, paging.set_id, lambda: list(rows()), now
    )
    window = snapshot[paging.offset : paging.offset + paging.size]
    return envelope(request, [render(row) for row in window], paging, len(snapshot), set_id)


# ---- users ------------------------------------------------------------------------------------


def list_users(
    org_id: str,
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    userName: str | None = None,
    displayName: str | None = None,
    locationFilter: str | None = None,
) -> Any:
    rows = m365_objects.users(
        ctx, org_id, user_name=userName, display_name=displayName, location=locationFilter
    )
    render = partial(views.m365_user, org_id, api=api)
    return object_listing(request, api, f"m365users:{org_id}", rows, render, paging, ctx)


def get_user(org_id: str, user_id: str, ctx: Context, api: ApiVersion) -> dict[str, Any]:
    m365_objects.office365(ctx, org_id)
    return views.m365_user(org_id, m365_directory.find_user(ctx, org_id, user_id), api)


def list_onedrives(
    org_id: str, user_id: str, request: Request, ctx: Ctx, api: Version, paging: Paging
) -> Response:
    if not m365_objects.is_office365(ctx, org_id):
        drives = local_onedrives(ctx, org_id, user_id, api)
    else:
        user = m365_directory.find_user(ctx, org_id, user_id)
        drives = [views.m365_onedrive(org_id, user, api)] if user.has_onedrive else []
    collection = f"onedrives:{org_id}:{user_id}"
    return json(object_listing(request, api, collection, lambda: drives, dict, paging, ctx))


def local_onedrives(ctx: Context, org_id: str, user_id: str, api: ApiVersion) -> list[Any]:
    """A Local or IMAP organization's user's drive: its files on disk (IMAP users have none)."""
    for user in catalog.organization_users(ctx, org_id):
        if stable_user_id(org_id, user.name) == user_id:
            return [views.local_onedrive(org_id, user_id, api)] if user.has_onedrive else []
    raise NotFound(f"organization '{org_id}' has no user '{user_id}'")


# ---- groups, sites, teams ---------------------------------------------------------------------


def list_groups(
    org_id: str,
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    displayName: str | None = None,
    groupName: str | None = None,
    locationFilter: str | None = None,
) -> Response:
    rows = m365_objects.groups(
        ctx, org_id, display_name=displayName, group_name=groupName, location=locationFilter
    )
    render = partial(views.m365_group, org_id, api=api)
    return json(object_listing(request, api, f"m365groups:{org_id}", rows, render, paging, ctx))


def get_group(org_id: str, group_id: str, ctx: Ctx, api: Version) -> Response:
    m365_objects.office365(ctx, org_id)
    return json(views.m365_group(org_id, m365_directory.find_group(ctx, org_id, group_id), api))


def list_members(
    org_id: str, group_id: str, request: Request, ctx: Ctx, api: Version, paging: Paging
) -> Response:
    m365_objects.office365(ctx, org_id)
    group = m365_directory.find_group(ctx, org_id, group_id)
    identifier = m365_directory.vendor_id(group.graph_id, group.onprem_guid)

    def rows() -> list[Any]:
        return m365_directory.cached_members(ctx, org_id, group.graph_id)

    render = partial(views.m365_member, org_id, identifier, api=api)
    collection = f"m365members:{org_id}:{group.graph_id}"
    return json(object_listing(request, api, collection, rows, render, paging, ctx))


def list_sites(
    org_id: str,
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    includePersonalSites: bool = False,
    locationFilter: str | None = None,
) -> Response:
    rows = m365_objects.sites(ctx, org_id, personal=includePersonalSites, location=locationFilter)
    render = partial(views.m365_site, org_id, api=api)
    return json(object_listing(request, api, f"m365sites:{org_id}", rows, render, paging, ctx))


def get_site(org_id: str, site_id: str, ctx: Ctx, api: Version) -> Response:
    m365_objects.office365(ctx, org_id)
    for site in m365_directory.cached_sites(ctx, org_id):
        if site_id.lower() in (views.site_id(site), site.graph_id.lower()):
            return json(views.m365_site(org_id, site, api))
    raise NotFound(f"organization '{org_id}' has no site '{site_id}'")


def list_teams(
    org_id: str,
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    displayName: str | None = None,
) -> Response:
    rows = m365_objects.teams(ctx, org_id, display_name=displayName)
    render = partial(views.m365_team, org_id, api=api)
    return json(object_listing(request, api, f"m365teams:{org_id}", rows, render, paging, ctx))


def get_team(org_id: str, team_id: str, ctx: Ctx, api: Version) -> Response:
    m365_objects.office365(ctx, org_id)
    team = m365_directory.find_group(ctx, org_id, team_id, team=True)
    return json(views.m365_team(org_id, team, api))


# ---- the cache's sync -------------------------------------------------------------------------


def start_sync(
    org_id: str, ctx: Ctx, api: Version, body: SyncOptionsBody | None = None
) -> Response:
    """Start a sync in the background (a running one is not started twice). Every sync reads
    the whole directory, so ``Incremental`` is served as ``Full``."""
    org = m365_objects.office365(ctx, org_id)
    m365_directory.SYNCS.start(ctx, org, m365_settings.access_of)
    return plain(204 if api.at_least(8) else 200)


def get_sync_state(org_id: str, ctx: Ctx, api: Version) -> Response:
    catalog.get_organization(ctx, org_id)  # others never sync: their state says so
    return json(views.sync_state(m365_directory.sync_state(ctx, org_id), api))


def get_sync_states(ctx: Ctx, api: Version) -> Response:
    return json([views.sync_state(row, api) for row in m365_directory.sync_states(ctx)])


def install(router: VersionedRouter) -> None:
    """The Office365-only routes (the users list and user are the organizations router's, which
    hands Office365 organizations to :func:`list_users` and :func:`get_user`)."""
    base = "/Organizations/{org_id}"
    router.get(f"{base}/Users/{{user_id}}/OneDrives", since=6)(list_onedrives)
    router.get(f"{base}/Groups", since=6)(list_groups)
    router.get(f"{base}/Groups/{{group_id}}", since=6)(get_group)
    router.get(f"{base}/Groups/{{group_id}}/Members", since=6)(list_members)
    router.get(f"{base}/Sites", since=6)(list_sites)
    router.get(f"{base}/Sites/{{site_id}}", since=6)(get_site)
    router.get(f"{base}/Teams", since=6)(list_teams)
    router.get(f"{base}/Teams/{{team_id}}", since=6)(get_team)
    router.post(f"{base}/Sync", since=7, response_class=Response)(start_sync)
    router.get(f"{base}/SyncState", since=7)(get_sync_state)
