"""In-process CPU per request of Keepstone's ASGI app: no sockets, no uvicorn, no client load.

Sets up a job through ``httpx.ASGITransport``, then calls ``create_app``'s ASGI interface
directly (no client library: a scope, a body, a ``send`` that keeps the status) on one event
loop, N requests in turn per row, and prints the process CPU time (``time.process_time``) and
the wall time (``time.perf_counter``) per request: the cost of the middleware, routing,
dependencies, handlers and access log alone, which the wrk figures of ``bench/api.py`` bury
under the server's and the machine's noise; the bare Starlette app of ``bench/api.py`` is driven
the same way first (uvicorn's own share, the same for both, is not in these figures). Rows as in
``bench/api.py`` (401, authenticated ``GET`` and seed ``PUT /v2/Jobs/{id}``, EM
``GET /api/jobs/{id}`` in XML and JSON, the seed PUT with two descriptions in turn).

    uv run python bench/api_cpu.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from api import PASSWORD, changing_seed_bodies, job_body, seed_body
from keepstone import logs, server
from keepstone.api.app import WORKER_THREADS, create_app

# name, method, path, headers, bodies (sent in turn), status
Row = tuple[str, str, str, dict[str, str], tuple[bytes, ...], int]


async def call(app: Any, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
    """One request through the app's ASGI interface; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(requests: int, data_dir: Path, only: str = "") -> list[tuple[str, float, float]]:
    os.environ["KEEPSTONE_ADMIN_PASSWORD"] = PASSWORD
    ctx = server.open_context(data_dir)
    started = server.bootstrap(ctx, data_dir)
    ctx.server_id = started.server_id
    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
    app = create_app(ctx)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        token = (
            await client.post(
                "/v2/Token",
                data={"grant_type": "password", "username": "admin", "password": PASSWORD},
            )
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        org_dir = data_dir.parent / "org"
        org_dir.mkdir()
        org = (
            await client.post(
                "/v2/Organizations",
                headers=auth,
                json={"type": "Local", "name": "bench", "localSettings": {"path": str(org_dir)}},
            )
        ).json()
        assert "id" in org, org
        repo = (await client.get("/v2/BackupRepositories", headers=auth)).json()[0]
        job = (
            await client.post(
                f"/v2/Organizations/{org['id']}/Jobs",
                headers=auth,
                json=job_body(repo["id"]),
            )
        ).json()
        logon = await client.post("/api/sessionMngr/?v=latest", auth=("admin", PASSWORD))
        session = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
        seed_dict = seed_body(started.proxy_id, repo["id"])
        seed = json.dumps(seed_dict).encode()
        changing = tuple(json.dumps(body).encode() for body in changing_seed_bodies(seed_dict))
        put = {**auth, "Content-Type": "application/json"}
        path = f"/v2/Jobs/{job['id']}"
        em = f"/api/jobs/{job['id']}"
        rows: list[Row] = [
            ("GET /v2/Jobs without a token (401)", "GET", "/v2/Jobs", {}, (b"",), 401),
            ("GET /v2/Jobs/{id}", "GET", path, auth, (b"",), 200),
            ("PUT /v2/Jobs/{id} (seed 003 body)", "PUT", path, put, (seed,), 200),
            ("EM GET /api/jobs/{id} (XML)", "GET", em, session, (b"",), 200),
            (
                "EM GET /api/jobs/{id} (JSON)",
                "GET",
                em,
                {**session, "Accept": "application/json"},
                (b"",),
                200,
            ),
            ("PUT /v2/Jobs/{id} (description alternating)", "PUT", path, put, changing, 200),
        ]
        results = [("bare Starlette app (the floor)", *await _cpu(bare_app(), "/", {}, requests))]
        for name, method, target, headers, bodies, expected in rows:
            if only not in name:
                continue
            for n in range(50):  # warm caches (credentials, canonical paths, routes)
                body = bodies[n % len(bodies)]
                assert await call(app, method, target, headers, body) == expected, name
            began, began_wall = time.process_time(), time.perf_counter()
            for n in range(requests):
                await call(app, method, target, headers, bodies[n % len(bodies)])
            cpu, wall = time.process_time() - began, time.perf_counter() - began_wall
            results.append((name, cpu / requests * 1000, wall / requests * 1000))
    ctx.db.dispose()
    return results


def bare_app() -> Any:
    """The floor of ``bench/api.py``: a Starlette app answering a small JSON object."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def answer(_request: Any) -> JSONResponse:
        return JSONResponse({"name": "bare", "ok": True})

    return Starlette(routes=[Route("/", answer)])


async def _cpu(app: Any, path: str, headers: dict[str, str], requests: int) -> tuple[float, float]:
    """CPU and wall milliseconds per ``GET path`` (after a warm-up)."""
    for _ in range(50):
        assert await call(app, "GET", path, headers, b"") == 200
    began, began_wall = time.process_time(), time.perf_counter()
    for _ in range(requests):
        await call(app, "GET", path, headers, b"")
    cpu, wall = time.process_time() - began, time.perf_counter() - began_wall
    return cpu / requests * 1000, wall / requests * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--only", default="", help="only the rows whose name contains this")
    args = parser.parse_args()
    logs.configure()
    with tempfile.TemporaryDirectory() as scratch:
        results = asyncio.run(run(args.requests, Path(scratch) / "data", args.only))
    floor = results[0][1]
    for name, ms, wall in results:
        print(
            f"{name:40} {ms:7.4f} ms CPU per request  ({floor / ms:4.2f}x the bare app's rate)"
            f"  {wall:7.4f} ms wall"
        )


if __name__ == "__main__":
    main()
