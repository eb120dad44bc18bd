"""Who is using the console: a login with a session cookie, and a CSRF token for every change.

A console login is an Enterprise Manager logon session (``services.auth.start_logon``): the same
users, roles, login guard and audit entries as both API dialects, kept server-side in the
catalog, ending after 15 idle minutes and at most 8 hours after login, and ended by logout, a
password change or ``revoke-tokens``. The cookie holds the session's random token only
(``HttpOnly``, ``SameSite=Strict``, ``Secure`` whenever clients reach the server over HTTPS).

Every change is a POST carrying a CSRF token (a form field, or htmx's ``X-CSRF-Token``
header): an HMAC of the session token, so it needs no storage, differs per session and cannot
be computed by a page that cannot read the cookie. The login form, before any session, is
protected the same way by a random cookie it must echo (a login CSRF would log the victim into
the attacker's account).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keepstone.api.client_address import client_address
from keepstone.api.public_url import is_secure
from keepstone.domain.errors import Forbidden, Unauthenticated
from keepstone.services import auth
from keepstone.services.audit import Origin
from keepstone.services.context import Context

SESSION_COOKIE = "keepstone_console"
LOGIN_COOKIE = "keepstone_login"  # the login form's own CSRF secret
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
DIALECT = "console"  # how audit entries name where a console action came from


@dataclass(frozen=True, slots=True)
class WebSession:
    principal: auth.Principal
    session_id: str
    csrf: str


class LoginRequired(Exception):
    """No live console session: the browser goes to the login page (``why``: shown there)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def origin(request: Request) -> Origin:
    return Origin(client_address(request), DIALECT)


def csrf_of(token: str) -> str:
    return hmac.new(token.encode(), b"keepstone console csrf", hashlib.sha256).hexdigest()


async def current(request: Request) -> WebSession:
    """The console session of the request's cookie; ``LoginRequired`` without a live one. On the
    event loop: a session the catalog vouched for a moment ago costs no thread hop."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise LoginRequired("")
    ctx: Context = request.app.state.ctx
    try:
        known = auth.cached_logon(ctx, token)
        if known is None:
            known = await run_in_threadpool(auth.resume_logon, ctx, token)
        principal, session_id = known
    except Unauthenticated as error:
        raise LoginRequired(error.message) from None
    request.state.user_name = principal.user_name  # for the access log
    return WebSession(principal, session_id, csrf_of(token))


def check_csrf(request: Request, session: WebSession, form: dict[str, str]) -> None:
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Forbidden("the form's security token is missing or stale; reload the page")


def login_secret(request: Request) -> str:
    """The login form's CSRF secret: the browser's own, or a new one to set."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def check_login_secret(request: Request, form: dict[str, str]) -> None:
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    sent = form.get(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise Forbidden("the login form's security token is missing or stale; reload the page")


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    # No Max-Age: the cookie lasts as long as the browser session; the catalog decides expiry.
    response.set_cookie(
        name, value, httponly=True, samesite="strict", secure=is_secure(request), path="/"
    )


def log_in(request: Request, response: Response, name: str, password: str) -> None:
    ctx: Context = request.app.state.ctx
    logon = auth.start_logon(ctx, request.app.state.login_guard, name, password, origin(request))
    set_cookie(request, response, SESSION_COOKIE, logon.token)
    response.delete_cookie(LOGIN_COOKIE, path="/")


def log_out(request: Request, response: Response, session: WebSession) -> None:
    ctx: Context = request.app.state.ctx
    auth.end_logon(ctx, session.session_id, session.principal, origin(request))
    response.delete_cookie(SESSION_COOKIE, path="/")
