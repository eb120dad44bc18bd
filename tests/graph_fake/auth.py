"""`POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant, secret or certificate.

Refusals follow Entra's codes (graph.md §1.1): unknown tenant AADSTS90002, unknown app
AADSTS700016, wrong secret AADSTS7000215, no credential AADSTS7000218, bad assertion
AADSTS700027/700021/700023/700024, bad scope AADSTS70011, other grants AADSTS70003.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.graph_fake import access_tokens
from tests.graph_fake.assertion import AssertionRefused, accepted_audiences, verify_assertion
from tests.graph_fake.errors import aad_error
from tests.graph_fake.state import FakeState, RegisteredApp, Tenant

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Refusal(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


def _tenant(state: FakeState, name: str) -> Tenant:
    tenant = state.find_tenant(name)
    if tenant is None:
        raise Refusal(
            400,
            "invalid_request",
            90002,
            f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and "
            "are signing into the correct cloud.",
        )
    return tenant


def _app(state: FakeState, tenant: Tenant, client_id: str) -> RegisteredApp:
    with state.lock:
        app = state.apps.get(client_id)
    if app is None or app.tenant_id != tenant.id:
        raise Refusal(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant.domain}'.",
        )
    return app


def _check_form(state: FakeState, form: dict[str, str]) -> None:
    if form.get("grant_type") != "client_credentials":
        raise Refusal(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{form.get('grant_type', '')}'.",
        )
    if not form.get("client_id"):
        raise Refusal(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    valid_scopes = {f"{r.rstrip('/')}/.default" for r in state.graph_resources}
    if form.get("scope") not in valid_scopes:
        raise Refusal(
            400,
            "invalid_scope",
            70011,
            "The provided request must include a 'scope' input parameter. The provided value for "
            f"the input parameter 'scope' is not valid. The scope {form.get('scope', '')} is not "
            "valid.",
        )


def _check_credential(
    state: FakeState, form: dict[str, str], app: RegisteredApp, tenant: Tenant, login_base: str
) -> None:
    if "client_secret" in form:
        offered = form["client_secret"].encode()
        if not any(hmac.compare_digest(offered, s.encode()) for s in app.secrets):
            raise Refusal(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{app.client_id}'.",
            )
        return
    if "client_assertion" in form:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise Refusal(400, "invalid_request", 50027, "Invalid client_assertion_type.")
        try:
            verify_assertion(
                form["client_assertion"],
                app,
                accepted_audiences(login_base, tenant),
                state.now_ts(),
            )
        except AssertionRefused as exc:
            raise Refusal(401, "invalid_client", exc.code, exc.description) from exc
        return
    raise Refusal(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
    )


async def token_endpoint(request: Request) -> Response:
    state: FakeState = request.app.state.fake
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return aad_error(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
            state.clock.now(),
        )
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    form = dict(pairs)
    if len(form) != len(pairs):
        return aad_error(
            400,
            "invalid_request",
            90015,
            "Requested query string is too long or has duplicates.",
            state.clock.now(),
        )
    login_base = str(request.base_url).rstrip("/")
    try:
        tenant = _tenant(state, request.path_params["tenant"])
        _check_form(state, form)
        app = _app(state, tenant, form["client_id"])
        _check_credential(state, form, app, tenant, login_base)
    except Refusal as r:
        return aad_error(r.status, r.error, r.code, r.description, state.clock.now())
    token, lifetime = access_tokens.issue(state, app)
    return JSONResponse(
        {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        },
        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
    )


async def openid_configuration(request: Request) -> Response:
    """The discovery document MSAL reads before it asks for a token (graph.md §1.1)."""
    state: FakeState = request.app.state.fake
    tenant = state.find_tenant(request.path_params["tenant"])
    if tenant is None:
        return aad_error(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{request.path_params['tenant']}' not found.",
            state.clock.now(),
        )
    base = str(request.base_url).rstrip("/")
    segment = request.path_params["tenant"]
    return JSONResponse(
        {
            "token_endpoint": f"{base}/{segment}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/{segment}/oauth2/v2.0/authorize",
            "issuer": f"{base}/{tenant.id}/v2.0",
            "jwks_uri": f"{base}/{tenant.id}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "response_types_supported": ["code", "id_token", "token"],
            "tenant_region_scope": "EU",
        }
    )
