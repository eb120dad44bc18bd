"""API benchmark: PUT /v2/Jobs/{id} with the seed 003 body at 16 concurrent connections, beside
the same server's cheapest authenticated GET as its ceiling, in one run against `keepstone serve`.

    uv run python bench/api.py [--seconds 10] [--connections 16] [--write docs/benchmarks.md]

Prints a table and, with --write, replaces the "API" section of docs/benchmarks.md.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from common import write_section

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "benchmark-password"
WEEK = [True] * 168
SEED_BODY: dict[str, Any] = {
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
        "backupWindowSettings": {"backupWindow": WEEK, "minuteOffset": 0},
        "type": "Daily",
        "dailyType": "Wednesday",
        "dailyTime": "08:00:00",
        "retryEnabled": True,
        "retryNumber": 3,
        "retryWaitInterval": 10,
    },
    "isRun": "false",
}


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    @property
    def p50(self) -> float:
        return self.p50_ms if self.p50_ms is not None else statistics.median(self.latencies_ms)

    @property
    def p99(self) -> float:
        if self.p99_ms is not None:
            return self.p99_ms
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"KEEPSTONE_ADMIN_PASSWORD": PASSWORD}
    log = (data_dir.parent / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from keepstone.cli.main import app; app()",
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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/swagger/openapi.json", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def prepare(base: str, org_dir: Path) -> tuple[dict[str, str], str, str]:
    token = httpx.post(
        f"{base}/v2/Token",
        data={"grant_type": "password", "username": "admin", "password": PASSWORD},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    org = httpx.post(
        f"{base}/v2/Organizations",
        headers=headers,
        json={"type": "Local", "name": "bench", "localSettings": {"path": str(org_dir)}},
    ).json()
    repo = httpx.get(f"{base}/v2/BackupRepositories", headers=headers).json()[0]
    job = httpx.post(
        f"{base}/v2/Organizations/{org['id']}/Jobs",
        headers=headers,
        json={
            "name": "test_job",
            "repositoryId": repo["id"],
            "backupType": "SelectedItems",
            "selectedItems": [{"type": "User", "user": {"id": "u1"}, "mailbox": True}],
        },
    ).json()
    proxy = httpx.get(f"{base}/v2/Proxies", headers=headers).json()[0]
    body = SEED_BODY | {"proxyId": proxy["id"], "repositoryId": repo["id"]}
    SEED_BODY.update(body)
    return headers, job["id"], proxy["id"]


async def load(
    name: str,
    base: str,
    headers: dict[str, str],
    method: str,
    path: str,
    body: Any,
    connections: int,
    seconds: float,
) -> Result:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=30
    ) as client:
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = await client.request(method, path, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return Result(name, len(latencies), elapsed, latencies, errors)


WRK_SCRIPT = """
wrk.method = "%(method)s"
%(authorization)s
wrk.headers["Content-Type"] = "application/json"
%(body)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def load_with_wrk(
    name: str,
    base: str,
    headers: dict[str, str],
    method: str,
    path: str,
    body: Any,
    connections: int,
    seconds: float,
) -> Result:
    """wrk (Debian) drives the load from C, so the Python server, not the client, is measured."""
    script = WRK_SCRIPT % {
        "method": method,
        "authorization": (
            f'wrk.headers["Authorization"] = "{headers["Authorization"]}"'
            if "Authorization" in headers
            else ""
        ),
        "body": f"wrk.body = [[{json.dumps(body)}]]" if body is not None else "",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", lua.name, f"{base}{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    fields = next(line for line in out.splitlines() if line.startswith("RESULT")).split()[1:]
    requests, duration_us, p50_us, p99_us, errors = (int(f) for f in fields)
    # wrk reports percentiles, not samples: keep them as a two-point latency list.
    return Result(
        name,
        requests,
        duration_us / 1e6,
        [p50_us / 1000, p99_us / 1000],
        errors,
        p50_ms=p50_us / 1000,
        p99_ms=p99_us / 1000,
    )


def table(results: list[Result], ceiling: Result) -> str:
    lines = [
        "| request | req/s | p50 ms | p99 ms | non-2xx | vs ceiling |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.throughput:,.0f} | {r.p50:.1f} | {r.p99:.1f} | {r.errors} | "
            f"{r.throughput / ceiling.throughput:.2f} |"
        )
    return "\n".join(lines)


def measure(
    name: str,
    base: str,
    headers: dict[str, str],
    method: str,
    path: str,
    body: Any,
    connections: int,
    seconds: float,
) -> Result:
    if shutil.which("wrk"):
        return load_with_wrk(name, base, headers, method, path, body, connections, seconds)
    return asyncio.run(load(name, base, headers, method, path, body, connections, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, org_dir = Path(tmp) / "data", Path(tmp) / "org"
        org_dir.mkdir()
        port = free_port()
        server = start_server(data_dir, port)
        try:
            base = f"http://127.0.0.1:{port}"
            headers, job_id, proxy_id = prepare(base, org_dir)
            runs = [
                ("GET /v2/Jobs without a token (401)", "GET", "/v2/Jobs", None),
                ("GET /v2/Proxies/{id}", "GET", f"/v2/Proxies/{proxy_id}", None),
                ("GET /v2/Jobs/{id}", "GET", f"/v2/Jobs/{job_id}", None),
                ("PUT /v2/Jobs/{id} (seed 003 body)", "PUT", f"/v2/Jobs/{job_id}", SEED_BODY),
            ]
            results = [
                measure(
                    name,
                    base,
                    {} if "401" in name else headers,
                    method,
                    path,
                    body,
                    args.connections,
                    args.seconds,
                )
                for name, method, path, body in runs
            ]
        finally:
            server.terminate()
            server.wait(10)
    floor, gets, put = results[0], results[1:3], results[3]
    ceiling = max(gets, key=lambda r: r.throughput)
    generator = "wrk (Debian, one thread)" if shutil.which("wrk") else "httpx"
    report = (
        f"`bench/api.py --seconds {args.seconds:g} --connections {args.connections}` on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, one `keepstone serve` "
        f"process (SQLite, plain HTTP on loopback), load generated by {generator} in a second "
        f"process on the same machine.\n\n{table(results, ceiling)}\n\n"
        f"PUT throughput is **{put.throughput / ceiling.throughput:.2f}x** the cheapest "
        f"authenticated GET (aim: at least 0.5x); PUT p99 **{put.p99:.1f} ms** "
        f"(aim: under 50 ms). The first row is the stack's own floor: a request refused before "
        f"any database work (its non-2xx column counts the 401s, as intended) still sees a p99 "
        f"of {floor.p99:.1f} ms at {floor.throughput:,.0f} req/s on this machine."
    )
    print(report)
    if args.write:
        write_section(args.write, "API: PUT /v2/Jobs/{id} against the GET ceiling", report)


if __name__ == "__main__":
    main()
