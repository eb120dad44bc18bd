"""``POST /v2/Token``: the OAuth2-style password and refresh-token grants."""

from collections.abc import Iterable
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from keepstone.api import inputs
from keepstone.api.client_address import client_address
from keepstone.api.plumbing import plain
from keepstone.api.vb365.deps import bearer_token, json
from keepstone.api.vb365.versions import Version, VersionedRouter, iso
from keepstone.domain.errors import InvalidInput
from keepstone.services import auth
from keepstone.services.audit import Origin
from keepstone.services.context import Context

router = VersionedRouter()


@router.post("/Token", summary="Log in (password grant) or refresh a token pair")
async def token(request: Request) -> Response:
    """Password logins pass the login guard (429 with Retry-After while a user name must wait,
    503 with Retry-After when too many passwords are being verified); refresh tokens are long
    random values nobody can guess, so refreshing is not throttled."""
    fields = _fields(await request.body(), request.headers.get("content-type", ""))
    grant = (fields.get("grant_type") or "password").lower()
    ctx: Context = request.app.state.ctx
    origin = Origin(client_address(request), "vb365")
    if grant == "password":
        issued = await run_in_threadpool(
            auth.login,
            ctx,
            request.app.state.login_guard,
            _required(fields, "username"),
            _required(fields, "password"),
            origin,
        )
    elif grant == "refresh_token":
        issued = await run_in_threadpool(
            auth.refresh, ctx, _required(fields, "refresh_token"), origin
        )
    else:
        raise InvalidInput(
            f"grant_type '{grant}' is not supported; use password or refresh_token", "grant_type"
        )
    request.state.user_name = issued.user_name
    return json(
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "userName": issued.user_name,
            ".issued": iso(issued.issued),
            ".expires": iso(issued.expires),
        }
    )


def _fields(body: bytes, content_type: str) -> dict[str, str]:
    """Form-encoded (the vendor's documented form) or JSON; names are case-insensitive."""
    items: Iterable[tuple[Any, Any]]
    if "json" in content_type.lower() or body.lstrip().startswith(b"{"):
        try:
            raw = inputs.load_json(body)
        except ValueError:
            raise InvalidInput("request body is not valid JSON") from None
        if not isinstance(raw, dict):
            raise InvalidInput("request body must be a JSON object")
        items = raw.items()
    else:
        items = inputs.fields(body, "form field")
    return {str(k).lower(): "" if v is None else str(v) for k, v in items}


def _required(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "")
    if not value:
        raise InvalidInput(f"{name} is required", name)
    return value


@router.post("/Token/logout", since=7, summary="Revoke the tokens of this request's login")
def logout(request: Request, api: Version) -> Response:
    """Ends the caller's login: the access token sent with this request, its refresh token and
    every token rotated from the same login stop working. Any authenticated user may log out,
    ReadOnly ones included (it changes nothing but their own tokens)."""
    origin = Origin(client_address(request), "vb365")
    auth.log_out(request.app.state.ctx, bearer_token(request), origin)
    return plain(204 if api.at_least(8) else 200)
