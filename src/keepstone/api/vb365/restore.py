"""Restore points and restore sessions: explore, browse, save, put back."""

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import ConfigDict
from starlette.responses import Response

from keepstone.api.downloads import item_download, zip_download
from keepstone.api.plumbing import plain
from keepstone.api.vb365 import views
from keepstone.api.vb365.bodies import PathText, WireModel, any_case
from keepstone.api.vb365.deps import Caller, Ctx, json
from keepstone.api.vb365.pages import Continuation, Paging, listing, query_listing
from keepstone.api.vb365.tasks import accepted, wants_async
from keepstone.api.vb365.versions import ApiVersion, Version, VersionedRouter
from keepstone.domain.errors import InvalidInput
from keepstone.services import access, m365_restore, restore_points, restores
from keepstone.services.auth import Principal
from keepstone.services.m365_restore import (
    ExchangeOptions,
    RestoreCredentials,
    exchange_options,
    restore_credentials,
)
from keepstone.services.restores import Collision
from keepstone.store.tables import RestorePoint

router = VersionedRouter()
KINDS = {"mailboxes": "mail", "onedrives": "file"}

# ---- restore points -----------------------------------------------------------------------------


def _asked(
    taken_from: Annotated[datetime | None, Query(alias="from")] = None,
    taken_until: Annotated[datetime | None, Query(alias="to")] = None,
    isCopy: bool | None = None,
    isLongTermCopy: bool | None = None,
    isRetrieved: bool | None = None,
    userId: str | None = None,
    groupId: str | None = None,
    siteId: str | None = None,
    teamId: str | None = None,
) -> restore_points.Asked:
    others = (groupId, siteId, teamId)
    return restore_points.Asked(
        taken_from, taken_until, isCopy, isLongTermCopy, isRetrieved, userId, others
    )


@router.get("/RestorePoints")
def list_restore_points(
    request: Request,
    ctx: Ctx,
    api: Version,
    paging: Paging,
    caller: Caller,
    jobId: str | None = None,
    organizationId: str | None = None,
    repositoryId: str | None = None,
    orderAsc: bool = False,
    asked: restore_points.Asked = Depends(_asked),
) -> Response:
    where = restore_points.PointFilter(
        jobId, organizationId, repositoryId, orderAsc, access.organizations_of(caller)
    )
    where = restore_points.narrowed(where, asked)

    def page(_pin: None, offset: int, limit: int | None, total: int | None) -> list[RestorePoint]:
        return restore_points.page_points(ctx, where, offset, limit, total)

    def render(rows: Sequence[RestorePoint]) -> list[dict[str, Any]]:
        copies = restore_points.made_by_copies(ctx, rows)
        return [views.restore_point(point, api, point.id in copies) for point in rows]

    # Attaching a repository adds points of any age: a set's pages read the points as they are.
    count = partial(_count_points, ctx, where)
    now = ctx.clock.now()
    return json(
        query_listing(request, api, "restorePoints", lambda: None, page, count, render, paging, now)
    )


def _count_points(ctx: Any, where: restore_points.PointFilter, _pin: None) -> int:
    return restore_points.count_points(ctx, where)


@router.get("/RestorePoints/{point_id}")
def get_restore_point(point_id: str, ctx: Ctx, api: Version, caller: Caller) -> Response:
    point = restore_points.get_point(ctx, point_id, caller)
    is_copy = bool(restore_points.made_by_copies(ctx, [point]))
    return json(views.restore_point(point, api, is_copy))


@router.get("/Jobs/{job_id}/RestorePoints", until=5)
def list_job_restore_points(job_id: str, ctx: Ctx, api: Version) -> Response:
    return json(
        [views.restore_point(p, api) for p in restore_points.list_points(ctx, job_id=job_id)]
    )


# ---- explore ------------------------------------------------------------------------------------


class ExploreBody(WireModel):
    date_time: str | None = None
    type: str | None = None
    show_deleted: bool | None = None
    show_all_versions: bool | None = None


def explore_time(text: str | None) -> datetime | None:
    """The vendor accepts ``yyyy-MM-dd HH:mm:ss.SSS``, ``yyyy.MM.dd hh:mm:ss`` and ISO 8601."""
    if text is None or not text.strip():
        return None
    normal = re.sub(r"^(\d{4})\.(\d{2})\.(\d{2})", r"\1-\2-\3", text.strip()).replace("Z", "+00:00")
    try:
        instant = datetime.fromisoformat(normal)
        # In UTC, 0001-01-01T00:00+01:00 and 9999-12-31T23:59-01:00 fall outside years 1-9999.
        return instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"'{text}' is not a date and time between years 1 and 9999", "dateTime"
        ) from None


def explore_kind(text: str | None) -> str:
    kind = (text or "vex").lower()
    if kind not in ("vex", "veod"):
        raise InvalidInput(
            f"type '{text}' cannot be explored; use Vex (mail) or Veod (OneDrive)", "type"
        )
    return "Vex" if kind == "vex" else "Veod"


def start_explore(
    ctx: Any,
    caller: Principal,
    body: ExploreBody,
    api: ApiVersion,
    *,
    job_id: str | None = None,
    organization_id: str | None = None,
    status: int | None = None,
) -> Response:
    """Open a restore session; ``status`` where the dialect answers otherwise than
    ``api.created`` (the v2-v5 organization ``/Action``: 201)."""
    session = restores.explore_at(
        ctx,
        at=explore_time(body.date_time),
        user_name=caller.user_name,
        job_id=job_id,
        organization_id=organization_id,
        kind=explore_kind(body.type),
        caller=caller,
    )
    return json(views.restore_session(session, api), status or api.created)


@router.post("/Organizations/{org_id}/explore")
def explore_organization(
    org_id: str, body: ExploreBody, ctx: Ctx, api: Version, caller: Caller
) -> Response:
    return start_explore(ctx, caller, body, api, organization_id=org_id)


# ---- sessions -----------------------------------------------------------------------------------


@router.get("/RestoreSessions")
def list_sessions(
    request: Request, ctx: Ctx, api: Version, paging: Paging, caller: Caller
) -> Response:
    def page(
        until: datetime | None, offset: int, limit: int | None, total: int | None
    ) -> list[Any]:
        return restores.list_sessions(ctx, offset, limit, until, total, caller)

    def render(rows: Sequence[Any]) -> list[dict[str, Any]]:
        return [views.restore_session(session, api) for session in rows]

    now = ctx.clock.now()
    count = partial(_count_sessions, ctx, caller)
    listed = query_listing(
        request, api, "restoreSessions", lambda: now, page, count, render, paging, now
    )
    return json(listed)


def _count_sessions(ctx: Any, caller: Principal, until: datetime | None) -> int:
    return restores.count_sessions(ctx, until, caller)


@router.get("/RestoreSessions/{session_id}")
def get_session(session_id: str, ctx: Ctx, api: Version, caller: Caller) -> Response:
    return json(views.restore_session(restores.get_session(ctx, session_id, caller), api))


@router.post("/RestoreSessions/{session_id}/stop", response_class=Response)
def stop_session(session_id: str, ctx: Ctx, api: Version, caller: Caller) -> Response:
    """Up to v5 the stopped session is shown; v6/v7 answer 200 and v8 204, both empty."""
    session = restores.stop(ctx, session_id, caller)
    if api.at_least(6):
        return plain(204 if api.at_least(8) else 200)
    return json(views.restore_session(session, api))


@router.post("/RestoreSessions/{session_id}/Action", until=5)
def session_action(
    session_id: str, body: dict[str, Any], ctx: Ctx, api: Version, caller: Caller
) -> Response:
    restores.get_session(ctx, session_id, caller)  # a session out of reach: 404 before the body
    if [k.lower() for k in body] != ["stop"]:
        raise InvalidInput('the body must be {"stop": null}', "action")
    return json(views.restore_session(restores.stop(ctx, session_id, caller), api))


# Since v2 (helpcenter.veeam.com/archive/vbo365/20/rest/events.html: a page there too).
@router.get("/RestoreSessions/{session_id}/Events")
def list_events(
    session_id: str, request: Request, ctx: Ctx, api: Version, paging: Paging, caller: Caller
) -> Response:
    restores.get_session(ctx, session_id, caller)  # a 404 outside a scoped caller's reach

    def page(until: int | None, offset: int, limit: int | None, total: int | None) -> list[Any]:
        return restores.list_events(ctx, session_id, offset, limit, until, total)

    def render(rows: Sequence[Any]) -> list[dict[str, Any]]:
        return [views.restore_event(session_id, event, api=api) for event in rows]

    def after(until: int | None, key: tuple[Any, ...], limit: int) -> list[Any]:
        return restores.list_events(ctx, session_id, 0, limit, until, after=(key[0], key[1]))

    pin = partial(restores.last_event, ctx, session_id)
    count = partial(restores.count_events, ctx, session_id)
    now = ctx.clock.now()
    walk = Continuation(restores.event_key, after)
    return json(query_listing(request, api, "events", pin, page, count, render, paging, now, walk))


@router.get("/RestoreSessions/{session_id}/Events/{event_id}")
def get_event(session_id: str, event_id: str, ctx: Ctx, api: Version, caller: Caller) -> Response:
    event = restores.get_event(ctx, session_id, event_id, caller)
    return json(views.restore_event(session_id, event, api=api))


# Since v2 (helpcenter.veeam.com/archive/vbo365/20/rest/restore_sessions.html links to it).
@router.get("/RestoreSessions/{session_id}/Organization")
def session_organization(session_id: str, ctx: Ctx, api: Version, caller: Caller) -> Response:
    organization = restores.session_organization(ctx, session_id, caller)
    return json(views.restore_session_organization(session_id, organization, api))


@router.get("/RestoreSessions/{session_id}/Statistics", since=8)
def session_statistics(session_id: str, ctx: Ctx, caller: Caller) -> Response:
    return json(views.restore_statistics(restores.get_session(ctx, session_id, caller)))


# ---- browse -------------------------------------------------------------------------------------


def _owners(
    request: Request,
    ctx: Any,
    api: ApiVersion,
    paging: Any,
    session_id: str,
    collection: str,
    caller: Principal,
) -> Response:
    rows = partial(restores.browser(ctx, session_id, caller).owners_with, KINDS[collection])
    render = partial(views.restore_owner, session_id, collection, api=api)
    return json(listing(request, api, "restoreOwners", rows, render, paging, ctx.clock.now()))


def _owner(
    ctx: Any, api: ApiVersion, session_id: str, collection: str, owner_id: str, caller: Principal
) -> Response:
    browser = restores.browser(ctx, session_id, caller)
    owner = restores.Owner(owner_id, browser.user(owner_id))
    return json(views.restore_owner(session_id, collection, owner, api))


def _folders(
    request: Request,
    ctx: Any,
    api: ApiVersion,
    paging: Any,
    session_id: str,
    collection: str,
    owner_id: str,
    parent_id: str | None,
    caller: Principal,
) -> Response:
    browser = restores.browser(ctx, session_id, caller)
    kind = KINDS[collection]

    def rows() -> list[Any]:
        return browser.children(owner_id, kind, _place(parent_id))

    owner = restores.Owner(owner_id, browser.user(owner_id))
    newest = browser.newest(owner_id, kind)
    render = partial(views.restore_folder, (session_id, collection), owner, newest, api=api)
    return json(listing(request, api, "restoreFolders", rows, render, paging, ctx.clock.now()))


def _folder(
    ctx: Any,
    api: ApiVersion,
    where: tuple[str, str],
    owner_id: str,
    folder_id: str,
    caller: Principal,
) -> Response:
    session_id, collection = where
    browser = restores.browser(ctx, session_id, caller)
    kind = KINDS[collection]
    owner = restores.Owner(owner_id, browser.user(owner_id))
    found = browser.folder(owner_id, kind, folder_id)
    newest = browser.newest(owner_id, kind)
    return json(views.restore_folder(where, owner, newest, found, api))


# The vendor's ``parentId=null`` (v5's get_onedrives_id_folders.html): the top of an owner's
# tree (its top-level folders, a drive's root documents); an absent parentId means them all.
VENDOR_TOP = "null"


def _place(folder_id: str | None) -> str | restores.Top | None:
    return restores.TOP if folder_id is not None and folder_id.lower() == VENDOR_TOP else folder_id


def _one_of(folder_id: str | None, parent_id: str | None) -> str | None:
    """The folder a listing of items names: ``parentId`` is the vendor's name for a OneDrive's
    documents, ``folderId`` for a mailbox's items (and Keepstone's older one for documents)."""
    if folder_id is not None and parent_id is not None and folder_id != parent_id:
        raise InvalidInput("give the folder once, as parentId or folderId", "parentId")
    return folder_id if folder_id is not None else parent_id


def _contents(
    request: Request,
    ctx: Any,
    api: ApiVersion,
    paging: Any,
    session_id: str,
    collection: str,
    owner_id: str,
    folder_id: str | None,
    caller: Principal,
) -> Response:
    browser = restores.browser(ctx, session_id, caller)
    kind = KINDS[collection]
    # Without a folder, every item of the owner: read a page at a time, not decoded all first,
    # each page through the session's browser of the moment (the set outlives this one).
    reopen = partial(restores.browser, ctx, session_id, caller)
    # a drive's documents may be asked for at its top; a mailbox's items only by folder
    folder = _place(folder_id) if kind == "file" else folder_id
    rows = (
        partial(browser.owner_items, owner_id, kind, reopen)
        if folder is None
        else partial(browser.contents, owner_id, kind, folder)
    )
    render = partial(views.restore_item, restores.Owner(owner_id, browser.user(owner_id)))
    return json(listing(request, api, "restoreItems", rows, render, paging, ctx.clock.now()))


def _browse_routes(collection: str, items: str) -> None:
    """The owners (mailboxes or OneDrives) of a restore session, one owner, its folders and its
    items (messages or documents)."""
    base = f"/RestoreSessions/{{session_id}}/Organization/{collection}"
    name = collection.lower()

    def list_owners(
        session_id: str, request: Request, ctx: Ctx, api: Version, paging: Paging, caller: Caller
    ) -> Response:
        return _owners(request, ctx, api, paging, session_id, name, caller)

    def get_owner(
        session_id: str, owner_id: str, ctx: Ctx, api: Version, caller: Caller
    ) -> Response:
        return _owner(ctx, api, session_id, name, owner_id, caller)

    def list_folders(
        session_id: str,
        owner_id: str,
        request: Request,
        ctx: Ctx,
        api: Version,
        paging: Paging,
        caller: Caller,
        parentId: str | None = None,
    ) -> Response:
        return _folders(request, ctx, api, paging, session_id, name, owner_id, parentId, caller)

    def get_folder(
        session_id: str, owner_id: str, folder_id: str, ctx: Ctx, api: Version, caller: Caller
    ) -> Response:
        return _folder(ctx, api, (session_id, name), owner_id, folder_id, caller)

    def list_contents(
        session_id: str,
        owner_id: str,
        request: Request,
        ctx: Ctx,
        api: Version,
        paging: Paging,
        caller: Caller,
        folderId: str | None = None,
        parentId: str | None = None,
    ) -> Response:
        folder = _one_of(folderId, parentId)
        return _contents(request, ctx, api, paging, session_id, name, owner_id, folder, caller)

    router.get(base)(list_owners)
    router.get(f"{base}/{{owner_id}}")(get_owner)
    router.get(f"{base}/{{owner_id}}/Folders")(list_folders)
    router.get(f"{base}/{{owner_id}}/Folders/{{folder_id}}")(get_folder)
    router.get(f"{base}/{{owner_id}}/{items}")(list_contents)


_browse_routes("Mailboxes", "Items")
_browse_routes("OneDrives", "Documents")


# ---- get data out ------------------------------------------------------------------------------


@router.post("/RestoreSessions/{session_id}/Organization/Mailboxes/{owner_id}/Items/{item}/save")
@router.post(
    "/RestoreSessions/{session_id}/Organization/OneDrives/{owner_id}/Documents/{item}/save"
)
def save_one(session_id: str, owner_id: str, item: str, ctx: Ctx, caller: Caller) -> Response:
    found, chunks = restores.stream_item(
        ctx, session_id, owner_id, item, by=caller.user_name, caller=caller
    )
    return item_download(found, chunks)


class ItemId(WireModel):
    id: str


class ItemsBody(WireModel):
    model_config = ConfigDict(extra="allow")  # the Exchange options: see exchange()

    ids: list[str] | None = None
    user_name: PathText | None = None
    folder: PathText | None = None
    collision_policy: Annotated[Collision, any_case(Collision)] | None = None
    # the vendor's Office365 options: the target mailbox, and the application to write with
    mailbox: PathText | None = None
    application_id: str | None = None
    application_secret: str | None = None
    application_certificate: str | None = None
    application_certificate_password: str | None = None
    user_password: str | None = None
    user_code: str | None = None
    # v8's selected items ([{"id": …}], RESTExchangeItemStringId), the same as ids
    items: list[ItemId] | None = None

    def __repr__(self) -> str:  # the secrets stay out of any log line or traceback
        return f"ItemsBody(ids={self.ids!r}, userName={self.user_name!r})"

    def item_ids(self) -> list[str] | None:
        if self.ids is not None and self.items is not None:
            raise InvalidInput("give either ids or items, not both", "items")
        return self.ids if self.items is None else [item.id for item in self.items]

    def exchange(self) -> ExchangeOptions:
        """The vendor's Exchange restore options (``RESTRestoreToDifferentLocation``), read
        from the properties this model does not declare itself."""
        return exchange_options(self.model_extra or {})

    def credentials(self, office365: bool) -> RestoreCredentials | None:
        return restore_credentials(
            application_id=self.application_id,
            secret=self.application_secret,
            certificate=self.application_certificate,
            certificate_password=self.application_certificate_password,
            user_password=self.user_password,
            user_code=self.user_code,
            office365=office365,
        )


@router.post("/RestoreSessions/{session_id}/Organization/Mailboxes/{owner_id}/Items/save")
@router.post("/RestoreSessions/{session_id}/Organization/OneDrives/{owner_id}/Documents/save")
def save_many(
    session_id: str, owner_id: str, body: ItemsBody, ctx: Ctx, caller: Caller
) -> Response:
    return zip_download(ctx, session_id, owner_id, body.item_ids() or [], caller)


# ---- put back ----------------------------------------------------------------------------------


def put_back(
    request: Request,
    api: ApiVersion,
    session_id: str,
    kind: str,
    owner_id: str,
    ids: list[str] | None,
    ctx: Any,
    body: ItemsBody | None,
    elsewhere: bool,
    caller: Principal,
) -> Response:
    """Put items back; ``Prefer: respond-async`` makes it a task to poll (counts in its result)."""
    options = body or ItemsBody()
    # A restore to the original place has no target: there, as in the vendor's
    # RESTRestoreToOriginalLocation, userName is the account a server would sign in as.
    to_user = (options.mailbox or options.user_name) if elsewhere else None
    view = restores.browser(ctx, session_id, caller)
    view.user(owner_id)  # a wrong session or owner (or one out of the caller's scope): a 404
    if elsewhere and not to_user and not options.folder:
        raise InvalidInput("restoreTo needs userName (or mailbox) and/or folder", "userName")
    office365 = m365_restore.is_office365(ctx, view.organization_id)
    mail = m365_restore.checked_options(
        ctx, view.organization_id, options.exchange(), kind, office365
    )
    # the organization, with the application the request named, is checked now: a 400
    target = restores.session_target(ctx, session_id, options.credentials(office365))
    target = m365_restore.with_mail_options(target, mail)

    def work() -> tuple[str, dict[str, Any]]:
        counts = restores.restore(
            ctx,
            session_id,
            owner_id,
            ids,
            kind=kind,
            to_user=to_user,
            to_folder=options.folder,
            collision=options.collision_policy or Collision.KEEP_BOTH,
            by=caller.user_name,
            target=target,
            caller=caller,
        )
        return f"Restored {counts.restored} items", {"result": views.restore_counts(counts, kind)}

    if wants_async(request):
        return accepted(ctx, api.link, "Restore", work, caller)
    counts = work()[1]["result"]
    # v8 names the restore session whose Events and Statistics describe the restore; here the
    # restore has already finished when the answer comes, so its counts come along too.
    return json({"sessionId": session_id} | counts if api.at_least(8) else counts)


ACTIONS = {"restore": False, "restoreTo": True, "copyTo": True}


def _handlers(kind: str, elsewhere: bool) -> tuple[Any, Any]:
    """The put-back handlers of one action: for listed (or all) items, and for one item."""

    def listed(
        session_id: str,
        owner_id: str,
        request: Request,
        ctx: Ctx,
        api: Version,
        caller: Caller,
        body: ItemsBody | None = None,
    ) -> Response:
        ids = body.item_ids() if body else None
        return put_back(request, api, session_id, kind, owner_id, ids, ctx, body, elsewhere, caller)

    def one(
        session_id: str,
        owner_id: str,
        item: str,
        request: Request,
        ctx: Ctx,
        api: Version,
        caller: Caller,
        body: ItemsBody | None = None,
    ) -> Response:
        return put_back(
            request, api, session_id, kind, owner_id, [item], ctx, body, elsewhere, caller
        )

    return listed, one


def _owner_routes(collection: str, items: str) -> None:
    base = f"/RestoreSessions/{{session_id}}/Organization/{collection}/{{owner_id}}"
    for action, elsewhere in ACTIONS.items():
        all_items, one_item = _handlers(KINDS[collection.lower()], elsewhere)
        router.post(f"{base}/{action}")(all_items)
        router.post(f"{base}/{items}/{action}")(all_items)
        router.post(f"{base}/{items}/{{item}}/{action}")(one_item)


_owner_routes("Mailboxes", "Items")
_owner_routes("OneDrives", "Documents")
