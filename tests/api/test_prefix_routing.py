"""Routing by first segment (api/prefix_routing.py) chooses exactly the route the full scan of
the app's routes chooses, for every path and method the app serves and for paths it does not."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Match

from keepstone.api.prefix_routing import PrefixRouting, first_segment

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
UNSERVED = (
    "/",
    "/nowhere",
    "/v9/Jobs",
    "/v2",
    "/v2/",
    "/api",
    "/api/",
    "/v2/Jobs/x/y/z",
    "/_proxy",
)


def scope_of(app: FastAPI, method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "app": app,
    }


def first_match(routes: list[BaseRoute], scope: dict[str, Any]) -> tuple[str, str] | None:
    """What the scan of ``routes`` chooses: the first full match, else the first partial one
    (a 405), as Starlette does; named by the matched route's class and its child scope."""
    partial = None
    for route in routes:
        match, child = route.matches(dict(scope))
        found = (type(route).__name__ + str(id(route)), repr(sorted(child.items(), key=str)))
        if match is Match.FULL:
            return found
        if match is Match.PARTIAL and partial is None:
            partial = found
    return partial


@pytest.mark.sqlite_catalog  # routing: the catalog plays no part
def test_every_request_reaches_the_route_the_full_scan_reaches(client: TestClient) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    dispatch = app.router.middleware_stack
    assert isinstance(dispatch, PrefixRouting)
    paths = [re.sub(r"\{[^}]+\}", "some-id", p) for p in app.openapi()["paths"]]
    paths += ["/swagger", "/swagger/static/swagger-ui.css", "/_proxy/v1/heartbeat", *UNSERVED]
    assert len(paths) > 300
    checked = 0
    for path in paths:
        subset = dispatch.router_for(path).routes
        assert len(subset) < len(app.router.routes) or first_segment(path) == ""
        for method in METHODS:
            scope = scope_of(app, method, path)
            assert first_match(subset, scope) == first_match(app.router.routes, scope), (
                method,
                path,
            )
            checked += 1
    assert checked == len(paths) * len(METHODS)


def test_unserved_paths_answer_as_before(client: TestClient) -> None:
    assert client.get("/v2/Nowhere").status_code == 404
    assert client.get("/api/nowhere").status_code == 404
    assert client.get("/nowhere").status_code == 404
    assert client.delete("/v2/Token").status_code == 405
