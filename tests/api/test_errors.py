"""Every error of the JSON dialect has a ``{"message"}`` body; a 500 never shows a stack trace."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keepstone.api import errors
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


@pytest.mark.sqlite_catalog
@pytest.mark.parametrize(
    ("path", "accept", "expected_body"),
    [
        ("/v2/Jobs", "", {"message": "no"}),
        ("/v8/Jobs", "", {"message": "no", "errorCode": "ResourceNotFound"}),
        ("/api/jobs", "application/json", {"Message": "no", "StatusCode": 404}),
    ],
)
def test_an_error_answer_encoded_once_is_answered_again_whole(
    path: str, accept: str, expected_body: dict[str, Any]
) -> None:
    """Error answers are kept encoded (api/errors.py): the same bytes each time, each answer
    with a list of headers of its own, and a long message (quoting input) never kept."""
    first = errors.error_response(path, 404, "no", {"Retry-After": "2"}, accept)
    second = errors.error_response(path, 404, "no", {"Retry-After": "2"}, accept)
    assert first.body == second.body and first.raw_headers == second.raw_headers
    assert expected_body.items() <= json.loads(first.body).items()
    assert (b"retry-after", b"2") in first.raw_headers
    first.raw_headers.append((b"x-added", b"1"))
    assert (b"x-added", b"1") not in errors.error_response(
        path, 404, "no", {"Retry-After": "2"}, accept
    ).raw_headers
    kept = errors._encoded_error.cache_info().currsize
    long = errors.error_response(path, 404, "x" * (errors.MESSAGE_KEPT + 1), None, accept)
    assert errors._encoded_error.cache_info().currsize == kept
    assert "x" * (errors.MESSAGE_KEPT + 1) in long.body.decode()


def test_edge_is_the_outermost_layer_and_fastapis_own_are_gone(client: TestClient) -> None:
    """``KeepstoneApp``: nothing in front of ``Edge`` (whose 500 is the dialect's, above), and no
    handler for 500 or ``Exception`` that FastAPI's own layer would have called."""
    from fastapi import FastAPI
    from starlette.middleware.errors import ServerErrorMiddleware

    from keepstone.api.app import KeepstoneApp
    from keepstone.api.edge import Edge

    app = client.app
    assert isinstance(app, KeepstoneApp)
    stack = app.build_middleware_stack()
    assert isinstance(stack, Edge)
    layers = []
    while stack is not None:
        layers.append(type(stack))
        stack = getattr(stack, "app", None)
    assert ServerErrorMiddleware not in layers
    assert FastAPI.build_middleware_stack(app).__class__ is ServerErrorMiddleware  # FastAPI's
    given_one = KeepstoneApp()
    given_one.add_exception_handler(Exception, lambda request, error: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no handler for 500 or Exception"):
        given_one.build_middleware_stack()
