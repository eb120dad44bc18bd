"""Every error of the JSON dialect has a ``{"message"}`` body; a 500 never shows a stack trace."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.services import jobs
from tests.conftest import Api


def test_unhandled_exception_is_a_generic_500_with_request_id(
    client: TestClient, api: Api, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(jobs, "page_jobs", explode)  # what /v2/Jobs lists through
    unsafe = TestClient(client.app, raise_server_exceptions=False, base_url=str(client.base_url))
    response = unsafe.get("/v2/Jobs", headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 500
    body = response.json()
    request_id = response.headers["x-request-id"]
    assert body == {
        "message": f"Internal server error; quote request id {request_id} when reporting it"
    }
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    monkeypatch.undo()
    assert api.get("/v2/Jobs").status_code == 200  # the server stays up


def test_every_response_has_a_request_id(client: TestClient, api: Api) -> None:
    first, second = api.get("/v2/Jobs"), client.get("/v2/Jobs")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    echoed = api.get("/v2/Jobs", headers={"X-Request-Id": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"
    hostile = api.get("/v2/Jobs", headers={"X-Request-Id": "bad id\x7f<script>"})
    assert hostile.headers["x-request-id"] != "bad id\x7f<script>"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/NoSuchThing", 404),
        ("GET", "/v9/Jobs", 404),
        ("DELETE", "/v2/Jobs", 405),
        ("PATCH", "/v2/Proxies", 405),
    ],
)
def test_routing_errors_use_the_error_body(api: Api, method: str, path: str, status: int) -> None:
    response = api.client.request(method, path, headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["message"]


def test_bad_query_parameters(api: Api) -> None:
    response = api.get("/v2/JobSessions?offset=-1")
    assert response.status_code == 400
    assert "offset" in response.json()["message"]


def test_swagger_and_openapi_are_served(client: TestClient) -> None:
    page = client.get("/swagger")
    assert page.status_code == 200 and "swagger-ui" in page.text
    assert client.get("/swagger/static/swagger-ui-bundle.js").status_code == 200
    spec = client.get("/swagger/openapi.json").json()
    assert "/v2/Jobs/{job_id}" in spec["paths"]
    assert "put" in spec["paths"]["/v2/Jobs/{job_id}"]
