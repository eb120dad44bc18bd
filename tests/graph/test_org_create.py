"""Office365 organizations through the API against the fake Graph over HTTPS: created with a
secret or a certificate (the credentials checked with a token and `GET /organization`), named
from the tenant, answered 200 in v6/v7 and 201 in v8, the first sync run, the users listed."""

from __future__ import annotations

import pytest

from keepstone.services import m365_settings
from tests.graph.org_fixtures import (
    DOMAIN,
    SECRET,
    OrgEnv,
    _org_fake,
    _org_server,
    org_body,
    org_env,
    pfx_of,
    tenant_with_users,
)

__all__ = ["_org_fake", "_org_server", "org_env"]


@pytest.mark.parametrize("version", [6, 7, 8])
def test_a_secret_creates_the_organization_named_from_the_tenant(
    org_env: OrgEnv, version: int
) -> None:
    tenant = tenant_with_users(org_env.fake, 3)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    answer = org_env.api.post(f"/v{version}/Organizations", org_body(app))
    assert answer.status_code == (201 if version == 8 else 200), answer.text
    org = answer.json()
    assert (org["type"], org["name"], org["officeName"]) == ("Office365", DOMAIN, DOMAIN)
    assert org["exchangeOnlineSettings"]["applicationId"] == app.client_id
    assert org.get("msid") == (tenant.id if version == 8 else None)
    users = org_env.api.rows(f"/v{version}/Organizations/{org['id']}/Users")
    assert sorted(u["name"] for u in users) == [f"user{n:03}@{DOMAIN}" for n in range(3)]
    assert all(u["id"].endswith("00000000-0000-0000-0000-000000000000") for u in users)


def test_a_certificate_creates_the_organization_and_access_of_reaches_graph(
    org_env: OrgEnv,
) -> None:
    tenant = tenant_with_users(org_env.fake, 2)
    app = org_env.fake.state.add_app(tenant)
    _certificate, pfx = pfx_of(app)
    body = org_body(
        app,
        applicationCertificate=pfx,
        applicationCertificatePassword="pfx-pass-Kk3-not-in-any-file",
    )
    answer = org_env.api.post("/v8/Organizations", body)
    assert answer.status_code == 201, answer.text
    org = answer.json()
    thumbprint = org["exchangeOnlineSettings"]["applicationCertificateThumbprint"]
    assert len(thumbprint) == 40
    from keepstone.services import catalog

    row = catalog.get_organization(org_env.ctx, org["id"])
    users = m365_settings.graph_users(org_env.ctx, row)
    assert [u.name for u in users] == [f"user{n:03}@{DOMAIN}" for n in range(2)]
    assert all(u.has_mailbox and u.has_onedrive and u.kind == "User" for u in users)
    with m365_settings.access_of(org_env.ctx, row).client() as client:
        me = client.get_json(f"/v1.0/users/{users[0].graph_id}")
    assert me["userPrincipalName"] == users[0].name
