"""Test helpers for talking to the fake: an httpx client trusting its CA, and token requests."""

from __future__ import annotations

import ssl
from datetime import timedelta
from typing import Any

import httpx

from keepstone.clock import ManualClock
from tests.graph_fake.server import FakeGraph
from tests.graph_fake.state import RegisteredApp

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def client(fake: FakeGraph) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=fake.ca_pem), timeout=30.0)


def request_token(
    http: httpx.Client, fake: FakeGraph, tenant: str, app: RegisteredApp, **credential: str
) -> httpx.Response:
    form: dict[str, Any] = {
        "grant_type": "client_credentials",
        "client_id": app.client_id,
        "scope": GRAPH_SCOPE,
    } | credential
    return http.post(f"{fake.login_url}/{tenant}/oauth2/v2.0/token", data=form)


def bearer(http: httpx.Client, fake: FakeGraph, app: RegisteredApp, secret: str) -> dict[str, str]:
    answer = request_token(http, fake, app.tenant_id, app, client_secret=secret)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def advance(fake: FakeGraph, seconds: int) -> None:
    """Move the fake's clock (tests drive time rather than sleep)."""
    clock = fake.state.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(seconds=seconds))


def aadsts(answer: httpx.Response) -> tuple[int, str, int]:
    body = answer.json()
    assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}: ")
    return answer.status_code, body["error"], body["error_codes"][0]


def graph_code(answer: httpx.Response) -> tuple[int, str]:
    error = answer.json()["error"]
    assert set(error["innerError"]) >= {"request-id", "date"}
    return answer.status_code, error["code"]
