"""API benchmark: Keepstone's hot requests beside the stack's floor, in one run.

The floor is a bare Starlette app answering a small JSON object under the same uvicorn settings,
started as its own process and loaded the same way just before each row; every row's last
column is its throughput over that floor's (on a shared machine the load of the moment moves
both alike). Rows: the 401 path (no token), the authenticated ``GET /v2/Jobs/{id}``, the seed
003 ``PUT /v2/Jobs/{id}``, Enterprise Manager's ``GET /api/jobs/{id}`` in XML and in JSON
(logon session header ``X-RestSvcSessionId``), and the seed PUT with two descriptions in turn (so
every request changes the job), all at 16 connections against ``keepstone serve``.
It also times a server's start, from exec of ``keepstone serve`` to its first answer, both ways
a server starts: on a new data directory (the first start creates the catalog, the default
repository and the administrator, whose Argon2 hash is about 0.2 s of CPU) and on the same one
again (every later start); the medians of ``--starts`` of each, taken in turn.

    uv run python bench/api.py [--seconds 10] [--connections 16] [--starts 5]
                               [--write docs/benchmarks.md]

Load comes from Debian's wrk when installed (so the client's CPU does not cap the server), else
from httpx. Prints a table and, with --write, replaces its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from common import stop, write_section

PASSWORD = "benchmark-password"
SECTION = "API: Keepstone against the bare stack"
# The floor: the same uvicorn settings as `keepstone serve` (server.py), nothing else.
BARE_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def answer(request):
    return JSONResponse({"name": "bare", "ok": True})

app = Starlette(routes=[Route("/", answer)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False,
            proxy_headers=False, timeout_graceful_shutdown=10)
"""


def job_body(repository_id: str) -> dict[str, Any]:
    """The job the loads read and edit."""
    return {
        "name": "test_job",
        "repositoryId": repository_id,
        "backupType": "SelectedItems",
        "selectedItems": [{"type": "User", "user": {"id": "u1"}, "mailbox": True}],
    }


def seed_body(proxy_id: str, repository_id: str) -> dict[str, Any]:
    """Seed 003's example body, its ids those of this server."""
    return {
        "id": "e1714f5b-e51b-496b-9e46-e7bf979aa6d6",
        "name": "test_job",
        "description": "",
        "lastRun": "2017-06-06T15:18:22.6664413Z",
        "nextRun": "2017-06-13T15:00:00Z",
        "isEnabled": True,
        "backupType": "SelectedItems",
        "lastStatus": "Success",
        "schedulePolicy": {
            "backupWindowEnabled": True,
            "backupWindowSettings": {"backupWindow": [True] * 168, "minuteOffset": 0},
            "type": "Daily",
            "dailyType": "Wednesday",
            "dailyTime": "08:00:00",
            "retryEnabled": True,
            "retryNumber": 3,
            "retryWaitInterval": 10,
        },
        "proxyId": proxy_id,
        "repositoryId": repository_id,
        "isRun": "false",
    }


@dataclass(frozen=True)
class Load:
    name: str
    method: str
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    other_body: Any = None  # when set, requests alternate between body and this one

    def bodies(self) -> list[Any]:
        return [self.body] if self.other_body is None else [self.body, self.other_body]


def changing_seed_bodies(seed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The seed body with two descriptions of one length: alternated, every PUT really changes
    the job (not only its version), as a client editing it would."""
    return seed | {"description": "edited-a"}, seed | {"description": "edited-b"}


@dataclass
class Result:
    load: Load
    requests: int
    seconds: float
    non_2xx: int
    p50: float
    p99: float

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_answer(url: str, process: subprocess.Popen[bytes], wait: float = 60) -> float:
    """Seconds from now until ``url`` answers at all (any status), polling every 10 ms."""
    started = time.perf_counter()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.01)
    process.kill()
    raise SystemExit(f"{url} did not answer within {wait:g} s")


def start_server(
    data_dir: Path, port: int, wait: float = 60
) -> tuple[subprocess.Popen[bytes], float]:
    """``keepstone serve``, and the seconds from its exec to its first answer (a 401), waited
    for up to ``wait`` seconds."""
    env = os.environ | {"KEEPSTONE_ADMIN_PASSWORD": PASSWORD}
    log = (data_dir.parent / "server.log").open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from keepstone.cli import main; main()",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_answer(f"http://127.0.0.1:{port}/v2/Jobs", process, wait)
    return process, time.perf_counter() - started


def time_starts(folder: Path, port: int, count: int) -> tuple[list[float], list[float]]:
    """Seconds to the first answer of ``count`` first starts (each on a new data directory)
    and ``count`` restarts (each on the data directory its first start made), in turn."""
    first: list[float] = []
    again: list[float] = []
    for n in range(count):
        data_dir = folder / f"start-{n}" / "data"
        data_dir.parent.mkdir()
        for seconds in (first, again):
            process, started = start_server(data_dir, port)
            stop(process)
            seconds.append(started)
    return first, again


def start_bare_app(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-c", BARE_APP, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_answer(f"http://127.0.0.1:{port}/", process)
    return process


def prepare(base: str, org_dir: Path) -> list[Load]:
    """An organization and a job to edit; the loads to run against them."""
    token = httpx.post(
        f"{base}/v2/Token",
        data={"grant_type": "password", "username": "admin", "password": PASSWORD},
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    org = httpx.post(
        f"{base}/v2/Organizations",
        headers=auth,
        json={"type": "Local", "name": "bench", "localSettings": {"path": str(org_dir)}},
    ).json()
    repo = httpx.get(f"{base}/v2/BackupRepositories", headers=auth).json()[0]
    job = httpx.post(
        f"{base}/v2/Organizations/{org['id']}/Jobs",
        headers=auth,
        json=job_body(repo["id"]),
    ).json()
    proxy = httpx.get(f"{base}/v2/Proxies", headers=auth).json()[0]
    seed = seed_body(proxy["id"], repo["id"])
    one, other = changing_seed_bodies(seed)
    logon = httpx.post(f"{base}/api/sessionMngr/?v=latest", auth=("admin", PASSWORD))
    session = {"X-RestSvcSessionId": logon.headers["X-RestSvcSessionId"]}
    return [
        Load("GET /v2/Jobs without a token (401)", "GET", "/v2/Jobs"),
        Load("GET /v2/Jobs/{id}", "GET", f"/v2/Jobs/{job['id']}", headers=auth),
        Load(
            "PUT /v2/Jobs/{id} (seed 003 body)",
            "PUT",
            f"/v2/Jobs/{job['id']}",
            seed,
            headers=auth,
        ),
        Load("EM GET /api/jobs/{id} (XML)", "GET", f"/api/jobs/{job['id']}", headers=session),
        Load(
            "EM GET /api/jobs/{id} (JSON)",
            "GET",
            f"/api/jobs/{job['id']}",
            headers=session | {"Accept": "application/json"},
        ),
        Load(
            "PUT /v2/Jobs/{id} (seed body, description alternating)",
            "PUT",
            f"/v2/Jobs/{job['id']}",
            one,
            headers=auth,
            other_body=other,
        ),
    ]


async def load_with_httpx(load: Load, base: str, connections: int, seconds: float) -> Result:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    non_2xx = 0
    async with httpx.AsyncClient(
        base_url=base, headers=load.headers, limits=limits, timeout=30
    ) as client:
        stop_at = time.perf_counter() + seconds

        bodies = load.bodies()

        async def worker() -> None:
            nonlocal non_2xx
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                body = bodies[len(latencies) % len(bodies)]
                response = await client.request(load.method, load.path, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                non_2xx += not response.is_success

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return Result(
        load,
        len(ordered),
        elapsed,
        non_2xx,
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    )


WRK_SCRIPT = """
wrk.method = "%(method)s"
wrk.headers["Content-Type"] = "application/json"
%(headers)s
%(body)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _wrk_body(load: Load) -> str:
    """The Lua that sets the body: one for every request, or two in turn."""
    if load.body is None:
        return ""
    if load.other_body is None:
        return f"wrk.body = [[{json.dumps(load.body)}]]"
    bodies = ", ".join(f"[[{json.dumps(body)}]]" for body in load.bodies())
    return (
        f"local bodies = {{{bodies}}}\nlocal sent = 0\n"
        "request = function()\n  sent = sent + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[sent % #bodies + 1])\nend"
    )


def load_with_wrk(load: Load, base: str, connections: int, seconds: float) -> Result:
    script = WRK_SCRIPT % {
        "method": load.method,
        "headers": "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in load.headers.items()),
        "body": _wrk_body(load),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "-s",
                lua.name,
                f"{base}{load.path}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    requests, duration_us, p50_us, p99_us, non_2xx = (int(f) for f in line.split()[1:])
    return Result(load, requests, duration_us / 1e6, non_2xx, p50_us / 1000, p99_us / 1000)


def measure(load: Load, base: str, connections: int, seconds: float) -> Result:
    if shutil.which("wrk"):
        return load_with_wrk(load, base, connections, seconds)
    return asyncio.run(load_with_httpx(load, base, connections, seconds))


def table(pairs: list[tuple[Result, Result]]) -> str:
    lines = [
        "| request | req/s | p50 ms | p99 ms | non-2xx | bare app req/s, just before | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.load.name} | {r.throughput:,.0f} | {r.p50:.1f} | {r.p99:.1f} | {r.non_2xx} "
        f"| {floor.throughput:,.0f} | {r.throughput / floor.throughput:.2f} |"
        for floor, r in pairs
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--starts", type=int, default=5, help="starts of each kind timed")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    if args.starts < 1:
        parser.error("--starts must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, org_dir = Path(tmp) / "data", Path(tmp) / "org"
        org_dir.mkdir()
        port, bare_port = free_port(), free_port()
        first_starts, restarts = time_starts(Path(tmp), port, args.starts)
        server, _seconds = start_server(data_dir, port)
        bare = start_bare_app(bare_port)
        try:
            base = f"http://127.0.0.1:{port}"
            floor = Load("bare Starlette app (the floor)", "GET", "/")
            # The floor is measured just before each row: on a shared machine the load of the
            # moment moves both alike, and their ratio is what is compared.
            pairs = [
                (
                    measure(floor, f"http://127.0.0.1:{bare_port}", args.connections, args.seconds),
                    measure(load, base, args.connections, args.seconds),
                )
                for load in prepare(base, org_dir)
            ]
        finally:
            stop(bare)
            stop(server)
    load_average = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    get, put, changing = pairs[1][1], pairs[2][1], pairs[5][1]

    def ratio(row: int) -> float:
        floor_result, result = pairs[row]
        return result.throughput / floor_result.throughput

    generator = "wrk (Debian, one thread)" if shutil.which("wrk") else "httpx"
    report = (
        f"`bench/api.py --seconds {args.seconds:g} --connections {args.connections}` on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, one `keepstone serve` "
        f"process (SQLite, plain HTTP on loopback), load generated by {generator} in a second "
        f"process on the same machine; the bare app is its own process, loaded just before each "
        f"row. Load average at the end: {load_average}.\n\n{table(pairs)}\n\n"
        f"Authenticated GET **{ratio(1):.2f}x** the bare app (aim: 0.2x); PUT "
        f"**{put.throughput / get.throughput:.2f}x** the GET (aim: 0.8x), p99 {put.p99:.1f} ms "
        f"(aim: under 50 ms); the PUT that changes the description every time "
        f"**{changing.throughput / get.throughput:.2f}x** the GET, p99 {changing.p99:.1f} ms; "
        f"the 401 path **{ratio(0):.2f}x** the bare app (aim: 0.5x); EM GET "
        f"**{ratio(3):.2f}x** (XML) and **{ratio(4):.2f}x** (JSON). The 401 row's non-2xx "
        f"column counts its 401s, as intended.\n\n"
        f"Server start to first answer (exec of `keepstone serve` to its first 401), medians of "
        f"{args.starts} each, in turn: a restart (the data directory of an earlier start) "
        f"**{statistics.median(restarts):.2f} s**, a first start (a new data directory) "
        f"**{statistics.median(first_starts):.2f} s** (aim: under 1.5 s). Each: restarts "
        f"{_seconds_list(restarts)}; first starts {_seconds_list(first_starts)}."
    )
    print(report)
    if args.write:
        write_section(args.write, SECTION, report)


def _seconds_list(seconds: list[float]) -> str:
    return ", ".join(f"{s:.2f}" for s in seconds)


if __name__ == "__main__":
    main()
