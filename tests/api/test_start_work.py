"""What a server does before its first answer, counted rather than timed: FastAPI analyses each
handler once, not once per API version; the libraries only some catalogs or connectors need
(psycopg for PostgreSQL, MSAL and requests for Microsoft 365) are not imported by then; and the
first answer compiles the path patterns of a few routes, not of every route of every version."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import defaultdict

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from keepstone.api.app import VB365_ROUTERS, EnterpriseManager, create_app
from keepstone.api.deferred import DeferredRoutes
from keepstone.api.em.empty_collections import router as empty_collections_router
from keepstone.api.em.resources import ROUTERS as EM_ROUTERS
from keepstone.api.health import router as health_router
from keepstone.api.metrics import router as metrics_router
from keepstone.api.proxy_link import router as proxy_link_router
from keepstone.api.vb365.versions import VERSIONS
from keepstone.services.context import Context
from tests.process_helpers import free_port

# and the parts of the app imported at the first request for one of their paths
# (api.deferred): the console's pages, the Enterprise Manager dialect (and lxml, which only it
# uses), the remote proxies' API
DEFERRED = (
    "psycopg",
    "msal",
    "requests",
    "keepstone.console.pages",
    "keepstone.api.em.resources",
    "keepstone.api.em.jobs",
    "keepstone.api.em.xml",
    "lxml.etree",
    "keepstone.api.proxy_link",
    # Microsoft Graph's connector and httpx: imported where a tenant is reached (a sync, a
    # check, a restore), not with the services that read the organizations' cache
    "httpx",
    "keepstone.sources.graph.access",
    "keepstone.sources.graph.client",
    "keepstone.sources.graph.directory",
    "keepstone.sources.graph.restore",
    # the IMAP session and its transport: imported by a connection, not with the settings' values
    "keepstone.sources.imap.session",
    "keepstone.sources.imap.transport",
)

# and what only ``keepstone serve`` itself (the command, uvicorn) imported: Rich's console (the
# commands that show tables or progress make it), the websockets library (no WebSocket route)
SERVE_DEFERRED = (
    *DEFERRED,
    "rich.console",
    "websockets",
)


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
    assert routes > 700  # every version's routes (the deferred parts' are not in yet)
    # the gate's pattern for /v2 and GET (its routes, then their alternation) and the direct
    # routes' few overlaps: not one pattern per route of the app (1,373 before, 2026-12-05)
    assert compiled < routes / 5, (compiled, routes)


def test_the_em_dialect_takes_its_place_in_the_app_at_its_first_request(ctx: Context) -> None:
    """A new app holds ``EnterpriseManager`` where the EM dialect's routers go; the first
    request under ``/api`` (in any case, as every EM path) puts them in that very place, with
    their templates (for the case of paths), their direct routes and their credential checks,
    and gets the answer it always got."""
    app = create_app(ctx)
    routes = app.router.routes
    at = next(n for n, route in enumerate(routes) if isinstance(route, EnterpriseManager))
    after = routes[at + 1 :]
    direct = next(m.kwargs["direct"] for m in app.user_middleware)
    job = "/api/jobs/8ad1c0f8-7ad5-4a2c-9a5e-4d4a8bbd8a57"
    with TestClient(app, base_url="https://testserver") as fresh:
        assert fresh.get("/v2/Jobs").status_code == 401  # the JSON dialect leaves it alone
        assert routes[at] is not None and isinstance(routes[at], EnterpriseManager)
        refused = fresh.get("/API/Jobs", headers={"accept": "application/json"})
        assert refused.status_code == 401, refused.text
        assert refused.headers["www-authenticate"] == 'Basic realm="RestSvc"'
        assert refused.json()["StatusCode"] == 401  # the EM's error, as JSON: its own
        assert direct.match("GET", job) is not None  # the EM's direct routes are in
        assert fresh.get("/api/no-such-thing").status_code == 404
    placed = [
        getattr(route, "original_router", None) for route in routes[at : at + len(EM_ROUTERS)]
    ]
    assert placed == list(EM_ROUTERS)
    assert routes[at + len(EM_ROUTERS) :] == after
    assert not any(
        isinstance(route, DeferredRoutes) and route.segments == {"api"} for route in routes
    )


@pytest.mark.sqlite_catalog  # building routes: the catalog plays no part
def test_the_openapi_document_describes_the_deferred_routes(ctx: Context) -> None:
    paths = create_app(ctx).openapi()["paths"]
    assert "/api/jobs/{job_id}" in paths and "/v8/Jobs/{job_id}" in paths


def test_the_remote_proxies_api_answers_its_first_request(ctx: Context) -> None:
    """Its one router takes the place of its ``DeferredRoutes``: the number of the app's routes
    is the same after, and the indexes of the routes (prefix routing, direct routes, credential
    gate) are still rebuilt (with stale ones, the request went round the placeholder forever)."""
    app = create_app(ctx)
    count = len(app.router.routes)
    with TestClient(app, base_url="https://testserver") as fresh:
        assert fresh.get("/v2/Jobs").status_code == 401  # the indexes are built
        refused = fresh.post("/_proxy/v1/claim")
        assert refused.status_code == 401, refused.text
        assert "proxy credential" in refused.json()["message"]
        assert fresh.post("/_proxy/v1/claim").status_code == 401
    assert len(app.router.routes) == count
    assert not any(
        isinstance(route, DeferredRoutes) and "_proxy" in route.segments
        for route in app.router.routes
    )


@pytest.mark.sqlite_catalog
def test_serve_imports_nothing_deferred_by_its_first_answer_and_first_tick() -> None:
    """The real command (``keepstone serve`` in the main thread, as the CLI runs it) asked for
    ``/v2/Jobs`` by a plain socket; the modules are listed once it has answered and its scheduler
    has ended its first tick (which runs beside the start, and would import what it needs)."""
    port = free_port()
    program = textwrap.dedent(
        f"""
        import os, socket, sys, tempfile, threading, time
        os.environ["KEEPSTONE_ADMIN_PASSWORD"] = "first-answer-password"
        from keepstone.scheduler import Scheduler
        ticked = threading.Event()
        tick = Scheduler.tick

        def counted(self):
            try:
                return tick(self)
            finally:
                ticked.set()

        Scheduler.tick = counted

        def ask():
            while True:
                try:
                    peer = socket.create_connection(("127.0.0.1", {port}), timeout=60)
                    break
                except ConnectionRefusedError:
                    time.sleep(0.01)
            peer.sendall(b"GET /v2/Jobs HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
            status = peer.recv(64).split()[1].decode()
            ticked.wait(60)
            print(status, sorted(m for m in {SERVE_DEFERRED!r} if m in sys.modules), flush=True)
            os._exit(0)

        threading.Thread(target=ask, daemon=True).start()
        from keepstone.cli.main import app
        data = os.path.join(tempfile.mkdtemp(), "data")
        app(["serve", "--data-dir", data, "--port", "{port}"])
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[-2] == "401 []", run.stdout


@pytest.mark.parametrize(("given", "looked_up"), [(None, False), ("", True)])
def test_the_command_looks_for_no_pydantic_plugin_unless_told_to(
    given: str | None, looked_up: bool
) -> None:
    """pydantic reads every installed distribution's entry points for plugins at its first
    model (14 ms of a start); ``keepstone`` leaves them out unless the operator's own
    ``PYDANTIC_DISABLE_PLUGINS`` says otherwise ("" loads them all)."""
    program = textwrap.dedent(
        """
        import importlib.metadata, sys
        groups = []
        every = importlib.metadata.entry_points

        def counted(**selection):
            groups.append(selection.get("group"))
            return every(**selection)

        importlib.metadata.entry_points = counted
        sys.argv = ["keepstone", "--help"]
        from keepstone.cli import main
        try:
            main()
        except SystemExit:
            pass
        import keepstone.api.app  # its models, as ``serve`` builds them after the command's start
        print("pydantic" in groups)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if given is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = given
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=300, env=env
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[-2] == str(looked_up), run.stdout
