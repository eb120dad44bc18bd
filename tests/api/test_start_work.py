"""What a server does before its first answer, counted rather than timed: FastAPI analyses each
handler once, not once per API version; the libraries only some catalogs or connectors need
(psycopg for PostgreSQL, MSAL and requests for Microsoft 365) are not imported by then; and the
first answer compiles the path patterns of a few routes, not of every route of every version."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import defaultdict

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from keepstone.api.app import VB365_ROUTERS
from keepstone.api.em.empty_collections import router as empty_collections_router
from keepstone.api.em.resources import ROUTERS as EM_ROUTERS
from keepstone.api.health import router as health_router
from keepstone.api.metrics import router as metrics_router
from keepstone.api.proxy_link import router as proxy_link_router
from keepstone.api.vb365.versions import VERSIONS

# and the console's pages, imported at the first request for one (console.Pages)
DEFERRED = ("psycopg", "msal", "requests", "keepstone.console.pages")


@pytest.mark.sqlite_catalog  # building routes: the catalog plays no part
def test_each_handler_is_analysed_once_for_every_version() -> None:
    dependants: dict[object, set[int]] = defaultdict(set)
    routes = 0
    for versioned, _tag, _protected in VB365_ROUTERS:
        for number in VERSIONS:
            for route in versioned.for_version(number).routes:
                assert isinstance(route, APIRoute)
                routes += 1
                dependants[route.endpoint, route.path, frozenset(route.methods)].add(
                    id(route.dependant)
                )
    assert routes > 500  # the seven copies of the JSON dialect
    embedded = sum(
        1
        for versioned, _tag, _protected in VB365_ROUTERS
        for route in versioned.for_version(8).routes
        if isinstance(route, APIRoute) and route._embed_body_fields
    )
    analyses = sum(len(ids) for ids in dependants.values())
    # one analysis per handler, and one per version for the few with a form body
    assert analyses <= len(dependants) + embedded * (len(VERSIONS) - 1)


@pytest.mark.sqlite_catalog  # building routes: the catalog plays no part
def test_the_empty_em_lists_share_one_analysis() -> None:
    """The 42 collections Keepstone has none of are answered by one handler, analysed once (each
    analysed apart was 0.03-0.04 s of every start, 2026-12-05)."""
    routes = [r for r in empty_collections_router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 45
    assert len({r.path for r in routes}) == len(routes)
    assert len({id(r.dependant) for r in routes}) < 10


def _calls(dependant: Dependant) -> list[object]:
    return [dependant.call, *(c for d in dependant.dependencies for c in _calls(d))]


@pytest.mark.sqlite_catalog  # building routes: the catalog plays no part
def test_no_handler_or_dependency_has_an_annotation_fastapi_must_evaluate() -> None:
    """FastAPI reads a handler's and each of its dependencies' signatures with their string
    annotations evaluated, at every analysis: a module of handlers or dependencies written with
    ``from __future__ import annotations`` made 3,649 evaluations at each start (2026-12-05)."""
    routers = [
        versioned.for_version(number) for versioned, _, _ in VB365_ROUTERS for number in VERSIONS
    ]
    routers += [*EM_ROUTERS, proxy_link_router, health_router, metrics_router]
    calls = {
        call
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for call in _calls(route.dependant)
    }
    assert len(calls) > 200
    strings = sorted(
        f"{getattr(call, '__module__', '')}.{getattr(call, '__qualname__', call)}"
        for call in calls
        if any(isinstance(a, str) for a in getattr(call, "__annotations__", {}).values())
    )
    assert strings == []


@pytest.mark.sqlite_catalog
def test_the_first_answer_imports_no_connector_or_other_catalog_library() -> None:
    program = textwrap.dedent(
        f"""
        import asyncio, os, sys, tempfile
        from pathlib import Path
        os.environ["KEEPSTONE_ADMIN_PASSWORD"] = "first-answer-password"
        from keepstone import server
        from keepstone.api.app import create_app
        data = Path(tempfile.mkdtemp()) / "data"
        ctx = server.open_context(data)
        ctx.server_id = server.bootstrap(ctx, data).server_id
        app = create_app(ctx)
        statuses = []

        async def first_answer():
            scope = {{"type": "http", "method": "GET", "path": "/v2/Jobs", "raw_path": b"/v2/Jobs",
                     "query_string": b"", "root_path": "", "headers": [(b"host", b"x")],
                     "scheme": "http", "http_version": "1.1", "server": ("x", 80),
                     "client": ("127.0.0.1", 1), "state": {{}}}}

            async def receive():
                return {{"type": "http.request", "body": b"", "more_body": False}}

            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await app(scope, receive, send)

        import re._compiler
        from keepstone.api.direct import _flatten
        compiled = 0
        compile_pattern = re._compiler.compile

        def counted(*args, **kwargs):
            global compiled
            compiled += 1
            return compile_pattern(*args, **kwargs)

        re._compiler.compile = counted
        asyncio.run(first_answer())
        re._compiler.compile = compile_pattern
        routes = len(list(_flatten(app.router.routes)))
        print(compiled, routes)
        print(statuses, sorted(m for m in {DEFERRED!r} if m in sys.modules))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[-2] == "[401] []", run.stdout
    compiled, routes = map(int, run.stdout.split("\n")[-3].split())
    assert routes > 800  # every version's routes, the EM's, the console's
    # the gate's pattern for /v2 and GET (its routes, then their alternation) and the direct
    # routes' few overlaps: not one pattern per route of the app (1,373 before, 2026-12-05)
    assert compiled < routes / 5, (compiled, routes)
