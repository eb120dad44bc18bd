"""Reading a tenant's directory through Graph: users (with what their mailbox and OneDrive are),
groups and their members, SharePoint sites. Plain values out; the organization cache
(``services.m365_directory``) stores them.

Requests are counted against the directory's size, not its square: users are paged 999 at a time,
and each user's mailbox settings and drive are asked for in ``$batch`` requests of 20 (10 users
per batch), so N users cost about N/999 + N/10 requests. Everything Graph returns is data: a
missing or odd property becomes ``None`` or the default, never a failed sync.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from keepstone.domain.text import storable, xml_safe
from keepstone.domain.throttle import APP_SCOPE
from keepstone.sources.graph.client import GraphClient, inner_retry_after
from keepstone.sources.graph.drive_backup import DRIVE_SCOPE
from keepstone.sources.graph.errors import GraphError

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
USERS_PAGE = 999
USERS_PER_BATCH = 10  # two inner requests each: Graph's $batch holds 20
BATCH_RETRIES = 3
USER_SELECT = (
    "id,userPrincipalName,displayName,mail,officeLocation,assignedLicenses,"
    "onPremisesSyncEnabled,onPremisesSecurityIdentifier,onPremisesImmutableId"
)
GROUP_SELECT = (
    "id,displayName,description,mail,mailNickname,groupTypes,mailEnabled,securityEnabled,"
    "onPremisesSyncEnabled,onPremisesSecurityIdentifier,resourceProvisioningOptions"
)
MEMBER_SELECT = "id,displayName,userPrincipalName,mail,onPremisesSyncEnabled"
SITE_SELECT = "id,webUrl,name,displayName,isPersonalSite"
# mailboxSettings.userPurpose -> the vendor's user type (graph.md §5.2)
PURPOSES = {"shared": "Shared", "room": "Shared", "equipment": "Shared", "others": "Public"}


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    graph_id: str
    name: str  # the UPN, lower-cased
    display_name: str
    mail: str | None = None
    onprem_guid: str = ZERO_GUID
    location: str = "Cloud"  # Cloud | Hybrid
    office: str | None = None
    onprem_sid: str | None = None
    licenses: tuple[str, ...] = ()
    kind: str = "User"
    has_mailbox: bool = True
    has_archive: bool = False
    has_onedrive: bool = True
    drive_id: str | None = None
    drive_url: str | None = None


@dataclass(frozen=True, slots=True)
class DirectoryGroup:
    graph_id: str
    display_name: str
    name: str | None
    description: str | None
    mail: str | None
    kind: str
    location: str
    onprem_guid: str = ZERO_GUID
    onprem_sid: str | None = None
    is_team: bool = False


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    kind: str  # User | Group | Unknown
    name: str
    login: str | None
    is_cloud: bool


@dataclass(frozen=True, slots=True)
class Site:
    graph_id: str
    url: str
    name: str
    title: str
    is_personal: bool


@dataclass
class Counter:
    """Requests made, for the tests that hold the sync to a linear cost."""

    requests: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, count: int = 1) -> None:
        self.requests += count
        self.by_kind[kind] = self.by_kind.get(kind, 0) + count


def _text(value: Any) -> str | None:
    """A property that is only shown, as text for people: what neither a catalog nor XML can
    carry (NUL, a lone surrogate, ...) replaced by U+FFFD."""
    return xml_safe(value) if isinstance(value, str) and value else None


def _key(value: Any) -> str | None:
    """A property that names or finds the object (an id, a sign-in name, a URL), as Graph gave
    it: the cache keeps it only if every catalog can (``services.m365_directory``)."""
    return value if isinstance(value, str) and value else None


def onprem_guid(immutable_id: Any) -> str:
    """The on-premises objectGUID a synced object carries as ``onPremisesImmutableId`` (its
    16 bytes in base64, .NET's little-endian GUID layout); zeros for a cloud-only object."""
    if not isinstance(immutable_id, str):
        return ZERO_GUID
    try:
        raw = base64.b64decode(immutable_id, validate=True)
    except (ValueError, binascii.Error):
        return ZERO_GUID
    return str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else ZERO_GUID


def _user(row: Mapping[str, Any]) -> DirectoryUser | None:
    graph_id, upn = _key(row.get("id")), _key(row.get("userPrincipalName"))
    if graph_id is None or upn is None:
        return None
    synced = row.get("onPremisesSyncEnabled") is True
    licenses = [
        lic["skuId"]
        for lic in row.get("assignedLicenses") or []
        if isinstance(lic, dict) and isinstance(lic.get("skuId"), str) and storable(lic["skuId"])
    ]
    return DirectoryUser(
        graph_id=graph_id,
        name=upn.lower(),
        display_name=_text(row.get("displayName")) or upn,
        mail=_text(row.get("mail")),
        onprem_guid=onprem_guid(row.get("onPremisesImmutableId")) if synced else ZERO_GUID,
        location="Hybrid" if synced else "Cloud",
        office=_text(row.get("officeLocation")),
        onprem_sid=_key(row.get("onPremisesSecurityIdentifier")),
        licenses=tuple(licenses),
    )


def list_users(client: GraphClient, counter: Counter) -> Iterator[list[DirectoryUser]]:
    """The directory's users, a page at a time (without mailbox and drive facts yet)."""
    walk = client.iterate_pages(f"/v1.0/users?$select={USER_SELECT}&$top={USERS_PAGE}")
    for page in walk:
        counter.add("users")
        yield [user for user in map(_user, page) if user is not None]


def with_mailboxes_and_drives(
    client: GraphClient,
    users: list[DirectoryUser],
    counter: Counter,
    previous: Mapping[str, DirectoryUser] | None = None,
) -> list[DirectoryUser]:
    """``users`` with their mailbox type and OneDrive, asked for in batches. A fact Graph did
    not answer (throttled past the retries, a 5xx, a refusal) keeps what the previous sync
    found (``previous``, by Graph id), or the default for a user seen the first time."""
    done: list[DirectoryUser] = []
    known = previous or {}
    for start in range(0, len(users), USERS_PER_BATCH):
        chunk = users[start : start + USERS_PER_BATCH]
        answers = _batch(client, _facts_requests(chunk), counter, _facts_scope)
        done.extend(
            _with_facts(user, answers, i, known.get(user.graph_id)) for i, user in enumerate(chunk)
        )
    return done


def _facts_scope(key: str) -> str:
    """The throttling scope of a facts request: a drive lookup spends the tenant's SharePoint
    resource units (the drive backup's scope), a mailbox's settings its Outlook budget; the
    whole application is held for those, as the sync does not keep a scope per mailbox."""
    return DRIVE_SCOPE if key.startswith("d") else APP_SCOPE


def _facts_requests(users: list[DirectoryUser]) -> dict[str, str]:
    requests: dict[str, str] = {}
    for index, user in enumerate(users):
        key = quote(user.graph_id, safe="")
        requests[f"m{index}"] = f"/users/{key}/mailboxSettings"
        requests[f"d{index}"] = f"/users/{key}/drive"
    return requests


# Only these are answers about the fact: 200 (here it is) and 404 (documented for a user without
# a mailbox, "MailboxNotEnabledForRESTAPI", or without a OneDrive, "mysite not found"; graph.md
# §1, §6.2 edge tenants). Anything else says nothing about the user.
ANSWERED = frozenset({200, 404})


def _with_facts(
    user: DirectoryUser,
    answers: Mapping[str, tuple[int, Any]],
    index: int,
    previous: DirectoryUser | None,
) -> DirectoryUser:
    # a new user's facts default to "has them" (an archive too): the backup finds out
    known = previous or replace(user, has_archive=True)
    return DirectoryUser(
        **{
            **_fields(user),
            **_mailbox_facts(answers[f"m{index}"], known),
            **_drive_facts(answers[f"d{index}"], known),
        }
    )


def _mailbox_facts(answer: tuple[int, Any], known: DirectoryUser) -> dict[str, Any]:
    status, settings = answer
    if status not in ANSWERED:
        return {
            "kind": known.kind,
            "has_mailbox": known.has_mailbox,
            "has_archive": known.has_archive,
        }
    has_mailbox = status == 200
    purpose = settings.get("userPurpose") if has_mailbox and isinstance(settings, dict) else None
    return {
        "kind": PURPOSES.get(str(purpose).lower(), "User"),
        "has_mailbox": has_mailbox,
        # Graph v1.0 does not say whether an in-place archive exists: a user with a mailbox
        # may have one, and the mail backup finds out when a job selects it.
        "has_archive": has_mailbox,
    }


def _drive_facts(answer: tuple[int, Any], known: DirectoryUser) -> dict[str, Any]:
    status, drive = answer
    if status not in ANSWERED:
        return {
            "has_onedrive": known.has_onedrive,
            "drive_id": known.drive_id,
            "drive_url": known.drive_url,
        }
    drive = drive if status == 200 and isinstance(drive, dict) else {}
    return {
        "has_onedrive": status == 200,
        "drive_id": _key(drive.get("id")),
        "drive_url": _key(drive.get("webUrl")),
    }


def _fields(user: DirectoryUser) -> dict[str, Any]:
    return {name: getattr(user, name) for name in DirectoryUser.__slots__}


def _batch(
    client: GraphClient,
    requests: Mapping[str, str],
    counter: Counter,
    scope_of: Callable[[str], str],
) -> dict[str, tuple[int, Any]]:
    """``id -> (status, body)`` of GETs sent as one ``$batch``; inner answers that were
    throttled or failed transiently are asked again (the client's discipline waits first).
    The batch waits for the SharePoint scope's gate as well as the application's, so a drive
    backup's ``Retry-After`` holds the sync's drive lookups too."""
    answers: dict[str, tuple[int, Any]] = {}
    pending = dict(requests)
    for _ in range(BATCH_RETRIES):
        if not pending:
            break
        body = {"requests": [{"id": k, "method": "GET", "url": u} for k, u in pending.items()]}
        response = client.request(
            "POST",
            "/v1.0/$batch",
            scope=DRIVE_SCOPE,
            headers={"Content-Type": "application/json"},
            content=json.dumps(body).encode(),
        )
        counter.add("batch")
        for inner in _inner_answers(response.content):
            answers[inner[0]] = (inner[1], inner[2])
        pending = {k: u for k, u in pending.items() if answers.get(k, (429, None))[0] in _AGAIN}
        _wait_for_retry_after(client, response.content, scope_of)
    for key in pending:  # still throttled: one by one, through the full discipline
        answers[key] = _single(client, requests[key], counter, scope_of(key))
    return answers


_AGAIN = frozenset({429, 500, 502, 503, 504})


def _inner_answers(content: bytes) -> Iterator[tuple[str, int, Any]]:
    try:
        document = json.loads(content)
    except ValueError:
        return
    for inner in document.get("responses") or [] if isinstance(document, dict) else []:
        if isinstance(inner, dict) and isinstance(inner.get("id"), str):
            status = inner.get("status")
            yield inner["id"], status if isinstance(status, int) else 500, inner.get("body")


def _wait_for_retry_after(
    client: GraphClient, content: bytes, scope_of: Callable[[str], str]
) -> None:
    """Each Retry-After an inner answer named, honoured for its request's scope."""
    try:
        document = json.loads(content)
    except ValueError:
        return
    answers = document.get("responses") if isinstance(document, dict) else None
    waits: dict[str, float] = {}
    for inner in answers if isinstance(answers, list) else []:
        if isinstance(inner, dict) and (wait := inner_retry_after(inner)) is not None:
            scope = scope_of(str(inner.get("id")))
            waits[scope] = max(wait, waits.get(scope, 0.0))
    for scope, wait in waits.items():
        client.hold(scope, wait)


def _single(client: GraphClient, url: str, counter: Counter, scope: str) -> tuple[int, Any]:
    counter.add("single")
    try:
        return 200, client.get_json(f"/v1.0{url}", scope=scope)
    except GraphError as error:
        return error.status, None


# ---- groups, members, sites -------------------------------------------------------------------


def _group_kind(row: Mapping[str, Any]) -> str:
    types = [str(t).lower() for t in row.get("groupTypes") or []]
    if "unified" in types:
        return "Office365"
    mail_enabled, security = row.get("mailEnabled") is True, row.get("securityEnabled") is True
    if mail_enabled and not security:
        return "DynamicDistribution" if "dynamicmembership" in types else "Distribution"
    return "Security"


def _group(row: Mapping[str, Any]) -> DirectoryGroup | None:
    graph_id = _key(row.get("id"))
    if graph_id is None:
        return None
    synced = row.get("onPremisesSyncEnabled") is True
    options = [str(o).lower() for o in row.get("resourceProvisioningOptions") or []]
    mail = _text(row.get("mail"))
    return DirectoryGroup(
        graph_id=graph_id,
        display_name=_text(row.get("displayName")) or graph_id,
        name=mail or _text(row.get("mailNickname")),
        description=_text(row.get("description")),
        mail=mail,
        kind=_group_kind(row),
        location="Hybrid" if synced else "Cloud",
        onprem_sid=_key(row.get("onPremisesSecurityIdentifier")),
        is_team="team" in options,
    )


def list_groups(client: GraphClient, counter: Counter) -> list[DirectoryGroup]:
    groups: list[DirectoryGroup] = []
    for page in client.iterate_pages(f"/v1.0/groups?$select={GROUP_SELECT}&$top=999"):
        counter.add("groups")
        groups.extend(g for g in map(_group, page) if g is not None)
    return groups


def _member(row: Mapping[str, Any]) -> GroupMember | None:
    member_id = _key(row.get("id"))
    if member_id is None:
        return None
    kind = {"#microsoft.graph.user": "User", "#microsoft.graph.group": "Group"}.get(
        str(row.get("@odata.type")), "Unknown"
    )
    login = _text(row.get("userPrincipalName")) or _text(row.get("mail"))
    return GroupMember(
        member_id=member_id,
        kind=kind,
        name=_text(row.get("displayName")) or login or member_id,
        login=login.lower() if login else None,
        is_cloud=row.get("onPremisesSyncEnabled") is not True,
    )


def list_members(client: GraphClient, group_id: str, counter: Counter) -> list[GroupMember]:
    url = f"/v1.0/groups/{quote(group_id, safe='')}/members?$select={MEMBER_SELECT}&$top=999"
    members: list[GroupMember] = []
    for page in client.iterate_pages(url):
        counter.add("members")
        members.extend(m for m in map(_member, page) if m is not None)
    return members


def _site(row: Mapping[str, Any]) -> Site | None:
    graph_id, url = _key(row.get("id")), _key(row.get("webUrl"))
    if graph_id is None or url is None:
        return None
    name = _text(row.get("name")) or url.rstrip("/").rsplit("/", 1)[-1]
    return Site(
        graph_id=graph_id,
        url=url,
        name=name,
        title=_text(row.get("displayName")) or name,
        is_personal=row.get("isPersonalSite") is True,
    )


def list_sites(client: GraphClient, counter: Counter) -> list[Site]:
    sites: list[Site] = []
    for page in client.iterate_pages(f"/v1.0/sites/getAllSites?$select={SITE_SELECT}&$top=999"):
        counter.add("sites")
        sites.extend(s for s in map(_site, page) if s is not None)
    return sites
