"""Which of an Office365 organization's cached objects a listing shows (graph.md §5.2): the
vendor's wildcard filters (``userName``, ``displayName``, ``groupName``), ``locationFilter``,
personal sites, teams. The API's routers only parse a request and render what this selects.

Each query checks its filters at once (a bad one is an ``InvalidInput`` naming it, before any
page is read) and returns the loader the paged listing calls when it needs a fresh snapshot;
an organization of another type has no directory, so it lists nothing.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from keepstone.domain.errors import InvalidInput
from keepstone.services import catalog, m365_directory, m365_settings
from keepstone.services.context import Context
from keepstone.store.tables import M365Group, M365Site, M365User, Organization

LOCATIONS = {
    "cloud": {"Cloud"},
    "onpremises": {"OnPremises"},
    "hybrid": {"Hybrid"},
    "cloudorhybrid": {"Cloud", "Hybrid"},
    "onpremisesorhybrid": {"OnPremises", "Hybrid"},
    "any": {"Cloud", "Hybrid", "OnPremises"},
}
SITE_LOCATIONS = ("cloud", "onpremises", "any")  # sites are never hybrid
MAX_PATTERN = 255

Users = Callable[[], list[M365User]]
Groups = Callable[[], list[M365Group]]
Sites = Callable[[], list[M365Site]]


def office365(ctx: Context, org_id: str) -> Organization:
    org = catalog.get_organization(ctx, org_id)
    if org.type != m365_settings.OFFICE365_TYPE:
        raise InvalidInput(
            f"organization '{org.name}' is a {org.type} organization: only Office365 "
            "organizations have a directory to synchronise",
            "organizationId",
        )
    return org


def is_office365(ctx: Context, org_id: str) -> bool:
    """Whether the organization (which must exist) is Office365; the others (a directory on
    disk, a mail server) have no groups, sites or teams, so they list none."""
    return catalog.get_organization(ctx, org_id).type == m365_settings.OFFICE365_TYPE


def wildcard(pattern: str | None, prop: str) -> Callable[[str | None], bool]:
    """The vendor's filter: ``*`` any run, ``?`` one character, case-insensitive; a pattern
    without wildcards matches as a substring."""
    if not pattern:
        return lambda _: True
    if len(pattern) > MAX_PATTERN:
        raise InvalidInput(f"must be at most {MAX_PATTERN} characters", prop)
    body = pattern if any(c in pattern for c in "*?") else f"*{pattern}*"
    regex = re.compile(fnmatch.translate(body.replace("[", "[[]")), re.IGNORECASE | re.DOTALL)
    return lambda value: bool(value) and regex.match(value or "") is not None


def locations(value: str | None) -> set[str]:
    if value is None:
        return LOCATIONS["any"]
    found = LOCATIONS.get(value.lower())
    if found is None:
        raise InvalidInput(
            "must be one of Cloud, OnPremises, Hybrid, CloudOrHybrid, OnPremisesOrHybrid, Any",
            "locationFilter",
        )
    return found


def users(
    ctx: Context,
    org_id: str,
    *,
    user_name: str | None = None,
    display_name: str | None = None,
    location: str | None = None,
) -> Users:
    """The users whose UPN or mail matches ``user_name``, display name ``display_name``, in
    ``location``."""
    office365(ctx, org_id)
    by_name = wildcard(user_name, "userName")
    by_display = wildcard(display_name, "displayName")
    where = locations(location)

    def rows() -> list[M365User]:
        return [
            u
            for u in m365_directory.cached_users(ctx, org_id)
            if (by_name(u.name) or by_name(u.mail))
            and by_display(u.display_name)
            and u.location in where
        ]

    return rows


def groups(
    ctx: Context,
    org_id: str,
    *,
    display_name: str | None = None,
    group_name: str | None = None,
    location: str | None = None,
) -> Groups:
    cached = is_office365(ctx, org_id)
    by_display, by_name = wildcard(display_name, "displayName"), wildcard(group_name, "groupName")
    where = locations(location)

    def rows() -> list[M365Group]:
        if not cached:
            return []
        return [
            g
            for g in m365_directory.cached_groups(ctx, org_id)
            if by_display(g.display_name) and by_name(g.name) and g.location in where
        ]

    return rows


def sites(
    ctx: Context, org_id: str, *, personal: bool = False, location: str | None = None
) -> Sites:
    """SharePoint Online's sites (all in the cloud), personal ones only when asked for."""
    cached = is_office365(ctx, org_id)
    where = locations(location)
    if location is not None and location.lower() not in SITE_LOCATIONS:
        raise InvalidInput("must be one of Cloud, OnPremises, Any", "locationFilter")

    def rows() -> list[M365Site]:
        if not cached or "Cloud" not in where:
            return []
        return [
            s for s in m365_directory.cached_sites(ctx, org_id) if personal or not s.is_personal
        ]

    return rows


def teams(ctx: Context, org_id: str, *, display_name: str | None = None) -> Groups:
    cached = is_office365(ctx, org_id)
    by_display = wildcard(display_name, "displayName")

    def rows() -> list[M365Group]:
        if not cached:
            return []
        found = m365_directory.cached_groups(ctx, org_id, teams=True)
        return [t for t in found if by_display(t.display_name)]

    return rows
