"""Scale-out benchmark: what the control plane costs when Keepstone grows past one process.

    uv run python bench/scale.py [--scale 0.05] [--latency-ms 40] [--jobs 20] [--threads 1]
        [--seconds 10] [--workdir DIR] [--keep] [--write docs/benchmarks.md]

Everything runs on this machine, on loopback: a private PostgreSQL (the catalog), two
``keepstone serve`` on it (``tests/cluster.py``), three ``keepstone proxy`` processes registered
with one-time tokens and put in one v8 proxy pool, and ``rclone serve s3`` (objects on disk) as
the object storage. The organization is the backup benchmark's (``bench/orggen.py``), split into
``--jobs`` jobs of disjoint users. Three measures, each in one run:

1. **Backup throughput with 1, 2 and 3 proxies.** For each count, a fresh pool-owned repository
   and fresh jobs; the proxies beyond the count are in maintenance (they claim nothing). A remote
   proxy reads its sources over a network, so each proxy models that data path with a fixed
   latency per item it reads (``KEEPSTONE_BENCH_SOURCE_LATENCY_MS``): the aim is that the data
   path, not the control plane (claims, renewals, progress, logs, restore points through the
   server), limits — 3 proxies at least 2.5 times one proxy's items/s.
2. **API GETs per second, two servers against one**: ``wrk`` on ``GET /v8/Jobs`` (a page of the
   jobs, bearer token) against one server, then against both at once.
3. **The S3 repository's initial backup against the local repository's**: the whole
   organization in one job on one server's built-in proxy (no modelled latency), into a local
   repository and into an S3 one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SCRIPT_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPT_DIR.parent))  # the tests' harnesses: cluster, proxies, servers

from tests import process_helpers as processes  # noqa: E402
from tests.cluster import Cluster, Node, Timings, wait_for  # noqa: E402
from tests.postgres_server import PostgresServer, binaries  # noqa: E402
from tests.proxy_process import ProxyProcess, start_proxy  # noqa: E402
from tests.s3_server import (  # noqa: E402
    RcloneServer,
    account_body,
    new_store,
    running_rclone,
    storage_body,
)

import orggen  # noqa: E402
from common import write_section  # noqa: E402
from keepstone.proxy.backup import SOURCE_LATENCY_ENV  # noqa: E402

TITLE = "Scale-out: proxies, servers and S3"
SEED = 20261203
PROXIES = ("p1", "p2", "p3")
RUN_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Config:
    scale: float
    latency_ms: float
    jobs: int
    threads: int
    seconds: float


@dataclass
class Backup:
    """One measured backup: the items its sessions processed, wall time to the last end."""

    items: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds


class Api:
    """A logged-on v8 client of one server."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._client = node.client(timeout=120.0)
        self.http: httpx.Client = self._client.__enter__()

    def close(self) -> None:
        self._client.__exit__(None, None, None)

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 300 and response.status_code not in ok:
            raise SystemExit(f"{method} {path}: {response.status_code} {response.text[:400]}")
        return response.json() if response.content else None

    def rows(self, path: str) -> list[dict[str, Any]]:
        body = self.call("GET", path)
        return list(body["results"] if isinstance(body, dict) else body)

    @property
    def token(self) -> str:
        return str(self.http.headers["Authorization"]).split(" ", 1)[1]


# ----- the installation -----


@contextmanager
def postgres(work: Path) -> Iterator[str]:
    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL's server binaries are missing (apt-get install postgresql)")
    server = PostgresServer(bin_dir)
    server.init()
    server.start()
    try:
        yield server.url(server.create_database())
    finally:
        server.destroy()


def register_proxies(
    cluster: Cluster, api: Api, work: Path, latency_ms: float, stack: ExitStack
) -> dict[str, str]:
    """Start the remote proxies (each with its modelled source latency); name -> proxy id."""
    env = processes.process_env(KEEPSTONE_DATABASE=cluster.url)
    proxy_env = processes.process_env() | {SOURCE_LATENCY_ENV: f"{latency_ms:g}"}
    started: list[ProxyProcess] = []
    for name in PROXIES:
        token = processes.run_cli("admin", "proxy-token", env=env)
        if token.returncode != 0:
            raise SystemExit(f"admin proxy-token: {token.stderr}")
        proxy = start_proxy(
            work / "logs",
            cluster[0].base_url,
            name,
            token.stdout.strip(),
            work / "proxy-state" / name,
            env=proxy_env,
        )
        stack.callback(proxy.stop)
        started.append(proxy)
    by_name = {p["hostName"]: p["id"] for p in api.rows("/v8/Proxies")}
    return {name: by_name[name] for name in PROXIES}


def set_threads(api: Api, proxy_id: str, threads: int) -> None:
    api.call("PUT", f"/v7/Proxies/{proxy_id}", {"threadsNumber": threads})


def set_maintenance(api: Api, proxy_id: str, on: bool) -> None:
    api.call("POST", f"/v8/Proxies/{proxy_id}/maintenance/{'enable' if on else 'disable'}")


# ----- jobs and their runs -----


def organization(api: Api, root: Path) -> str:
    body = {"type": "Local", "name": "scale.bench", "localSettings": {"path": str(root)}}
    return str(api.call("POST", "/v2/Organizations", body)["id"])


def jobs_over(
    api: Api, org_id: str, repo_id: str, users: list[str], count: int, tag: str
) -> list[str]:
    """``count`` manual jobs of disjoint users (round robin) on the repository."""
    ids = []
    for n in range(count):
        chosen = users[n::count]
        body = {
            "name": f"{tag}-{n}",
            "repositoryId": repo_id,
            "backupType": "SelectedItems",
            "selectedItems": [
                {"type": "User", "user": {"name": u}, "mailbox": True, "oneDrive": True}
                for u in chosen
            ],
            "schedulePolicy": {"type": "ManualOnly"},
        }
        ids.append(str(api.call("POST", f"/v2/Organizations/{org_id}/Jobs", body)["id"]))
    return ids


def run_all(api: Api, job_ids: list[str]) -> Backup:
    """Start every job at once; wait for every session to end; totals from the sessions."""
    started = time.monotonic()
    for job_id in job_ids:
        api.call("POST", f"/v8/Jobs/{job_id}/start")

    def ended() -> list[dict[str, Any]] | None:
        sessions = [latest_session(api, job_id) for job_id in job_ids]
        if all(s is not None and s["status"] not in ("Queued", "Running") for s in sessions):
            return [s for s in sessions if s is not None]
        return None

    sessions = wait_for(ended, "every job's session to end", RUN_TIMEOUT, pause=0.2)
    seconds = time.monotonic() - started
    failed = [s for s in sessions if s["status"] not in ("Success", "Warning")]
    if failed:
        raise SystemExit(f"runs failed: {[(s['status'], s.get('details')) for s in failed]}")
    stats = [s.get("statistics") or {} for s in sessions]
    return Backup(items=sum(int(s.get("processedObjects", 0)) for s in stats), seconds=seconds)


def latest_session(api: Api, job_id: str) -> dict[str, Any] | None:
    rows = api.rows(f"/v8/JobSessions?jobId={job_id}&limit=1")
    return rows[0] if rows else None


# ----- the three measures -----


def proxy_scaling(
    api: Api, config: Config, org_id: str, users: list[str], proxies: dict[str, str], work: Path
) -> dict[int, Backup]:
    ids = list(proxies.values())
    for proxy_id in ids:
        set_threads(api, proxy_id, config.threads)
    pool = api.call(
        "POST",
        "/v8/ProxyPools",
        {"name": "bench", "description": "", "proxyIds": [{"proxyId": i} for i in ids]},
    )
    results: dict[int, Backup] = {}
    for count in (1, 2, 3):
        for n, proxy_id in enumerate(ids):
            set_maintenance(api, proxy_id, n >= count)
        repo = api.call(
            "POST",
            "/v8/BackupRepositories",
            {
                "name": f"pool-{count}",
                "path": str(work / f"pool-{count}"),
                "proxyPoolId": pool["id"],
            },
        )
        job_ids = jobs_over(api, org_id, repo["id"], users, config.jobs, f"p{count}")
        results[count] = run_all(api, job_ids)
        print(f"{count} proxies: {results[count].items_per_second:.0f} items/s", flush=True)
    for proxy_id in ids:
        set_maintenance(api, proxy_id, False)
    return results


def api_throughput(cluster: Cluster, api_a: Api, api_b: Api, seconds: float) -> tuple[float, float]:
    """GET /v8/Jobs per second: one server alone, then both at once (summed)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing (apt-get install wrk)")
    one = sum(wrk([(cluster[0].base_url, api_a.token)], seconds))
    two = sum(
        wrk([(cluster[0].base_url, api_a.token), (cluster[1].base_url, api_b.token)], seconds)
    )
    return one, two


def wrk(targets: list[tuple[str, str]], seconds: float) -> list[float]:
    def command(base: str, token: str) -> list[str]:
        header = f"Authorization: Bearer {token}"
        return ["wrk", "-t1", "-c8", f"-d{seconds:g}s", "-H", header, f"{base}/v8/Jobs?limit=30"]

    running = [
        subprocess.Popen(command(base, token), stdout=subprocess.PIPE, text=True)
        for base, token in targets
    ]
    rates = []
    for process in running:
        out, _ = process.communicate()
        line = next(line for line in out.splitlines() if line.startswith("Requests/sec"))
        if "Non-2xx" in out:
            raise SystemExit(f"wrk saw errors:\n{out}")
        rates.append(float(line.split()[1]))
    return rates


def s3_against_local(
    api: Api, s3: RcloneServer, org_id: str, users: list[str], work: Path
) -> tuple[Backup, Backup]:
    """One job of the whole organization on this server's built-in proxy: local, then S3."""
    local_proxy = next(
        p["id"] for p in api.rows("/v8/Proxies") if p["type"] == "Local" and p["status"] == "Online"
    )
    local = api.call(
        "POST",
        "/v8/BackupRepositories",
        {"name": "local", "path": str(work / "local"), "proxyId": local_proxy},
    )
    bucket = new_store(s3.url).location.bucket
    account = api.call("POST", "/v8/Accounts", account_body())
    storage = storage_body(s3.url, bucket, account["id"], "bench")
    in_s3 = api.call(
        "POST",
        "/v6/BackupRepositories",
        {
            "name": "s3",
            "path": str(work / "s3-cache"),
            "proxyId": local_proxy,
            "objectStorageId": api.call("POST", "/v6/objectstoragerepositories", storage)["id"],
        },
    )
    on_disk = run_all(api, jobs_over(api, org_id, local["id"], users, 1, "local"))
    on_s3 = run_all(api, jobs_over(api, org_id, in_s3["id"], users, 1, "s3"))
    return on_disk, on_s3


# ----- the report -----


def report(config: Config, org: orggen.OrgStats, scaling: dict[int, Backup],
           gets: tuple[float, float], storage: tuple[Backup, Backup]) -> str:  # fmt: skip
    one = scaling[1].items_per_second
    rows = "\n".join(
        f"| {count} | {b.items:,} | {b.seconds:.1f} | {b.items_per_second:.0f} | "
        f"{b.items_per_second / one:.2f}x |"
        for count, b in scaling.items()
    )
    ratio3 = scaling[3].items_per_second / one
    disk, s3 = storage
    disk_mb, s3_mb = (org.total_bytes / b.seconds / 1e6 for b in storage)
    return f"""
Run on {time.strftime("%Y-%m-%d")} by `bench/scale.py --scale {config.scale:g} --latency-ms
{config.latency_ms:g} --jobs {config.jobs} --threads {config.threads}` on this machine
({os.cpu_count()} cores): PostgreSQL, two `keepstone serve`, three `keepstone proxy` in one v8
pool and `rclone serve s3`, all on loopback. The organization: {len(org.users)} users,
{org.items:,} items, {org.total_bytes / 1e6:.0f} MB, split into {config.jobs} jobs.

**Backup with 1, 2 and 3 proxies** (each proxy working {config.threads} run(s) at once, reading
each item after a modelled {config.latency_ms:g} ms source latency; a fresh pool-owned repository
per row; the proxies beyond the count in maintenance). With {config.jobs} equal jobs the best
possible ratios are {ideal(config, 2):.2f}x and {ideal(config, 3):.2f}x (whole jobs per proxy):

| proxies | items | seconds | items/s | vs one proxy |
|---|---|---|---|---|
{rows}

Aim: 3 proxies ≥ 2.5x one proxy — **{"met" if ratio3 >= 2.5 else "not met"}** ({ratio3:.2f}x;
what is missing to the best possible ratio is the control plane's cost: claims, renewals,
progress, logs and restore points through a server).

**API reads** (`wrk -c8`, `GET /v8/Jobs?limit=30` with a bearer token, {config.seconds:g} s):
one server {gets[0]:.0f} req/s; two servers on the same catalog {gets[1]:.0f} req/s together
(**{gets[1] / gets[0]:.2f}x**; both share this machine's {os.cpu_count()} cores with
PostgreSQL, so the ratio shows that the servers do not serialise on the catalog, not what two
machines would give).

**S3 against local** (the whole organization in one job on a server's built-in proxy, no
modelled latency): local repository {disk.items_per_second:.0f} items/s
({disk_mb:.1f} MB/s), S3 (`rclone serve s3` on the same disk)
{s3.items_per_second:.0f} items/s ({s3_mb:.1f} MB/s): **{s3.seconds / disk.seconds:.2f}x**
the local repository's time.
"""


def ideal(config: Config, proxies: int) -> float:
    """The speed-up whole jobs allow: rounds of runs one proxy needs over rounds ``proxies``
    need (a job runs on one proxy)."""
    one = -(-config.jobs // config.threads)
    return one / -(-config.jobs // (config.threads * proxies))


@contextmanager
def workspace(parent: Path | None, keep: bool) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="keepstone-scale-", dir=parent))
    try:
        yield work
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    config = Config(args.scale, args.latency_ms, args.jobs, args.threads, args.seconds)
    with workspace(args.workdir, args.keep) as work, ExitStack() as stack:
        org_root = work / "org"
        stats = orggen.Organization(org_root, config.scale, SEED).write()
        url = stack.enter_context(postgres(work))
        s3 = stack.enter_context(running_rclone(work / "s3"))
        cluster = stack.enter_context(
            Cluster(work / "cluster", url, 2, Timings(lease=15.0, idle_in_transaction=30.0))
        )
        api_a, api_b = Api(cluster[0]), Api(cluster[1])
        stack.callback(api_a.close)
        stack.callback(api_b.close)
        proxies = register_proxies(cluster, api_a, work, config.latency_ms, stack)
        org_id = organization(api_a, org_root)
        users = list(stats.users)
        scaling = proxy_scaling(api_a, config, org_id, users, proxies, work)
        gets = api_throughput(cluster, api_a, api_b, config.seconds)
        storage = s3_against_local(api_a, s3, org_id, users, work)
        text = report(config, stats, scaling, gets, storage)
    print(text)
    if args.write:
        write_section(args.write, TITLE, text)


if __name__ == "__main__":
    main()
