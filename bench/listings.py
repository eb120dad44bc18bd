"""Listings at scale: every list endpoint's first, middle and last page, and opening a restore
session on a large restore point, against a real `keepstone serve` over a catalog filled in bulk.

    uv run python bench/listings.py [--scale 0.1] [--database postgresql://...] [--postgres]
                                    [--repeat 5] [--write docs/benchmarks.md]

At ``--scale 1``: 10,000 jobs, 1,000,000 job sessions, 100,000 log items in one session,
10,000 restore points and restore sessions, 100,000 events in one restore session, and a real
restore point of 1,000,000 items (100 mailboxes of 10 folders) written by the engine. Jobs,
sessions, log items, points, restore sessions and events are inserted directly into the catalog
(bulk INSERTs); the restore point goes through the engine's writer like a backup's.

Each listing is asked ``--repeat`` times for its first, middle and last page (limit 30, no
setId: each counts the set again); the median is reported. The middle page is the deepest any
window reads (one past the middle is read from the set's end). ``/v8/JobSessions`` is also
walked within one set (``setId``): its second, middle and last pages, each asked after the page
before it, so the catalog continues from that page's last row (keyset). Opening is
``POST /v8/Organizations/{id}/explore`` and then the first browse (the mailboxes, the first
mailbox's folders, the first folder's first page); the server's peak RSS is read from /proc
before and after. ``--postgres`` starts a private PostgreSQL
(tests/postgres_server.py); ``--database`` uses the one given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import listing_rows as rows  # noqa: E402
from tests import process_helpers as processes  # noqa: E402

from common import write_section  # noqa: E402
from keepstone.engine import Item  # noqa: E402
from keepstone.server import open_context  # noqa: E402
from keepstone.services import restore_points  # noqa: E402
from keepstone.services.context import Context  # noqa: E402
from keepstone.services.vault import open_repository  # noqa: E402
from keepstone.store.tables import Job, Repository  # noqa: E402
from scale import postgres as private_postgres  # noqa: E402

TITLE = "Listings at scale"
PASSWORD = "benchmark-password"
PAGE = 30
FULL = {
    "jobs": 10_000,
    "sessions": 1_000_000,
    "log_items": 100_000,
    "points": 10_000,
    "restore_sessions": 10_000,
    "events": 100_000,
    "items": 1_000_000,
}
MAILBOXES, FOLDERS = 100, 10


@dataclass(frozen=True)
class Sizes:
    jobs: int
    sessions: int
    log_items: int
    points: int
    restore_sessions: int
    events: int
    items: int

    @classmethod
    def at(cls, scale: float) -> Sizes:
        return cls(**{k: max(1, int(v * scale)) for k, v in FULL.items()})


@dataclass(frozen=True)
class Built:
    org_id: str
    big_session: str
    big_job: str
    events_session: str
    seconds: float
    point_seconds: float


# ----- the catalog, filled in bulk -----


def build(ctx: Context, org_id: str, template_id: str, sizes: Sizes) -> Built:
    started = time.monotonic()
    with ctx.db.read() as s:
        template = s.get(Job, template_id)
        assert template is not None
        repo = s.get(Repository, template.repository_id)
        assert repo is not None
        repo_id, repo_path = repo.id, repo.path
    job_ids = [template_id, *rows.copies_of_job(ctx, template_id, sizes.jobs - 1)]
    session_ids = rows.add_sessions(ctx, job_ids, sizes.sessions)
    big = session_ids[-1]  # the newest: the first row of every session listing
    rows.add_log_items(ctx, big, sizes.log_items)
    point_started = time.monotonic()
    real_point = synthesize_point(ctx, repo_id, repo_path, org_id, template_id, sizes.items)
    point_seconds = time.monotonic() - point_started
    rows.add_points(ctx, repo_id, org_id, job_ids, sizes.points - 1)
    restore_ids = rows.add_restore_sessions(ctx, real_point, org_id, sizes.restore_sessions)
    rows.add_events(ctx, restore_ids[-1], sizes.events)
    return Built(
        org_id,
        big,
        job_ids[(len(session_ids) - 1) % len(job_ids)],
        restore_ids[-1],
        time.monotonic() - started,
        point_seconds,
    )


def settle(ctx: Context) -> None:
    """What autovacuum does to a PostgreSQL catalog soon after a bulk load: statistics for the
    planner, and the visibility map that lets an index alone answer (a page's ids, a count)."""
    with ctx.db._writer.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def synthesize_point(
    ctx: Context, repo_id: str, repo_path: str, org_id: str, job_id: str, count: int
) -> str:
    """A real restore point of ``count`` messages (each with its own content) written by the
    engine, recorded in the catalog as a backup run records its point."""
    repository = open_repository(ctx, repo_id, repo_path)
    tags = {restore_points.TAG_JOB: job_id, restore_points.TAG_ORGANIZATION: org_id}
    with repository.writer(tags) as writer:
        for n in range(count):
            # As a backup adds them: mailbox by mailbox, folder by folder.
            per_mailbox = -(-count // MAILBOXES)
            user = f"user{n // per_mailbox:03d}@bench.example"
            folder = f"Inbox/Folder {n % per_mailbox * FOLDERS // per_mailbox}"
            content = f"Subject: message {n}\r\n\r\nbody of message {n}\r\n".encode()
            chunks, size, _stored = writer.add_file(content)
            writer.add_item(
                Item(
                    key=f"{user}/{n}",
                    user=user,
                    kind="mail",
                    path=folder,
                    size=size,
                    mtime=float(n),
                    mode=0o600,
                    meta={"subject": f"message {n}"},
                    chunks=chunks,
                )
            )
        snapshot = writer.commit()
    info = next(i for i in repository.snapshots() if i.id == snapshot)
    facts = restore_points.SnapshotFacts(
        snapshot, info.time, info.tags, info.item_count, info.size, True, False
    )
    return restore_points.record(ctx, repo_id, facts).id


# ----- the server -----


@contextmanager
def catalog_url(database: str | None, start_postgres: bool, work: Path) -> Iterator[str | None]:
    if database is not None or not start_postgres:
        yield database
        return
    with private_postgres(work) as url:  # the scale-out benchmark's private cluster
        yield url


def serve(work: Path, data_dir: Path, database: str | None) -> processes.ServerProcess:
    env = processes.process_env(KEEPSTONE_ADMIN_PASSWORD=PASSWORD)
    args = ("--database", database) if database else ()
    return processes.start_server(work / "logs", data_dir, *args, env=env, ready_timeout=120)


def peak_rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def median_ms(repeat: int, call: Callable[[], httpx.Response]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = call()
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code >= 300:
            raise SystemExit(
                f"{response.request.url}: {response.status_code} {response.text[:300]}"
            )
    return statistics.median(times)


@dataclass(frozen=True)
class Timed:
    endpoint: str
    rows: int
    first_ms: float
    middle_ms: float
    last_ms: float


def time_vb365(client: httpx.Client, path: str, repeat: int, what: str) -> Timed:
    first = client.get(path, params={"offset": 0, "limit": PAGE})
    total = int(first.json()["totalCount"])

    def at(offset: int) -> float:
        return median_ms(repeat, lambda: client.get(path, params={"offset": offset, "limit": PAGE}))

    return Timed(what, total, at(0), at(total // 2), at(max(0, total - PAGE)))


def time_walk(client: httpx.Client, path: str, repeat: int, what: str) -> Timed:
    """Pages asked in order within one set (``setId``): each after the page before it, so the
    catalog continues from that page's last row (keyset) instead of skipping ``offset`` rows.
    Each measured page is asked after its predecessor; asking it again continues the same
    way (the set remembers where each page it served ended)."""
    first = client.get(path, params={"offset": 0, "limit": PAGE}).json()
    total, set_id = int(first["totalCount"]), first["setId"]

    def ask(offset: int) -> httpx.Response:
        return client.get(path, params={"offset": offset, "limit": PAGE, "setId": set_id})

    def after_previous(offset: int) -> float:
        ask(offset - PAGE)
        return median_ms(repeat, lambda: ask(offset))

    middle = max(PAGE, total // 2 // PAGE * PAGE)
    last = max(PAGE, (total - 1) // PAGE * PAGE)
    return Timed(what, total, after_previous(PAGE), after_previous(middle), after_previous(last))


def time_query(client: httpx.Client, kind: str, total: int, repeat: int, extra: str = "") -> Timed:
    last = max(1, -(-total // PAGE))

    def at(page: int) -> httpx.Response:
        return client.get(
            f"/api/query?type={kind}&format=Entities&pageSize={PAGE}&page={page}{extra}"
        )

    first_ms, last_ms = median_ms(repeat, lambda: at(1)), median_ms(repeat, lambda: at(last))
    middle_ms = median_ms(repeat, lambda: at(last // 2 + 1))
    shown = unquote(f"/api/query?type={kind}{extra}")
    return Timed(shown, total, first_ms, middle_ms, last_ms)


@dataclass(frozen=True)
class Opened:
    explore_ms: float
    browse_ms: float
    folder_ms: float
    rss_before: float
    peak_after: float


def open_point(client: httpx.Client, server: processes.ServerProcess, org_id: str) -> Opened:
    rss_before, _ = peak_rss_mb(server.process.pid)
    started = time.perf_counter()
    session = client.post(f"/v8/Organizations/{org_id}/explore", json={"type": "Vex"})
    assert session.status_code == 201, session.text
    explored = time.perf_counter()
    base = f"/v8/RestoreSessions/{session.json()['id']}/Organization/Mailboxes"
    owners = client.get(base, params={"limit": PAGE}).json()["results"]
    folders = client.get(f"{base}/{owners[0]['id']}/Folders", params={"limit": PAGE})
    browsed = time.perf_counter()
    folder = folders.json()["results"][-1]
    items = client.get(
        f"{base}/{owners[0]['id']}/Items", params={"folderId": folder["id"], "limit": PAGE}
    )
    assert items.status_code == 200, items.text
    done = time.perf_counter()
    _, peak = peak_rss_mb(server.process.pid)
    return Opened(
        (explored - started) * 1000,
        (browsed - started) * 1000,
        (done - browsed) * 1000,
        rss_before,
        peak,
    )


def first_job(work: Path, data_dir: Path, database: str | None) -> tuple[str, str, str]:
    """A new catalog's organization, repository and first job, made through the API of a
    server then stopped: what the rows written in bulk hang on. (organization, repository,
    job) ids."""
    server = serve(work, data_dir, database)
    try:
        with httpx.Client(base_url=server.base_url, timeout=600) as client:
            client.headers.update(processes.bearer(processes.login(client, "admin", PASSWORD)))
            (work / "org").mkdir(exist_ok=True)
            org_id = processes.add_local_organization(client, "bench", work / "org")
            repo_id = client.get("/v2/BackupRepositories").json()[0]["id"]
            return org_id, repo_id, processes.add_job(client, org_id, "job 000000", repo_id)
    finally:
        server.stop()


def build_catalog(sizes: Sizes, database: str | None, work: Path, data_dir: Path) -> Built:
    org_id, _repo_id, template = first_job(work, data_dir, database)
    ctx = open_context(data_dir, database=database)
    built = build(ctx, org_id, template, sizes)
    if database is not None:
        settle(ctx)
    ctx.db.dispose()
    return built


def run(sizes: Sizes, repeat: int, database: str | None, work: Path) -> tuple[str, Built]:
    data_dir = work / "data"
    record = work / "built.json"
    if record.exists():  # a catalog kept (--keep) from an earlier run: measure it again
        built = Built(**json.loads(record.read_text()))
    else:
        built = build_catalog(sizes, database, work, data_dir)
        record.write_text(json.dumps(dataclasses.asdict(built)))
    org_id = built.org_id
    server = serve(work, data_dir, database)
    try:
        with httpx.Client(base_url=server.base_url, timeout=600) as client:
            client.headers.update(processes.bearer(processes.login(client, "admin", PASSWORD)))
            timed = [
                time_vb365(client, "/v8/Jobs", repeat, "/vN/Jobs"),
                time_vb365(client, "/v8/JobSessions", repeat, "/vN/JobSessions"),
                time_vb365(
                    client,
                    f"/v6/Jobs/{built.big_job}/JobSessions",
                    repeat,
                    "/vN/Jobs/{id}/JobSessions",
                ),
                time_vb365(
                    client,
                    f"/v8/JobSessions/{built.big_session}/LogItems",
                    repeat,
                    "/vN/JobSessions/{id}/LogItems",
                ),
                time_vb365(client, "/v8/RestorePoints", repeat, "/vN/RestorePoints"),
                time_vb365(client, "/v8/RestoreSessions", repeat, "/vN/RestoreSessions"),
                time_vb365(
                    client,
                    f"/v8/RestoreSessions/{built.events_session}/Events",
                    repeat,
                    "/vN/RestoreSessions/{id}/Events",
                ),
            ]
            walked = [time_walk(client, "/v8/JobSessions", repeat, "/vN/JobSessions")]
            opened = open_point(client, server, org_id)
            load = os.getloadavg()[0]
        with httpx.Client(base_url=server.base_url, timeout=600) as em:
            logon = em.post("/api/sessionMngr/?v=latest", auth=("admin", PASSWORD))
            assert logon.status_code == 201, logon.text
            em.headers["X-RestSvcSessionId"] = logon.headers["X-RestSvcSessionId"]
            timed += [
                time_query(em, "Job", sizes.jobs, repeat),
                time_query(em, "BackupJobSession", sizes.sessions, repeat),
                time_query(em, "BackupJobSession", sizes.sessions, repeat, "&sortAsc=creationTime"),
                # Filters the catalog evaluates (api/em/query_sql.py): half the jobs by name,
                # every session (by status and retry: the deepest filtered page there is, counted
                # by the hour), one job's sessions.
                time_query(
                    em,
                    "Job",
                    sizes.jobs - sizes.jobs // 2,
                    repeat,
                    f"&filter=name>={quote(f'{chr(34)}job {sizes.jobs // 2:06d}{chr(34)}')}",
                ),
                time_query(
                    em,
                    "BackupJobSession",
                    sizes.sessions,
                    repeat,
                    "&filter=result==Success;isRetry==false",
                ),
                time_query(
                    em,
                    "BackupJobSession",
                    sizes.sessions // sizes.jobs,
                    repeat,
                    f"&filter=jobUid==urn:veeam:Job:{built.big_job}",
                ),
                # A field read from each job's policy document (every job here is scheduled).
                time_query(em, "Job", sizes.jobs, repeat, "&filter=scheduleConfigured==true"),
            ]
            unpaged = median_ms(max(1, repeat // 2), lambda: em.get("/api/jobs"))
    finally:
        server.stop()
    return report(sizes, timed, walked, opened, unpaged, built, database, load), built


def report(
    sizes: Sizes,
    timed: list[Timed],
    walked: list[Timed],
    opened: Opened,
    em_jobs_ms: float,
    built: Built,
    database: str | None,
    load: float,
) -> str:
    lines = [
        f"Catalog: {'PostgreSQL' if database else 'SQLite'}; {sizes.jobs:,} jobs, "
        f"{sizes.sessions:,} job sessions, {sizes.log_items:,} log items in one session, "
        f"{sizes.points:,} restore points, {sizes.restore_sessions:,} restore sessions, "
        f"{sizes.events:,} events in one, a restore point of {sizes.items:,} items "
        f"(built in {built.seconds:.0f} s, the point in {built.point_seconds:.0f} s). "
        f"Load average while measuring: {load:.1f} on 2 cores.",
        "",
        "| endpoint | rows | first page (ms) | middle page (ms) | last page (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in timed:
        lines.append(
            f"| `{t.endpoint}` | {t.rows:,} | {t.first_ms:.1f} | {t.middle_ms:.1f} | "
            f"{t.last_ms:.1f} |"
        )
    lines += [
        "",
        "Pages asked in order within one set (`setId`, each after the page before it: the "
        "catalog continues from that page's last row):",
        "",
        "| endpoint | rows | second page (ms) | middle page (ms) | last page (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in walked:
        lines.append(
            f"| `{t.endpoint}` | {t.rows:,} | {t.first_ms:.1f} | {t.middle_ms:.1f} | "
            f"{t.last_ms:.1f} |"
        )
    lines += [
        "",
        f"`GET /api/jobs` (every job in one document, as the vendor answers it): "
        f"{em_jobs_ms:.0f} ms.",
        "",
        f"Opening a restore session on the {sizes.items:,}-item point: explore "
        f"{opened.explore_ms:.0f} ms; explore + mailboxes + the first mailbox's folders "
        f"{opened.browse_ms:.0f} ms; then the first page of one folder "
        f"{opened.folder_ms:.0f} ms. Server RSS {opened.rss_before:.0f} MB before, "
        f"peak {opened.peak_after:.0f} MB after.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", help="a PostgreSQL catalog URL (default: SQLite)")
    parser.add_argument("--postgres", action="store_true", help="start a private PostgreSQL")
    parser.add_argument("--write", type=Path, help="replace the section in this Markdown file")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument(
        "--keep",
        type=Path,
        help="build in this directory and leave it there; a later run with the same directory "
        "(and scale) measures the kept SQLite catalog again without building it",
    )
    parser.add_argument(
        "--small", action="store_true", help="a quick check (bench/all.py): --scale 0.005, 3 asks"
    )
    args = parser.parse_args()
    if args.small:
        args.scale, args.repeat = 0.005, 3
    sizes = Sizes.at(args.scale)
    runs: list[str] = []
    catalogs = ([] if args.no_sqlite else [False]) + (
        [True] if args.postgres or args.database else []
    )
    for postgres in catalogs:
        with tempfile.TemporaryDirectory(prefix="keepstone-listings-") as tmp:
            work = Path(tmp) if args.keep is None else args.keep / ("pg" if postgres else "sqlite")
            work.mkdir(parents=True, exist_ok=True)
            given = args.database if postgres else None
            with catalog_url(given, postgres and not given, work) as database:
                text, _ = run(sizes, args.repeat, database, work)
        print(text, flush=True)
        runs.append(text)
    command = "uv run --locked python bench/listings.py " + " ".join(sys.argv[1:])
    if args.write:
        header = (
            f"`{command.strip()}` on this 2-core machine (shared with other work: medians of "
            f"{args.repeat}). Pages of {PAGE}, each asked without `setId` (so each counts the "
            "set again); the middle page is the deepest any window reads (a window past the "
            "middle is read from the set's end)."
        )
        write_section(args.write, TITLE, "\n\n".join([header, *runs]))


if __name__ == "__main__":
    main()
