"""In-process CPU per request of Keepstone's ASGI app: no sockets, no uvicorn, no client load.

Drives ``create_app`` through ``httpx.ASGITransport`` on one event loop, N requests in turn per
row, and prints the process CPU time (``time.process_time``) per request: the cost of the
middleware, routing, dependencies and handlers alone, which the wrk figures of ``bench/api.py``
bury under the server's and the machine's noise. Rows as in ``bench/api.py`` (401, authenticated
``GET /v2/Jobs/{id}``, EM ``GET /api/jobs/{id}`` in XML).

    uv run python bench/api_cpu.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from api import PASSWORD, job_body
from keepstone import logs, server
from keepstone.api.app import WORKER_THREADS, create_app


async def run(requests: int, data_dir: Path) -> list[tuple[str, float]]:
    os.environ["KEEPSTONE_ADMIN_PASSWORD"] = PASSWORD
    ctx = server.open_context(data_dir)
    ctx.server_id = server.bootstrap(ctx, data_dir).server_id
    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
    transport = httpx.ASGITransport(app=create_app(ctx))
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
        rows = [
            ("GET /v2/Jobs without a token (401)", "/v2/Jobs", {}, 401),
            ("GET /v2/Jobs/{id}", f"/v2/Jobs/{job['id']}", auth, 200),
            ("EM GET /api/jobs/{id} (XML)", f"/api/jobs/{job['id']}", session, 200),
        ]
        results = []
        for name, path, headers, expected in rows:
            for _ in range(50):  # warm caches (credentials, canonical paths, routes)
                assert (await client.get(path, headers=headers)).status_code == expected
            started = time.process_time()
            for _ in range(requests):
                await client.get(path, headers=headers)
            results.append((name, (time.process_time() - started) / requests * 1000))
    ctx.db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    logs.configure()
    with tempfile.TemporaryDirectory() as scratch:
        results = asyncio.run(run(args.requests, Path(scratch) / "data"))
    for name, ms in results:
        print(f"{name:40} {ms:6.3f} ms CPU per request")


if __name__ == "__main__":
    main()
