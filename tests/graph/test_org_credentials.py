"""Office365 credentials: every refusal is a 400 naming the property and quoting the login
service (never the secret), nothing is stored by a refused request, secrets are write-only (not
in a response, the catalog file, its WAL or a log line; a 0600 vault file, gone with the
organization), a PUT that changes them is checked first, basic authentication is refused."""

from __future__ import annotations

import logging
import stat
from typing import Any

import pytest

from tests.graph.org_fixtures import (
    DOMAIN,
    PFX_PASSWORD,
    SECRET,
    OrgEnv,
    _org_fake,
    _org_server,
    catalog_bytes,
    org_body,
    org_env,
    pfx_of,
    settings,
    sqlite_text,
    tenant_with_users,
)

__all__ = ["_org_fake", "_org_server", "org_env"]


def _refused(env: OrgEnv, body: dict[str, Any], version: int = 8) -> tuple[str, str]:
    before = env.api.rows(f"/v{version}/Organizations")
    kept = sorted((env.data_dir / "secrets").glob("organization-*"))
    answer = env.api.post(f"/v{version}/Organizations", body)
    assert answer.status_code == 400, answer.text
    assert env.api.rows(f"/v{version}/Organizations") == before  # a refusal changes nothing
    assert sorted((env.data_dir / "secrets").glob("organization-*")) == kept
    error = answer.json()
    assert SECRET not in answer.text and PFX_PASSWORD not in answer.text
    return error["message"], error.get("errorCode", "")


def test_a_wrong_secret_names_applicationsecret_with_the_aadsts_text(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant, secret="the-right-one")
    message, code = _refused(org_env, org_body(app))
    assert message.startswith("exchangeOnlineSettings.applicationSecret: ")
    assert "AADSTS7000215" in message and "the-right-one" not in message
    assert code == "ParameterValidationFailure"


def test_an_unknown_application_names_applicationid(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    other = org_env.fake.state.add_app(org_env.fake.state.add_tenant("other.onmicrosoft.com"))
    app.client_id, real = other.client_id, app.client_id  # an id registered in another tenant
    message, _ = _refused(org_env, org_body(app))
    app.client_id = real
    assert message.startswith("exchangeOnlineSettings.applicationId: ")
    assert "AADSTS700016" in message


def test_a_wrong_certificate_password_or_an_unreadable_pfx_names_the_certificate(
    org_env: OrgEnv,
) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant)
    _, pfx = pfx_of(app)
    for credential in (
        {"applicationCertificate": pfx, "applicationCertificatePassword": "wrong"},
        {"applicationCertificate": "bm90IGEgcGZ4", "applicationCertificatePassword": "x"},
        {"applicationCertificate": "%%% not base64", "applicationCertificatePassword": "x"},
    ):
        message, _ = _refused(org_env, org_body(app, **credential))
        assert message.startswith("exchangeOnlineSettings.applicationCertificate: "), message


def test_a_certificate_the_application_does_not_know_is_refused_by_the_login_service(
    org_env: OrgEnv,
) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant)
    _, pfx = pfx_of(None)  # never registered
    body = org_body(app, applicationCertificate=pfx, applicationCertificatePassword=PFX_PASSWORD)
    message, _ = _refused(org_env, body)
    assert message.startswith("exchangeOnlineSettings.applicationCertificate: "), message
    assert "AADSTS" in message


def test_an_unknown_tenant_names_the_organization_name(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    message, _ = _refused(org_env, org_body(app, "nowhere.onmicrosoft.com"))
    assert message.startswith("exchangeOnlineSettings.officeOrganizationName: "), message


def test_an_application_without_directory_permission_is_refused(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant, secret=SECRET, roles=frozenset({"Mail.Read"}))
    message, _ = _refused(org_env, org_body(app))
    assert message.startswith("exchangeOnlineSettings.applicationId: ")
    assert "403 Authorization_RequestDenied" in message and "Organization.Read.All" in message


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"useApplicationOnlyAuth": False}, "exchangeOnlineSettings.useApplicationOnlyAuth"),
        ({"account": "admin@contoso.com", "password": "p"}, "exchangeOnlineSettings.account"),
        ({"applicationId": "not-a-uuid"}, "exchangeOnlineSettings.applicationId"),
        ({"officeOrganizationName": "bad name!"}, "exchangeOnlineSettings.officeOrganizationName"),
        ({"applicationCertificate": "eA=="}, "exchangeOnlineSettings.applicationSecret"),
        ({"applicationSecret": None}, "exchangeOnlineSettings.applicationCertificate"),
        ({"applicationSecret": 5}, "exchangeOnlineSettings.applicationSecret"),
    ],
)
def test_bad_settings_are_refused_naming_the_property(
    org_env: OrgEnv, change: dict[str, Any], where: str
) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    body = org_body(app)
    body["exchangeOnlineSettings"] |= change
    body.pop("sharePointOnlineSettings")
    message, _ = _refused(org_env, body)
    assert message.startswith(f"{where}: "), message


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"configureApplication": True}, "configureApplication"),
        ({"newApplicationName": "backup"}, "newApplicationName"),
        (
            {"exchangeOnlineSettings": None, "sharePointOnlineSettings": None},
            "exchangeOnlineSettings",
        ),
        ({"isExchangeOnline": False, "isSharePointOnline": False}, "isExchangeOnline"),
        ({"region": "Mars"}, "region"),
    ],
)
def test_bad_organization_properties_are_refused(
    org_env: OrgEnv, change: dict[str, Any], where: str
) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    message, _ = _refused(org_env, org_body(app) | change)
    assert message.startswith(f"{where}: "), message


def test_two_services_naming_different_applications_are_refused(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    other = org_env.fake.state.add_app(tenant, secret=SECRET)
    body = org_body(app)
    body["sharePointOnlineSettings"] = settings(other)
    message, _ = _refused(org_env, body)
    assert message.startswith("sharePointOnlineSettings.applicationId: ")


def test_secrets_are_write_only_and_kept_only_in_the_vault(
    org_env: OrgEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = tenant_with_users(org_env.fake, 2)
    app = org_env.fake.state.add_app(tenant)
    _, pfx = pfx_of(app)
    body = org_body(app, applicationCertificate=pfx, applicationCertificatePassword=PFX_PASSWORD)
    created = org_env.api.post("/v8/Organizations", body)
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    for version in (6, 7, 8):
        for answer in (
            org_env.api.get(f"/v{version}/Organizations/{org_id}"),
            org_env.api.get(f"/v{version}/Organizations"),
        ):
            assert pfx[:40] not in answer.text and PFX_PASSWORD not in answer.text
    vault_file = org_env.data_dir / "secrets" / f"organization-{org_id}"
    assert stat.S_IMODE(vault_file.stat().st_mode) == 0o600
    assert PFX_PASSWORD.encode() in vault_file.read_bytes()
    stored = catalog_bytes(org_env.data_dir)
    for secret in (PFX_PASSWORD, pfx[:64], pfx[-64:], SECRET):
        assert secret.encode() not in stored
        assert secret not in sqlite_text(org_env.data_dir)
        assert secret not in caplog.text
    assert org_env.api.delete(f"/v8/Organizations/{org_id}").status_code == 204
    assert not vault_file.exists()


def test_a_put_changing_the_secret_is_checked_and_a_refusal_keeps_the_old_one(
    org_env: OrgEnv,
) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    org = org_env.api.post("/v8/Organizations", org_body(app)).json()
    vault_file = org_env.data_dir / "secrets" / f"organization-{org['id']}"
    kept = vault_file.read_bytes()
    wrong = {"exchangeOnlineSettings": settings(app, applicationSecret="wrong-one")}
    answer = org_env.api.put(f"/v8/Organizations/{org['id']}", wrong)
    assert answer.status_code == 400 and "AADSTS7000215" in answer.text
    assert vault_file.read_bytes() == kept
    app.secrets.append("rotated-secret")
    rotated = {"exchangeOnlineSettings": settings(app, applicationSecret="rotated-secret")}
    assert org_env.api.put(f"/v8/Organizations/{org['id']}", rotated).status_code == 204
    assert b"rotated-secret" in vault_file.read_bytes()
    # an edit of other properties keeps the secret and asks the login service nothing
    issued = org_env.fake.state.tokens_issued
    answer = org_env.api.put(f"/v8/Organizations/{org['id']}", {"description": "sales"})
    assert answer.status_code == 204, answer.text
    assert org_env.fake.state.tokens_issued == issued
    assert b"rotated-secret" in vault_file.read_bytes()
    assert org_env.api.get(f"/v8/Organizations/{org['id']}").json()["description"] == "sales"


def test_a_put_naming_another_tenant_is_refused(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    org = org_env.api.post("/v8/Organizations", org_body(app)).json()
    other_tenant = tenant_with_users(org_env.fake, 1, "fabrikam.onmicrosoft.com")
    other = org_env.fake.state.add_app(other_tenant, secret=SECRET)
    body = {"exchangeOnlineSettings": settings(other, "fabrikam.onmicrosoft.com")}
    answer = org_env.api.put(f"/v8/Organizations/{org['id']}", body)
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("exchangeOnlineSettings.officeOrganizationName: ")
    assert org_env.api.get(f"/v8/Organizations/{org['id']}").json()["msid"] == tenant.id
    assert DOMAIN in org_env.api.get(f"/v8/Organizations/{org['id']}").text


def test_what_get_shows_can_be_put_back_unchanged(org_env: OrgEnv) -> None:
    tenant = tenant_with_users(org_env.fake, 1)
    app = org_env.fake.state.add_app(tenant)
    _, pfx = pfx_of(app)
    body = org_body(app, applicationCertificate=pfx, applicationCertificatePassword=PFX_PASSWORD)
    org = org_env.api.post("/v8/Organizations", body).json()
    shown = org_env.api.get(f"/v8/Organizations/{org['id']}").json()
    answer = org_env.api.put(f"/v8/Organizations/{org['id']}", shown)
    assert answer.status_code == 204, answer.text
    assert org_env.api.get(f"/v8/Organizations/{org['id']}").json() == shown
    thumbprint_only = org_body(app, applicationCertificateThumbprint="AB" * 20)
    message, _ = _refused(org_env, thumbprint_only)
    assert message.startswith("exchangeOnlineSettings.applicationCertificate: ")
    assert "thumbprint" in message
