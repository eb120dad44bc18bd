"""Discovery and logon: ``/api/`` (the EnterpriseManager entry point) and logon sessions."""

import base64
import binascii

from fastapi import APIRouter, Request
from lxml import etree
from starlette.responses import Response

from keepstone.api import public_url
from keepstone.api.em.deps import (
    SESSION_HEADER,
    LoggedOn,
    Who,
    answer,
    base_of,
    ctx_of,
    origin_of,
    presented_token,
)
from keepstone.api.em.directory import LOGON_SESSION_LINKS
from keepstone.api.em.hypermedia import Link, links_of
from keepstone.api.em.xml import child, element, links
from keepstone.domain.errors import BadCredentials, InvalidInput, Unauthenticated
from keepstone.services import auth

router = APIRouter(prefix="/api")


VERSIONS = ("v1_1", "v1_2", "v1_3", "v1_4", "v1_5", "v1_6", "v1_7")


# ---- discovery and logon ----------------------------------------------------------------------


@router.get("/")
def enterprise_manager(request: Request) -> Response:
    base = base_of(request)
    versions = element(
        "SupportedVersions",
        None,
        *(
            element(
                "SupportedVersion",
                {"Name": v},
                links(("Create", f"{base}/sessionMngr/?v={v}", "LogonSession")),
            )
            for v in VERSIONS
        ),
    )
    document = element(
        "EnterpriseManager",
        {"Href": f"{base}/", "Type": "EnterpriseManager"},
        links(
            ("Down", f"{base}/logonSessions", "LogonSessionList"),
            ("Create", f"{base}/sessionMngr/?v=latest", "LogonSession"),
        ),
        versions,
    )
    return answer(request, document)


@router.post("/sessionMngr/")
def log_on(request: Request, v: str = "latest") -> Response:
    if v != "latest" and v not in VERSIONS:
        raise InvalidInput(
            f"API version '{v}' is not supported; use latest or one of " + ", ".join(VERSIONS), "v"
        )
    name, password = _basic_credentials(request)
    guard = request.app.state.login_guard
    try:
        logon = auth.start_logon(ctx_of(request), guard, name, password, origin_of(request))
    except BadCredentials:
        raise Unauthenticated("the user name or password is incorrect") from None
    request.state.user_name = logon.principal.user_name
    base = base_of(request)
    headers = {
        SESSION_HEADER: logon.token,
        "Location": f"{base}/logonSessions/{logon.key}",
        "Set-Cookie": session_cookie(request, logon.token),
    }
    return answer(request, logon_session(base, logon.key, logon.principal.user_name), 201, headers)


def session_cookie(request: Request, token: str) -> str:
    """The logon session's cookie: never readable by scripts nor sent cross-site, and over HTTPS
    never sent over plain HTTP."""
    secure = "; Secure" if public_url.is_secure(request) else ""
    return f"{SESSION_HEADER}={token}; Path=/api; HttpOnly; SameSite=Strict{secure}"


def _basic_credentials(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        name, found, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        found = ""
    if scheme.lower() != "basic" or not found:
        raise Unauthenticated("log on with HTTP Basic authentication")
    return name, password


def logon_session(base: str, session_id: str, user: str) -> etree._Element:
    """loginsessions.html: the vendor's links, in its order (see ``directory``)."""
    href = f"{base}/logonSessions/{session_id}"
    return element(
        "LogonSession",
        {"Href": href, "Type": "LogonSession"},
        links_of(
            *(
                Link(rel, f"{base}/{path.replace('{session}', session_id)}", kind, name)
                for rel, path, kind, name in LOGON_SESSION_LINKS
            )
        ),
        child("UserName", user),
        child("SessionId", session_id),
    )


@router.get("/logonSessions")
def list_logon_sessions(request: Request, who: Who) -> Response:
    """The live logon sessions: the caller's own, or everyone's for an administrator. The
    caller's session shows the ``SessionId`` it was given; any other, its row id (a session's
    ``SessionId`` is a credential: ``auth.logon_token``)."""
    found = auth.list_logons(ctx_of(request), who.principal)
    own = _own_key(request)
    return answer(
        request,
        element(
            "LogonSessions",
            None,
            *(
                logon_session(
                    who.base,
                    own if own and session.id == who.logon_session_id else session.id,
                    name,
                )
                for session, name in found
            ),
        ),
    )


@router.get("/logonSessions/{session_id}")
def get_logon_session(session_id: str, request: Request, who: Who) -> Response:
    """One logon session, by the ``SessionId`` its holder was given or by its row id."""
    _, user_name = auth.get_logon(ctx_of(request), session_id, who.principal)
    return answer(request, logon_session(who.base, session_id, user_name))


def _own_key(request: Request) -> str | None:
    token = presented_token(request)
    return None if token is None else auth.logon_key(token)


@router.delete("/logonSessions/{session_id}", status_code=204)
def log_off(session_id: str, request: Request, who: LoggedOn) -> Response:
    auth.end_logon(ctx_of(request), session_id, who.principal, origin_of(request))
    return Response(status_code=204)
