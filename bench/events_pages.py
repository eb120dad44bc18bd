"""A restore session's events paged, old code against new, in alternating pairs.

    uv run --locked python bench/events_pages.py pairs --base TREE [--rounds 4] [--repeat 20]
                                                       [--events 100000]

``TREE`` is another checkout (``git worktree add --detach TREE <commit>``, then ``uv sync
--locked`` in it). For each of the two trees and each catalog (SQLite, and a database of one
private PostgreSQL cluster) a catalog is built holding one restore session of ``--events``
events (tests/listing_rows.py, as bench/listings.py builds them), by that tree's own code.
Then, ``--rounds`` times, each catalog is measured with the base tree and then this one: a
``keepstone serve`` of that tree over its catalog, ``/v8/RestoreSessions/{id}/Events``'s first,
middle and last page (limit 30, no setId: each request pins and counts the set) asked
``--repeat`` times each after 3 unmeasured asks, reporting the median wall time and the CPU time
per request of the server and, on PostgreSQL, of the cluster's processes (from /proc: the
catalog's work is done there). Each side runs as ``uv run --locked python bench/events_pages.py
side ...`` in its tree, so it imports that tree's code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PAGE, WARM = 30, 3
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
HERE = Path(__file__).resolve()


# ----- one side, in its own tree -----


def build(work: Path, database: str | None, events: int) -> None:
    from tests import listing_rows as rows

    import listings
    from keepstone.server import open_context
    from keepstone.services import restore_points

    data = work / "data"
    org, repo, job = listings.first_job(work, data, database)
    ctx = open_context(data, database=database)
    rows.add_points(ctx, repo, org, [job], 1)
    point = restore_points.list_points(ctx)[0].id
    [session] = rows.add_restore_sessions(ctx, point, org, 1)
    rows.add_events(ctx, session, events)
    if database is not None:
        listings.settle(ctx)
    ctx.db.dispose()
    (work / "built.json").write_text(json.dumps({"session": session, "events": events}))


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """utime + stime of each process still there."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = int(fields[11]) + int(fields[12])
    return found


def family(pid: int) -> list[int]:
    """A process and its descendants."""
    pids, todo = [], [pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return pids


def measure(work: Path, database: str | None, postmaster: int | None, repeat: int) -> None:
    import httpx
    from tests import process_helpers as processes

    import listings

    built = json.loads((work / "built.json").read_text())
    path = f"/v8/RestoreSessions/{built['session']}/Events"
    server = listings.serve(work, work / "data", database)

    def watched() -> list[int]:
        return family(server.process.pid) + (family(postmaster) if postmaster else [])

    out: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=server.base_url, timeout=600) as client:
            token = processes.login(client, "admin", listings.PASSWORD)
            client.headers.update(processes.bearer(token))

            def ask(offset: int) -> None:
                response = client.get(path, params={"offset": offset, "limit": PAGE})
                assert response.status_code == 200, response.text
                page = response.json()
                assert page["totalCount"] == built["events"] and len(page["results"]) == PAGE

            total = built["events"]
            for name, offset in (("first", 0), ("middle", total // 2), ("last", total - PAGE)):
                for _ in range(WARM):
                    ask(offset)
                before, walls = cpu_ticks(watched()), []
                for _ in range(repeat):
                    started = time.perf_counter()
                    ask(offset)
                    walls.append((time.perf_counter() - started) * 1000)
                after = cpu_ticks(watched())
                cpu = sum(after[p] - before.get(p, 0) for p in after) * TICK_MS / repeat
                out[name] = {"wall_ms": statistics.median(walls), "cpu_ms": cpu}
    finally:
        server.stop()
    out["load"] = os.getloadavg()[0]
    print(json.dumps(out))


# ----- the pairs, from this tree -----


def side(tree: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    done = subprocess.run(
        ["uv", "run", "--locked", "python", str(HERE), "side", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{tree} {args}: {done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def pairs(base: Path, rounds: int, repeat: int, events: int, work: Path) -> list[dict[str, Any]]:
    from tests.postgres_server import PostgresServer, binaries

    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL's server binaries are missing (apt-get install postgresql)")
    trees = {"base": base, "new": HERE.parent.parent}
    cluster = PostgresServer(bin_dir)
    cluster.init()
    cluster.start()
    results = []
    try:
        postmaster = (cluster.data / "postmaster.pid").read_text().split()[0]
        urls = {name: cluster.url(cluster.create_database()) for name in trees}
        for name, tree in trees.items():
            side(tree, "build", str(work / f"{name}-sqlite"), "-", str(events))
            side(tree, "build", str(work / f"{name}-postgresql"), urls[name], str(events))
        for round_ in range(rounds):
            for kind in ("sqlite", "postgresql"):
                for name, tree in trees.items():
                    url, pm = (urls[name], postmaster) if kind == "postgresql" else ("-", "0")
                    at = str(work / f"{name}-{kind}")
                    measured = json.loads(side(tree, "measure", at, url, pm, str(repeat)))
                    result = {"round": round_, "kind": kind, "side": name} | measured
                    print(json.dumps(result), flush=True)
                    results.append(result)
    finally:
        cluster.destroy()
    return results


def table(results: list[dict[str, Any]]) -> str:
    """Medians over the rounds: wall ms / CPU ms per request, per catalog, page and side."""
    lines = [
        "| catalog | code | first page (ms wall / CPU) | middle page | last page | load |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for kind in ("sqlite", "postgresql"):
        for name in ("base", "new"):
            runs = [r for r in results if r["kind"] == kind and r["side"] == name]
            cells = [
                f"{statistics.median(r[p]['wall_ms'] for r in runs):.1f} / "
                f"{statistics.median(r[p]['cpu_ms'] for r in runs):.1f}"
                for p in ("first", "middle", "last")
            ]
            loads = ", ".join(f"{r['load']:.1f}" for r in runs)
            lines.append(f"| {kind} | {name} | {' | '.join(cells)} | {loads} |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["side"]:
        sys.path[:0] = [str(Path.cwd()), str(Path.cwd() / "bench")]  # the tree it runs in
        mode, work, url = sys.argv[2], Path(sys.argv[3]), sys.argv[4]
        work.mkdir(parents=True, exist_ok=True)
        database = None if url == "-" else url
        if mode == "build":
            build(work, database, int(sys.argv[5]))
        else:
            postmaster = int(sys.argv[5]) or None
            measure(work, database, postmaster, int(sys.argv[6]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["pairs"])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent.parent))
    with tempfile.TemporaryDirectory(prefix="events-pages-") as work:
        results = pairs(args.base.resolve(), args.rounds, args.repeat, args.events, Path(work))
    print(table(results))


if __name__ == "__main__":
    main()
