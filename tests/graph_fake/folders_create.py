"""Creating mail folders: `POST /users/{id}/mailFolders` (under the root, `msgfolderroot`) and
`POST …/mailFolders/{id}/childFolders`.

The body is `{"displayName": …, "isHidden": …}` and nothing else; a name already used under the
same parent (compared case-insensitively, as Exchange does) is `409 ErrorFolderExists`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.graph_fake.access_tokens import Caller
from tests.graph_fake.errors import graph_error
from tests.graph_fake.graph_auth import fake_of, graph_route
from tests.graph_fake.mail import NotFound, folder_of, mailbox_of, refusal_response
from tests.graph_fake.mailbox import Mailbox, MailFolder

FOLDER_INPUT = frozenset({"displayName", "isHidden", "@odata.type"})
MAX_NAME = 255


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Refused(400, "RequestBodyRead", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise Refused(400, "RequestBodyRead", "The request body must be a JSON object.")
    for name in body:
        if name not in FOLDER_INPUT:
            raise Refused(
                400,
                "RequestBodyRead",
                f"The property '{name}' does not exist on type 'microsoft.graph.mailFolder'.",
            )
    name = body.get("displayName")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise Refused(400, "ErrorInvalidParameter", "displayName must be 1-255 characters.")
    if not isinstance(body.get("isHidden", False), bool):
        raise Refused(400, "RequestBodyRead", "isHidden must be a boolean.")
    return body


def _create(mailbox: Mailbox, parent: MailFolder, body: dict[str, Any]) -> MailFolder:
    name = str(body["displayName"])
    taken = {f.display_name.lower() for f in mailbox.children(parent.id, hidden=True)}
    if name.lower() in taken:
        raise Refused(409, "ErrorFolderExists", "A folder with the specified name already exists.")
    return mailbox.add_folder(name, parent, hidden=bool(body.get("isHidden", False)))


async def _post(request: Request, caller: Caller, parent_key: str | None) -> Response:
    state = fake_of(request)
    raw = await request.body()
    try:
        body = _body(raw)
        with state.lock:
            mailbox = mailbox_of(state, caller, request.path_params["user"])
            parent = folder_of(mailbox, parent_key) if parent_key else mailbox.root
            made = _create(mailbox, parent, body).to_json(mailbox)
    except NotFound as exc:
        return refusal_response(exc, state)
    except Refused as exc:
        return graph_error(exc.status, exc.code, exc.message, state.clock.now())
    return JSONResponse(made, status_code=201)


@graph_route("Mail.ReadWrite")
async def create_top_folder(request: Request, caller: Caller) -> Response:
    return await _post(request, caller, None)


@graph_route("Mail.ReadWrite")
async def create_child_folder(request: Request, caller: Caller) -> Response:
    return await _post(request, caller, request.path_params["folder"])
