"""Every console page's median time over a catalog of 1,000 jobs and 100,000 job sessions (and
10,000 restore points, the newest of 30,000 messages), against a real ``keepstone serve``
(issue 16 item 5: each under 100 ms).

    uv run python bench/console.py [--scale 1] [--repeat 20] [--write docs/benchmarks.md]

The catalog is filled in bulk (tests/listing_rows.py, as bench/listings.py does): the jobs are
copies of one made through the API, the sessions spread over them, one in 50 failed, the newest
one running with 200 log lines; 100 Keepstone users (a tenth of them without a global role, the
operators of 20 organization roles). A browser's session is opened through the login form; each
page is then asked ``--repeat`` times and its median reported, with its size. Deep pages are
the last page of each listing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import listing_rows as rows  # noqa: E402
from tests import process_helpers as processes  # noqa: E402

from common import write_section  # noqa: E402
from keepstone.domain.jobs import SessionStatus  # noqa: E402
from keepstone.server import open_context  # noqa: E402
from keepstone.services import auth, rbac, runs  # noqa: E402
from keepstone.services.audit import Origin  # noqa: E402
from keepstone.services.context import Context  # noqa: E402
from keepstone.store.tables import JobSession  # noqa: E402
from listings import synthesize_point  # noqa: E402

TITLE = "Console"
PASSWORD = "benchmark-password"
JOBS, SESSIONS, LOG_LINES = 1_000, 100_000, 200
POINTS, MESSAGES = 10_000, 30_000  # restore points (one real, the rest catalog rows); its messages
USERS, ROLES = 100, 20
PAGE = 25  # the console's page size (console/render.py)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def build(work: Path, data_dir: Path, jobs: int, sessions: int) -> tuple[str, str, str, str]:
    """(organization id, a job id, the running session's id, a role's id); with the restore
    points of the organization, the newest a real one of ``MESSAGES`` messages
    (bench/listings.py's)."""
    env = processes.process_env(KEEPSTONE_ADMIN_PASSWORD=PASSWORD)
    server = processes.start_server(work / "logs", data_dir, env=env, ready_timeout=300)
    try:
        with httpx.Client(base_url=server.base_url, timeout=600) as client:
            client.headers.update(processes.bearer(processes.login(client, "admin", PASSWORD)))
            (work / "org" / "alice" / "cur").mkdir(parents=True)
            org_id = processes.add_local_organization(client, "bench", work / "org")
            repository = client.get("/v2/BackupRepositories").json()[0]
            repo_id, repo_path = repository["id"], repository["path"]
            template = processes.add_job(client, org_id, "job 000000", repo_id)
    finally:
        server.stop()
    ctx = open_context(data_dir)
    role_id = add_users_and_roles(ctx, org_id)
    owners = [template, *rows.copies_of_job(ctx, template, jobs - 1)]
    ids = rows.add_sessions(ctx, owners, sessions)
    with ctx.db.write() as s:
        s.execute(
            update(JobSession)
            .where(JobSession.id.in_(ids[::50]))
            .values(status=SessionStatus.FAILED.value)
        )
        s.execute(
            update(JobSession)
            .where(JobSession.id == ids[-1])
            .values(status=SessionStatus.RUNNING.value, end_time=None)
        )
    for n in range(LOG_LINES):
        runs.add_log(ctx, ids[-1], SessionStatus.RUNNING, f"Processing user {n}")
    rows.add_points(ctx, repo_id, org_id, owners, POINTS - 1)  # older: catalog rows only
    synthesize_point(ctx, repo_id, repo_path, org_id, template, MESSAGES)
    ctx.db.dispose()
    return org_id, template, ids[-1], role_id


def add_users_and_roles(ctx: Context, org_id: str) -> str:
    """USERS users (one password hash for all: hashing is not what is measured) and ROLES
    roles of the organization, each with an operator and alice in its scope; one role's id."""
    roles = [auth.Role.NONE.value, *[auth.Role.READ_ONLY.value] * 9]  # one in ten: None
    names = [f"user{n:03}" for n in range(USERS)]
    rows.add_users(ctx, names, roles, auth.hash_password(PASSWORD))
    operators = [u for u in auth.list_users(ctx) if u.role == auth.Role.NONE.value]
    made = [
        rbac.create_role(
            ctx,
            org_id,
            rbac.RoleEdit(
                name=f"role {n:02}",
                operators=[rbac.Ref("User", operators[n % len(operators)].id)],
                selected=[rbac.Ref("User", None, "alice")],
            ),
            by="bench",
            origin=Origin(),
        )
        for n in range(ROLES)
    ]
    return made[0].id


def median_ms(client: httpx.Client, path: str, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
        size = len(response.content)
    return statistics.median(times), size


def restore_pages(client: httpx.Client, org_id: str) -> list[tuple[str, str]]:
    """The Restore pages of a session opened (through the console's form) on the newest point:
    its mailboxes, one mailbox, one folder, a search of the mailbox, a message, the progress."""
    listed = client.get("/restore").text
    csrf, point = CSRF.search(listed), re.search(r'name="point" value="([^"]+)"', listed)
    assert csrf is not None and point is not None
    opened = client.post(
        "/restore/explore", data={"csrf": csrf.group(1), "point": point.group(1), "kind": "mail"}
    )
    assert opened.status_code == 303, opened.text[:300]
    session = opened.headers["location"].split("?")[0]
    owner = re.search(r'href="(/restore/sessions/[^"?]+/owners/[^"?]+)\?', client.get(session).text)
    assert owner is not None
    mailbox = owner.group(1)
    folder, item = f"{mailbox}?kind=mail", None
    while item is None:  # down the last folder until one holds messages
        text = client.get(folder).text
        item = re.search(r'href="([^"]+/items/[0-9a-f-]+)"', text)
        if item is None:
            deeper = re.findall(r'folder=([0-9a-f-]+)"', text)[-1]
            folder = f"{mailbox}?kind=mail&folder={deeper}"
    return [
        ("restore points, first page (of 10,000)", "/restore"),
        ("restore points of the organization", f"/restore?organization={org_id}"),
        ("a restore session's mailboxes", f"{session}?kind=mail"),
        ("a mailbox (its folders)", f"{mailbox}?kind=mail"),
        ("a folder, first page", folder),
        ("a search of a mailbox", f"{mailbox}?kind=mail&q=message%201"),
        ("a message's preview", item.group(1)),
        ("a restore session's progress", f"{session}/progress"),
    ]


def measure(work: Path, repeat: int, jobs: int, sessions: int) -> str:
    data_dir = work / "data"
    org_id, job_id, running, role_id = build(work, data_dir, jobs, sessions)
    env = processes.process_env(KEEPSTONE_ADMIN_PASSWORD=PASSWORD)
    server = processes.start_server(work / "logs", data_dir, env=env, ready_timeout=300)
    try:
        with httpx.Client(base_url=server.base_url, timeout=600) as client:
            form = client.get("/login").text
            found = CSRF.search(form)
            assert found is not None
            data = {"csrf": found.group(1), "username": "admin", "password": PASSWORD}
            assert client.post("/login", data=data).status_code == 303
            window = "&".join(f"window={h}" for h in range(22, 30))
            pages = [
                ("dashboard", "/"),
                ("dashboard's running sessions (polled)", "/fragments/running"),
                ("jobs, first page", "/jobs"),
                ("jobs, last page", f"/jobs?page={(jobs + PAGE - 1) // PAGE}"),
                ("a job (form and grid)", f"/jobs/{job_id}"),
                ("new job form", "/jobs/new"),
                ("window summary (polled while painting)", f"/fragments/window-summary?{window}"),
                ("sessions, first page", "/sessions"),
                ("sessions, last page", f"/sessions?page={(sessions + PAGE - 1) // PAGE}"),
                ("sessions, failed only", "/sessions?status=Failed"),
                ("sessions of a job", f"/sessions?job={job_id}"),
                ("a running session, 200 log lines", f"/sessions/{running}"),
                ("its live part (polled)", f"/fragments/sessions/{running}"),
                ("organizations", "/organizations"),
                ("an organization", f"/organizations/{org_id}"),
                ("new organization form (Local, IMAP, Microsoft 365)", "/organizations/new"),
                (f"users and roles (first {PAGE} of {USERS + 1} users, {ROLES} roles)", "/users"),
                ("roles of one organization", f"/users?organization={org_id}"),
                ("an organization role (form)", f"/roles/{role_id}"),
                ("new role form", f"/roles/new?organization={org_id}"),
                ("repositories", "/repositories"),
                ("audit trail, newest 100", "/audit"),
            ]
            pages += restore_pages(client, org_id)
            results = [(name, path, *median_ms(client, path, repeat)) for name, path in pages]
    finally:
        server.stop()
    lines = [
        f"`uv run python bench/console.py --repeat {repeat}`: a real `keepstone serve` (SQLite) "
        f"over {jobs:,} jobs and {sessions:,} job sessions (one in 50 failed; the newest running "
        f"with {LOG_LINES} log lines; {USERS + 1} users, {ROLES} organization roles), logged in "
        f"through the console's form; each page asked {repeat} times, the median. Pages show "
        f"{PAGE} rows and read one more (no count of the set); the session page shows its "
        "newest 100 log lines. The Restore pages: "
        f"{POINTS:,} restore points of the organization, the newest a real one of "
        f"{MESSAGES:,} messages (100 mailboxes of 10 folders, bench/listings.py's), a "
        "restore session opened on it through the console's form.",
        "",
        "| page | median ms | bytes |",
        "|---|---:|---:|",
        *(f"| {name} | {ms:.1f} | {size:,} |" for name, _path, ms, size in results),
        "",
        f"Slowest median: {max(r[2] for r in results):.1f} ms (target: under 100 ms).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()
    jobs, sessions = max(2, int(JOBS * args.scale)), max(60, int(SESSIONS * args.scale))
    with tempfile.TemporaryDirectory(prefix="keepstone-console-bench-") as work:
        text = measure(Path(work), args.repeat, jobs, sessions)
    print(text)
    if args.write:
        write_section(args.write, TITLE, text)


if __name__ == "__main__":
    main()
