"""Microsoft 365 organizations added and edited in the web console (issue 16 item 2), against
the fake Graph as the API's tests do: the same checks and messages as ``POST``/``PUT
/vN/Organizations``, the application's secret and certificate write-only (never in a page)."""

from __future__ import annotations

import html
from typing import Any

from keepstone.services import catalog, m365_settings
from tests.graph.org_fixtures import (
    DOMAIN,
    PFX_PASSWORD,
    SECRET,
    OrgEnv,
    _org_fake,
    _org_server,
    org_env,
    pfx_of,
    settings,
    tenant_with_users,
)
from tests.test_console import console_login

__all__ = ["_org_fake", "_org_server", "org_env"]


def _form(csrf: str, app_id: str, **changes: str) -> dict[str, str]:
    return {
        "csrf": csrf,
        "type": "Office365",
        "name": "",
        "description": "the tenant",
        "tenant": DOMAIN,
        "applicationId": app_id,
        "credential": "secret",
        "applicationSecret": SECRET,
        "region": "Worldwide",
        "isExchangeOnline": "1",
        "isSharePointOnline": "1",
    } | changes


def _message(env: OrgEnv, body: dict[str, Any], org_id: str | None = None) -> str:
    if org_id is None:
        answer = env.api.post("/v8/Organizations", {"type": "Office365"} | body)
    else:
        answer = env.api.put(f"/v8/Organizations/{org_id}", body)
    assert answer.status_code == 400, answer.text
    message: str = answer.json()["message"]
    return message


def test_an_office365_organization_added_and_edited_in_the_console(org_env: OrgEnv) -> None:
    client = org_env.api.client
    client.cookies.clear()
    csrf = console_login(client)
    tenant = tenant_with_users(org_env.fake, 2)
    app = org_env.fake.state.add_app(tenant, secret=SECRET)
    assert "Microsoft 365" in client.get("/organizations/new").text

    wrong = _form(csrf, app.client_id, applicationSecret="not-the-secret-Qq1")
    refused = client.post("/organizations/new", data=wrong)
    sent = {"exchangeOnlineSettings": settings(app, applicationSecret="not-the-secret-Qq1")}
    assert refused.status_code == 400
    assert html.unescape(refused.text).count(_message(org_env, sent)) == 1
    assert "not-the-secret-Qq1" not in refused.text and f'value="{app.client_id}"' in refused.text
    neither = _form(csrf, app.client_id, isExchangeOnline="", isSharePointOnline="")
    refused = client.post("/organizations/new", data=neither)
    assert refused.status_code == 400
    assert "backs up Exchange Online, SharePoint Online or both" in refused.text
    assert 'name="isExchangeOnline" value="1" checked' not in refused.text  # shown as sent
    assert catalog.list_organizations(org_env.ctx) == []

    added = client.post(
        "/organizations/new", data=_form(csrf, app.client_id), follow_redirects=False
    )
    assert added.status_code == 303, added.text
    org_id = added.headers["location"].rsplit("/", 1)[1]
    body = org_env.api.get(f"/v8/Organizations/{org_id}").json()
    assert (body["type"], body["name"], body["description"]) == ("Office365", DOMAIN, "the tenant")
    assert body["exchangeOnlineSettings"]["applicationId"] == app.client_id
    page = client.get(f"/organizations/{org_id}").text
    assert SECRET not in page and f"user000@{DOMAIN}" in page
    assert f'value="{app.client_id}"' in page

    kept = _form(
        csrf,
        app.client_id,
        name=DOMAIN,
        applicationSecret="",
        description="edited",
        isTeamsOnline="1",
    )
    edited = client.post(f"/organizations/{org_id}", data=kept, follow_redirects=False)
    assert edited.status_code == 303, edited.text
    body = org_env.api.get(f"/v8/Organizations/{org_id}").json()
    assert body["description"] == "edited" and body["isTeamsOnline"] is True
    row = catalog.get_organization(org_env.ctx, org_id)
    assert m365_settings.kept_secrets(org_env.ctx, row) == m365_settings.M365Secrets(SECRET)

    _certificate, pfx = pfx_of(app)
    with_pfx = _form(
        csrf,
        app.client_id,
        name=DOMAIN,
        credential="certificate",
        applicationSecret="",
        applicationCertificate=pfx,
        applicationCertificatePassword="wrong-pfx-password",
    )
    refused = client.post(f"/organizations/{org_id}", data=with_pfx)
    certificate = settings(
        app, applicationCertificate=pfx, applicationCertificatePassword="wrong-pfx-password"
    )
    expected = _message(org_env, {"exchangeOnlineSettings": certificate}, org_id)
    assert refused.status_code == 400 and expected in html.unescape(refused.text)
    assert pfx not in refused.text and "wrong-pfx-password" not in refused.text
    changed = with_pfx | {"applicationCertificatePassword": PFX_PASSWORD}
    assert client.post(f"/organizations/{org_id}", data=changed).status_code == 200
    row = catalog.get_organization(org_env.ctx, org_id)
    assert m365_settings.from_record(row.settings).credential == "certificate"
    page = client.get(f"/organizations/{org_id}").text
    assert pfx not in page and PFX_PASSWORD not in page and SECRET not in page
    client.cookies.clear()
