"""Direct routes (api/direct.py) answer byte for byte what the FastAPI routes answer: the same
requests, good and bad, sent with the direct handlers on and off give the same status, headers
and body; they do take the requests they claim; and they leave a path to any route the app
matches before theirs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.responses import Response
from starlette.routing import Route

from keepstone.api import direct
from keepstone.api.direct import DirectRoute
from keepstone.api.prefix_routing import PATH_KEPT, DirectRoutes, Found
from keepstone.services import auth
from keepstone.services.context import Context
from tests.conftest import ADMIN_PASSWORD, READER_PASSWORD, login
from tests.em.conftest import basic

VARYING = {"x-request-id", "date"}


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths the direct handlers took (every one, as long as the test does not turn them
    off)."""
    seen: list[str] = []
    match = DirectRoutes.match

    def counting(self: DirectRoutes, method: str, path: str) -> Found | None:
        found = match(self, method, path)
        if found is not None:
            seen.append(f"{method} {path}")
        return found

    monkeypatch.setattr(DirectRoutes, "match", counting)
    yield seen


def exchange(client: TestClient, requests: list[dict[str, Any]], job: dict[str, Any]) -> list[Any]:
    """Each request's status, headers (but the request id and date) and body, the job's id and
    name replaced by placeholders."""

    def blind(text: str) -> str:
        return text.replace(job["id"], "{id}").replace(job["name"], "{name}")

    answers = []
    for request in requests:
        response = client.request(
            request["method"],
            request["path"].replace("{id}", job["id"]),
            headers=request.get("headers", {}),
            content=request.get("content"),
        )
        headers = sorted((k, blind(v)) for k, v in response.headers.items() if k not in VARYING)
        answers.append((request, response.status_code, headers, blind(response.text)))
    return answers


def requests_for(client: TestClient, ctx: Context, repo: dict[str, Any]) -> list[dict[str, Any]]:
    auth.add_user(ctx, "reader", READER_PASSWORD, auth.Role.READ_ONLY)
    admin = {"Authorization": f"Bearer {login(client, 'admin', ADMIN_PASSWORD)}"}
    reader = {"Authorization": f"Bearer {login(client, 'reader', READER_PASSWORD)}"}
    logon = client.post("/api/sessionMngr/?v=latest", headers=basic("admin", ADMIN_PASSWORD))
    em = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
    as_json = {"Content-Type": "application/json"}
    seed = json.dumps(
        {"description": "edited", "repositoryId": repo["id"], "backupType": "EntireOrganization"}
    )
    requests: list[dict[str, Any]] = []
    for version in (2, 5, 6, 7, 8):
        path = f"/v{version}/Jobs/{{id}}"
        requests += [
            {"method": "GET", "path": path, "headers": admin},
            {"method": "GET", "path": path.lower(), "headers": reader},  # case-insensitive
            {"method": "GET", "path": path + "?unknown=1", "headers": admin},
            {"method": "PUT", "path": path, "headers": admin | as_json, "content": seed},
        ]
    requests += [
        {"method": "GET", "path": "/v8/Jobs/{id}"},  # no token
        {"method": "GET", "path": "/v8/Jobs/{id}", "headers": {"Authorization": "Bearer nope"}},
        {"method": "GET", "path": "/v8/Jobs/missing", "headers": admin},
        {"method": "HEAD", "path": "/v8/Jobs/{id}", "headers": admin},
        {"method": "PUT", "path": "/v8/Jobs/{id}", "headers": reader | as_json, "content": seed},
        {"method": "PUT", "path": "/v8/Jobs/{id}", "headers": as_json, "content": seed},
        {"method": "PUT", "path": "/v8/Jobs/missing", "headers": admin | as_json, "content": seed},
        {"method": "PUT", "path": "/v8/Jobs/{id}", "headers": admin | as_json, "content": "{"},
        {"method": "PUT", "path": "/v8/Jobs/{id}", "headers": as_json, "content": "{"},
        {"method": "PUT", "path": "/v8/Jobs/{id}", "headers": admin | as_json, "content": ""},
        {"method": "PUT", "path": "/v8/Jobs/{id}", "headers": admin, "content": seed},
        {
            "method": "PUT",
            "path": "/v8/Jobs/{id}",
            "headers": admin | {"Content-Type": "text/plain"},
            "content": seed,
        },
        {
            "method": "PUT",
            "path": "/v8/Jobs/{id}",
            "headers": admin | as_json,
            "content": json.dumps({"name": 5, "backupType": "Nonsense"}),
        },
        {
            "method": "PUT",
            "path": "/v8/Jobs/{id}",
            "headers": admin | as_json,
            "content": json.dumps({"schedulePolicy": {"type": "Daily", "dailyTime": "25:00"}}),
        },
        {
            "method": "PUT",
            "path": "/v8/Jobs/{id}",
            "headers": admin | as_json | {"If-Match": '"1"'},  # stale by now
            "content": seed,
        },
        {
            "method": "PUT",
            "path": "/v8/Jobs/{id}",
            "headers": admin | as_json | {"If-Match": "garbage"},
            "content": seed,
        },
        {"method": "GET", "path": "/api/jobs/{id}", "headers": em},
        {"method": "GET", "path": "/api/jobs/{id}?format=Entity", "headers": em},
        {"method": "GET", "path": "/api/jobs/{id}?format=entity&format=", "headers": em},
        {"method": "GET", "path": "/api/jobs/{id}", "headers": em | {"Accept": "application/json"}},
        {"method": "GET", "path": "/API/Jobs/{id}", "headers": em},
        {"method": "GET", "path": "/api/jobs/{id}"},
        {"method": "GET", "path": "/api/jobs/missing", "headers": em},
        {
            "method": "GET",
            "path": "/api/jobs/missing",
            "headers": em | {"Accept": "application/json"},
        },
    ]
    return requests


def test_direct_routes_answer_what_the_fastapi_routes_answer(
    client: TestClient,
    ctx: Context,
    api: Any,
    org: dict[str, Any],
    repo: dict[str, Any],
    taken: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = {"name": "job-one", "backupType": "EntireOrganization", "repositoryId": repo["id"]}
    first = api.post(f"/v2/Organizations/{org['id']}/Jobs", body).json()
    body["name"] = "job-two"  # as long: the same Content-Length
    second = api.post(f"/v2/Organizations/{org['id']}/Jobs", body).json()
    requests = requests_for(client, ctx, repo)

    directly = exchange(client, requests, first)
    assert len(taken) >= 30  # the plain GETs and PUTs of both dialects
    monkeypatch.setattr(DirectRoutes, "match", lambda self, method, path: None)
    through_fastapi = exchange(client, requests, second)

    for ours, theirs in zip(directly, through_fastapi, strict=True):
        assert ours == theirs
    statuses = {status for _request, status, _headers, _body in directly}
    assert {200, 204, 400, 401, 403, 404, 412} <= statuses
    assert 500 not in statuses


@pytest.mark.sqlite_catalog  # routing: the catalog plays no part
def test_a_route_before_the_direct_one_keeps_its_paths() -> None:
    async def literal(request: Any) -> Response:
        return Response("literal")

    async def templated(request: Any) -> Response:
        return Response("fastapi")

    async def shortcut(request: Any, params: dict[str, str], body: bytes) -> Response:
        return Response(f"direct {params['item_id']}")

    app = FastAPI()
    app.router.routes += [
        Route("/v2/Things/search", literal, methods=["GET"]),
        Route("/v2/Things/{item_id}", templated, methods=["GET"]),
    ]
    routes = DirectRoutes([DirectRoute("GET", "/v2/Things/{item_id}", shortcut)], app.router)
    assert routes.match("GET", "/v2/Things/search") is None  # the literal route's
    found = routes.match("GET", "/v2/Things/7")
    assert found is not None and found[1] == {"item_id": "7"}
    assert routes.match("POST", "/v2/Things/7") is None
    app.router.routes.insert(0, Route("/v2/Things/7", literal, methods=["GET"]))
    assert routes.match("GET", "/v2/Things/7") is None  # a route added later is seen


@pytest.mark.sqlite_catalog  # routing: the catalog plays no part
def test_a_path_is_matched_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The direct route of a (method, path) seen before is looked up, not matched again; each
    caller gets a dict of its own; routes added later are seen."""

    async def shortcut(request: Any, params: dict[str, str], body: bytes) -> Response:
        return Response("direct")

    async def templated(request: Any) -> Response:
        return Response("fastapi")

    app = FastAPI()
    app.router.routes.append(Route("/v2/Things/{item_id}", templated, methods=["GET"]))
    routes = DirectRoutes([DirectRoute("GET", "/v2/Things/{item_id}", shortcut)], app.router)
    matched: list[str] = []
    real = direct.Bound.match

    def counted(self: direct.Bound, method: str, path: str) -> dict[str, str] | None:
        matched.append(path)
        return real(self, method, path)

    monkeypatch.setattr(direct.Bound, "match", counted)
    first, second = routes.match("GET", "/v2/Things/7"), routes.match("GET", "/v2/Things/7")
    assert routes.match("GET", "/v2/Things/8") is not None
    assert routes.match("GET", "/v2/Other/1") is None and routes.match("GET", "/v2/Other/1") is None
    assert matched == ["/v2/Things/7", "/v2/Things/8", "/v2/Other/1"]
    assert first is not None and second is not None
    assert first[1] == second[1] == {"item_id": "7"} and first[1] is not second[1]
    long = "/v2/Things/" + "x" * PATH_KEPT  # a long path is matched each time, never kept
    assert routes.match("GET", long) is not None and routes.match("GET", long) is not None
    assert matched[3:] == [long, long]
    app.router.routes.insert(0, Route("/v2/Things/7", templated, methods=["GET"]))
    assert routes.match("GET", "/v2/Things/7") is None


@pytest.mark.sqlite_catalog
def test_a_direct_route_must_shadow_a_route_of_the_app() -> None:
    async def shortcut(request: Any, params: dict[str, str], body: bytes) -> None:
        return None

    with pytest.raises(ValueError, match="no app route"):
        direct.bind([DirectRoute("GET", "/v2/Nothing/{x}", shortcut)], FastAPI().router.routes)


@pytest.mark.sqlite_catalog
def test_the_loop_s_writes_take_turns() -> None:
    """A write waiting on its worker thread holds the next back (api/direct.write): otherwise the
    next finds the writer busy with it and hops to a thread too, and so on (a convoy)."""
    order: list[str] = []

    def later(name: str) -> str:
        order.append(f"{name} later")
        return name

    def now(name: str, decline: bool) -> str | None:
        order.append(f"{name} now")
        return None if decline else name

    async def both() -> list[str]:
        first = asyncio.create_task(direct.write(lambda: now("a", True), lambda: later("a")))
        await asyncio.sleep(0)  # a has begun and waits on its thread
        second = asyncio.create_task(direct.write(lambda: now("b", False), lambda: later("b")))
        return [await first, await second]

    assert asyncio.run(both()) == ["a", "b"]
    assert order == ["a now", "a later", "b now"]


def test_a_direct_edit_parses_its_body_once(
    api: Any, job: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edge's check parsed the JSON body already (api/inputs.py): the handler takes that
    value rather than parsing the text again."""
    parsed: list[bytes] = []
    real = json.loads

    def counted(text: Any, **kw: Any) -> Any:
        if isinstance(text, bytes):  # the body as received (the edge parses it decoded)
            parsed.append(text)
        return real(text, **kw)

    monkeypatch.setattr(direct.json, "loads", counted)
    assert api.put(f"/v8/Jobs/{job['id']}", {"description": "once"}).status_code == 204
    assert parsed == []
    assert api.get(f"/v8/Jobs/{job['id']}").json()["description"] == "once"


@pytest.mark.parametrize("version", [2, 5, 6, 8])
def test_an_edit_s_answer_has_its_etag_after_the_content_headers(version: int) -> None:
    """The ETag an edit answers with, appended to the raw headers, is where and as the mutable
    headers' ``response.headers["ETag"] = ...`` puts it (the answer's bytes unchanged)."""
    from keepstone.api.plumbing import plain
    from keepstone.api.vb365.jobs import _edited
    from keepstone.store.tables import Job

    answer = _edited(Job(version=41), version)
    expected = plain(204 if version >= 6 else 200)
    expected.headers["ETag"] = '"41"'
    assert (answer.status_code, answer.raw_headers) == (expected.status_code, expected.raw_headers)
