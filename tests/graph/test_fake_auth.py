"""The fake's token endpoint and bearer checks refuse what Entra and Graph refuse."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keepstone.clock import ManualClock
from tests.graph.fake_client import aadsts, bearer, client, graph_code, request_token
from tests.graph_fake.credentials import assertion_claims, make_app_certificate, make_assertion
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import RegisteredApp, Tenant

SECRET = "correct-secret~value"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def tenant(graph_fake: FakeGraph) -> Tenant:
    return graph_fake.state.add_tenant("contoso.onmicrosoft.com")


@pytest.fixture
def app(graph_fake: FakeGraph, tenant: Tenant) -> RegisteredApp:
    return graph_fake.state.add_app(tenant, secret=SECRET)


def _clock(fake: FakeGraph) -> ManualClock:
    clock = fake.state.clock
    assert isinstance(clock, ManualClock)
    return clock


def test_secret_grant_issues_a_bearer_token(graph_fake: FakeGraph, app: RegisteredApp) -> None:
    with client(graph_fake) as http:
        for tenant_name in (app.tenant_id, "CONTOSO.onmicrosoft.com"):
            answer = request_token(http, graph_fake, tenant_name, app, client_secret=SECRET)
            assert answer.status_code == 200
            body = answer.json()
            assert body["token_type"] == "Bearer" and body["expires_in"] == 3599
            organization = http.get(
                f"{graph_fake.graph_url}/v1.0/organization",
                headers={"Authorization": f"Bearer {body['access_token']}"},
            )
            assert organization.json()["value"][0]["id"] == app.tenant_id


def test_wrong_secret_unknown_app_unknown_tenant_are_refused(
    graph_fake: FakeGraph, app: RegisteredApp, tenant: Tenant
) -> None:
    other = graph_fake.state.add_tenant("fabrikam.onmicrosoft.com")
    with client(graph_fake) as http:
        wrong = request_token(http, graph_fake, tenant.id, app, client_secret="nope")
        assert aadsts(wrong) == (401, "invalid_client", 7000215)
        foreign = request_token(http, graph_fake, other.id, app, client_secret=SECRET)
        assert aadsts(foreign) == (400, "unauthorized_client", 700016)
        missing = request_token(http, graph_fake, "nowhere.example", app, client_secret=SECRET)
        assert aadsts(missing) == (400, "invalid_request", 90002)
        none = request_token(http, graph_fake, tenant.id, app)
        assert aadsts(none) == (401, "invalid_client", 7000218)
        scope = request_token(
            http, graph_fake, tenant.id, app, client_secret=SECRET, scope="User.Read"
        )
        assert aadsts(scope) == (400, "invalid_scope", 70011)
        grant = request_token(
            http, graph_fake, tenant.id, app, client_secret=SECRET, grant_type="password"
        )
        assert aadsts(grant) == (400, "unsupported_grant_type", 70003)


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_certificate_assertion_checks(graph_fake: FakeGraph, tenant: Tenant, alg: str) -> None:
    key, cert = make_app_certificate()
    app = graph_fake.state.add_app(tenant, certificate=cert)
    audience = f"{graph_fake.login_url}/{tenant.id}/oauth2/v2.0/token"
    now = graph_fake.state.now_ts()

    def ask(assertion: str) -> tuple[int, str, int] | int:
        with client(graph_fake) as http:
            answer = request_token(
                http,
                graph_fake,
                tenant.id,
                app,
                client_assertion=assertion,
                client_assertion_type=JWT_BEARER,
            )
        return answer.status_code if answer.status_code == 200 else aadsts(answer)

    good = assertion_claims(app.client_id, audience, now)
    assert ask(make_assertion(key, cert, good, alg)) == 200
    real_aud = assertion_claims(
        app.client_id, f"https://login.microsoftonline.com/{tenant.id}/oauth2/v2.0/token", now
    )
    assert ask(make_assertion(key, cert, real_aud, alg)) == 200
    other_key, other_cert = make_app_certificate()
    assert ask(make_assertion(other_key, other_cert, good, alg)) == (401, "invalid_client", 700027)
    forged = make_assertion(other_key, cert, good, alg)  # right thumbprint, wrong key
    assert ask(forged) == (401, "invalid_client", 700027)
    tampered = make_assertion(key, cert, good, alg).split(".")
    tampered[1] = make_assertion(key, cert, good | {"exp": now + 99999}, alg).split(".")[1]
    assert ask(".".join(tampered)) == (401, "invalid_client", 700027)
    wrong_aud = good | {"aud": f"{graph_fake.login_url}/common/oauth2/v2.0/token"}
    assert ask(make_assertion(key, cert, wrong_aud, alg)) == (401, "invalid_client", 700023)
    wrong_sub = good | {"sub": "someone-else"}
    assert ask(make_assertion(key, cert, wrong_sub, alg)) == (401, "invalid_client", 700021)
    expired = assertion_claims(app.client_id, audience, now - 3600)
    assert ask(make_assertion(key, cert, expired, alg)) == (401, "invalid_client", 700024)
    future = assertion_claims(app.client_id, audience, now + 3600)
    assert ask(make_assertion(key, cert, future, alg)) == (401, "invalid_client", 700024)
    assert ask("not-a-jwt") == (401, "invalid_client", 50027)


def test_graph_refuses_missing_forged_and_expired_tokens(
    graph_fake: FakeGraph, app: RegisteredApp
) -> None:
    url = f"{graph_fake.graph_url}/v1.0/users"
    with client(graph_fake) as http:
        headers = bearer(http, graph_fake, app, SECRET)
        assert http.get(url, headers=headers).status_code == 200
        missing = http.get(url)
        assert graph_code(missing) == (401, "InvalidAuthenticationToken")
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        token = headers["Authorization"].removeprefix("Bearer ")
        head, claims, signature = token.split(".")
        forged = {"Authorization": f"Bearer {head}.{claims}.{signature[:-4]}AAAA"}
        assert graph_code(http.get(url, headers=forged)) == (401, "InvalidAuthenticationToken")
        garbage = {"Authorization": "Bearer garbage"}
        assert graph_code(http.get(url, headers=garbage)) == (401, "InvalidAuthenticationToken")
        _clock(graph_fake).advance(timedelta(seconds=3598))
        assert http.get(url, headers=headers).status_code == 200
        _clock(graph_fake).advance(timedelta(seconds=2))
        expired = http.get(url, headers=headers)
        assert graph_code(expired) == (401, "InvalidAuthenticationToken")
        assert "expired" in expired.json()["error"]["message"]


def test_a_token_sees_only_its_own_tenant(graph_fake: FakeGraph, app: RegisteredApp) -> None:
    state = graph_fake.state
    other = state.add_tenant("fabrikam.onmicrosoft.com")
    stranger = state.add_user(other, "stranger")
    with client(graph_fake) as http:
        headers = bearer(http, graph_fake, app, SECRET)
        found = http.get(f"{graph_fake.graph_url}/v1.0/users/{stranger.id}", headers=headers)
        assert graph_code(found) == (404, "Request_ResourceNotFound")
        # A token whose tenant has gone (the tenant removed its app) is refused outright.
        with state.lock:
            del state.apps[app.client_id]
        gone = http.get(f"{graph_fake.graph_url}/v1.0/organization", headers=headers)
        assert graph_code(gone) == (401, "InvalidAuthenticationToken")


def test_missing_permission_is_403(graph_fake: FakeGraph, tenant: Tenant) -> None:
    app = graph_fake.state.add_app(tenant, secret=SECRET, roles=frozenset({"Mail.Read"}))
    with client(graph_fake) as http:
        headers = bearer(http, graph_fake, app, SECRET)
        answer = http.get(f"{graph_fake.graph_url}/v1.0/users", headers=headers)
        assert graph_code(answer) == (403, "Authorization_RequestDenied")


def test_login_and_graph_are_separate_hosts(graph_fake: FakeGraph, app: RegisteredApp) -> None:
    with client(graph_fake) as http:
        assert http.get(f"{graph_fake.login_url}/v1.0/organization").status_code == 404
        discovery = http.get(
            f"{graph_fake.login_url}/{app.tenant_id}/v2.0/.well-known/openid-configuration"
        )
        assert discovery.json()["token_endpoint"] == (
            f"{graph_fake.login_url}/{app.tenant_id}/oauth2/v2.0/token"
        )
