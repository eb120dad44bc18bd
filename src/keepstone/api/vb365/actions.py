"""The v2-v5 ``/Action`` dialect of restores: one POST whose body has a single property naming
the operation (``{"restoreTo": {...}}``), answered by the handlers of the v6 verbs
(``/restore``, ``/restoreTo``, ``/save``, ``/Organizations/{id}/explore``). Only the body's
shape is translated here; the services decide and do the work.

v6 and later have no such paths (the vendor's OpenAPI specs): they stay 404 there.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.responses import Response

from keepstone.api.vb365.bodies import parse_nested
from keepstone.api.vb365.deps import Caller, Ctx
from keepstone.api.vb365.restore import (
    KINDS,
    ExploreBody,
    ItemsBody,
    put_back,
    save_many,
    save_one,
    start_explore,
)
from keepstone.api.vb365.versions import ApiVersion, Version, VersionedRouter
from keepstone.domain.errors import InvalidInput
from keepstone.services import catalog, restores
from keepstone.services.auth import Principal

router = VersionedRouter()
LAST = 5  # v6 replaced the dialect by one path per verb

# the dialect's action (lower case) -> the verb of /restore... that does it (elsewhere?)
PUT_BACK = {"restoretooriginallocation": False, "restoreto": True, "copyto": True}
SAVE = "save"
# Known actions Keepstone does not serve, each with why and what to use instead (as
# docs/compatibility.md says of the v6 paths).
REFUSED = {
    "savetomsg": 'Keepstone saves messages as .eml (MIME), not Outlook MSG: use {"save": {}}',
    "exporttopst": 'Keepstone has no PST writer: use {"save": {}} (an .eml file, or a zip of them)',
}
SERVED = ("restoreToOriginalLocation", "restoreTo", "copyTo", "save")


def one_action(body: dict[str, Any], served: tuple[str, ...]) -> tuple[str, Any]:
    """The body's single action (its name in lower case) and its options."""
    if len(body) != 1:
        raise InvalidInput(
            f"the body must hold exactly one action, not {len(body)}; served: " + ", ".join(served),
            "action",
        )
    name, options = next(iter(body.items()))
    return str(name).lower(), options


# ---- explore ------------------------------------------------------------------------------------


@router.post("/Organizations/{org_id}/Action", until=LAST)
def organization_action(
    org_id: str, body: dict[str, Any], ctx: Ctx, api: Version, caller: Caller
) -> Response:
    """``{"explore": {...}}``: the session, answered 201 as the v2-v5 portal expects."""
    catalog.get_organization(ctx, org_id, caller)  # unknown or out of reach: 404 before the body
    name, options = one_action(body, ("explore",))
    if name != "explore":
        raise InvalidInput(
            f"'{name}' is not an action of an organization; served: explore", "action"
        )
    explore = parse_nested(ExploreBody, options, "explore")
    return start_explore(ctx, caller, explore, api, organization_id=org_id, status=201)


# ---- restore session items ----------------------------------------------------------------------


def _items_body(options: Any, name: str) -> ItemsBody:
    """The action's options as the v6 verbs' body: the dialect lists OneDrive documents under
    ``Documents`` where the verbs read ``items`` (both ``[{"id": ...}]``)."""
    if isinstance(options, dict):
        options = {("items" if k.lower() == "documents" else k): v for k, v in options.items()}
    return parse_nested(ItemsBody, options, name)


@dataclass(frozen=True)
class Call:
    """What every item action's handler reads of its request besides the path and body."""

    request: Request
    ctx: Any
    api: ApiVersion
    caller: Principal


def _call(request: Request, ctx: Ctx, api: Version, caller: Caller) -> Call:
    return Call(request, ctx, api, caller)


ACall = Annotated[Call, Depends(_call)]


def _act(
    call: Call, where: tuple[str, str, str], body: dict[str, Any], item: str | None = None
) -> Response:
    """Do the body's action on the owner's ``item``, on the items it lists, or on all of them."""
    ctx, caller = call.ctx, call.caller
    session_id, collection, owner_id = where
    restores.browser(ctx, session_id, caller).user(owner_id)  # out of reach: 404 before the body
    name, options = one_action(body, SERVED)
    if name in REFUSED:
        raise InvalidInput(REFUSED[name], name)
    if name not in PUT_BACK and name != SAVE:
        raise InvalidInput(f"'{name}' is not served; served: " + ", ".join(SERVED), "action")
    given = _items_body(options, name)
    if name == SAVE:
        if item is not None:
            return save_one(session_id, owner_id, item, ctx, caller)
        if not given.item_ids():  # the vendor's save of a whole mailbox or OneDrive
            raise InvalidInput(
                "saving a whole mailbox or OneDrive in one request is not served; list its "
                'items and save them by id (items: [{"Id": ...}])',
                "save",
            )
        return save_many(session_id, owner_id, given, ctx, caller)
    ids = [item] if item is not None else given.item_ids()
    kind, elsewhere = KINDS[collection.lower()], PUT_BACK[name]
    return put_back(
        call.request, call.api, session_id, kind, owner_id, ids, ctx, given, elsewhere, caller
    )


def _folder(ctx: Any, caller: Principal, session_id: str, owner_id: str) -> Response:
    restores.browser(ctx, session_id, caller).user(owner_id)
    raise InvalidInput(
        "putting back or saving a folder as a whole is not served; list its items (folderId) "
        "and act on them by id",
        "folder",
    )


def _action_routes(collection: str, items: str) -> None:
    base = f"/RestoreSessions/{{session_id}}/Organization/{collection}/{{owner_id}}"

    def on_owner(session_id: str, owner_id: str, body: dict[str, Any], call: ACall) -> Response:
        return _act(call, (session_id, collection, owner_id), body)

    def on_item(
        session_id: str, owner_id: str, item: str, body: dict[str, Any], call: ACall
    ) -> Response:
        return _act(call, (session_id, collection, owner_id), body, item)

    def on_folder(
        session_id: str, owner_id: str, folder: str, ctx: Ctx, caller: Caller
    ) -> Response:
        return _folder(ctx, caller, session_id, owner_id)

    router.post(f"{base}/Action", until=LAST)(on_owner)
    router.post(f"{base}/{items}/Action", until=LAST)(on_owner)
    router.post(f"{base}/{items}/{{item}}/Action", until=LAST)(on_item)
    router.post(f"{base}/Folders/{{folder}}/Action", until=LAST)(on_folder)


_action_routes("Mailboxes", "Items")
_action_routes("OneDrives", "Documents")
