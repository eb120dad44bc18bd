"""Microsoft 365 benchmark: Keepstone backing up and restoring an Office365 organization through
the strict fake Graph (tests/graph_fake) with Microsoft's limits switched on, time-scaled.

    uv run python bench/graph.py [--small | --scale 1.0] [--k 60] [--workdir DIR] [--keep]
        [--write docs/benchmarks.md]

Microsoft's limits are per mailbox (Outlook: 10,000 requests per 600 s, 4 in flight) and per
(app, tenant) for OneDrive (1,250 resource units per minute on small tenants). With ``--k`` every
window and budget is divided by k (the same rate, shorter windows: graph.md §6.2), so the steady
state that a real tenant reaches after ten minutes is reached after 600/k seconds; the ceilings
(16.7 requests/s per mailbox, 20.8 files/s per tenant) do not change with k.

Two tenants, one organization each (``POST /v8/Organizations``, app-only secret), one job each
(``POST /v8/Jobs``, the whole organization) started with ``POST /v8/Jobs/{id}/start``:

1. ``one``: one mailbox of ``1,000 x scale`` messages (~6 KB) and a OneDrive of ``600 x scale``
   files (~4 KB): mail items/s against the 16.7 req/s ceiling, requests per message, OneDrive
   files/s against the tenant's RU allowance; then ``restoreTo`` of the mailbox into a new folder
   (MB/s of MIME, every message checked in the fake);
2. ``many``: 50 mailboxes of ``100 x scale`` messages: aggregate items/s, then a run with nothing
   changed (requests per mailbox against F + 2, F its folders).

Keepstone runs as ``keepstone serve`` with ``--graph-url/--login-url`` and ``SSL_CERT_FILE`` (the
fake's CA); the fake runs in this process (uvicorn threads), so both share the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx

SCRIPT_DIR = Path(__file__).resolve().parent
ROOT = SCRIPT_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the fake lives in tests/graph_fake

from tests.graph_fake.server import FakeGraph, start_fake  # noqa: E402
from tests.graph_fake.sharepoint import microsoft_limits  # noqa: E402
from tests.graph_fake.state import FakeState, Tenant, User  # noqa: E402

from api import PASSWORD  # noqa: E402
from common import stop, write_section  # noqa: E402
from keepstone.clock import SystemClock  # noqa: E402

TITLE = "Microsoft 365 (Graph): Keepstone against Microsoft's limits"
MB = 1_000_000
SECRET = "bench-secret-not-a-real-one"
OUTLOOK_CEILING = 10_000 / 600  # requests/s per mailbox (graph.md §0 #1)
RU_PER_MINUTE = 1_250  # per app per tenant, 0-1k licences (graph.md §2.3)
CORSO = {
    "mail items/s (one mailbox)": 1.89,  # 37,010 items in 5h26m (graph.md §0 #8, I-3695)
    "mail MB/s (one mailbox)": 0.38,
    "OneDrive files/s": 55.0,  # Corso PR #1842 (graph.md §0 #6)
}
POLL_SECONDS = 0.05


@dataclass
class Config:
    scale: float = 1.0
    k: float = 60.0
    mailboxes: int = 50

    @property
    def big(self) -> int:
        return max(5, round(1_000 * self.scale))

    @property
    def files(self) -> int:
        return max(5, round(600 * self.scale))

    @property
    def each(self) -> int:
        return max(2, round(100 * self.scale))


# ----- the tenants in the fake -----------------------------------------------------------------


def message(user: str, n: int, when: datetime) -> bytes:
    body = "".join(
        f"line {i} of message {n} for {user}, some words to fill it.\r\n" for i in range(90)
    )
    return (
        f"From: Sender {n % 17} <sender{n % 17}@example.com>\r\nTo: {user}\r\n"
        f"Subject: message {n}\r\nMessage-ID: <b{n}.{user}>\r\nDate: {format_datetime(when)}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    ).encode()


def fill_mailbox(state: FakeState, tenant: Tenant, name: str, count: int) -> int:
    """A user whose messages are spread over Inbox and two folders; returns the MIME bytes."""
    user = state.add_user(tenant, name)
    box = state.add_mailbox(user)
    inbox = box.folder("inbox")
    assert inbox is not None
    folders = [inbox, box.add_folder("Projects"), box.add_folder("Receipts")]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    size = 0
    for n in range(count):
        raw = message(user.user_principal_name, n, start + timedelta(minutes=n))
        box.add_message(folders[n % 3], raw, start + timedelta(minutes=n))
        size += len(raw)
    return size


def fill_drive(state: FakeState, tenant: Tenant, user: User, count: int) -> int:
    """A OneDrive (its owner has no mailbox) of ``count`` files in four folders."""
    drive = state.add_drive(user)
    now = state.clock.now()
    folders = [drive.add(f"Folder {n}", now) for n in range(4)]
    size = 0
    for n in range(count):
        data = (f"file {n} " * 500).encode()[:4000]
        drive.add(f"file-{n:05}.txt", now, data, folders[n % 4])
        size += len(data)
    return size


# ----- Keepstone, through its API ----------------------------------------------------------------


@contextmanager
def keepstone_server(work: Path, fake: FakeGraph) -> Iterator[str]:
    """``keepstone serve`` with the fake's endpoints and CA; yields its /v8 base URL."""
    with socket_port() as port:
        pass
    env = os.environ | {"KEEPSTONE_ADMIN_PASSWORD": PASSWORD, "SSL_CERT_FILE": str(fake.ca_pem)}
    command = [
        sys.executable,
        "-c",
        "from keepstone.cli import main; main()",
        "serve",
        "--data-dir",
        str(work / "data"),
        "--port",
        str(port),
        "--graph-url",
        fake.graph_url,
        "--login-url",
        fake.login_url,
    ]
    log = (work / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/swagger/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("keepstone serve did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v8"
    finally:
        stop(process)
        log.close()


@contextmanager
def socket_port() -> Iterator[int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(timeout=3600)
        token = self.http.post(
            f"{base}/Token",
            data={"grant_type": "password", "username": "admin", "password": PASSWORD},
        )
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, self.base + path, json=body)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    def organization(self, tenant: Tenant, client_id: str) -> str:
        settings = {
            "useApplicationOnlyAuth": True,
            "officeOrganizationName": tenant.domain,
            "applicationId": client_id,
            "applicationSecret": SECRET,
        }
        body = {
            "type": "Office365",
            "isExchangeOnline": True,
            "isSharePointOnline": True,
            "exchangeOnlineSettings": settings,
            "sharePointOnlineSettings": settings,
        }
        return str(self.call("POST", "/Organizations", body)["id"])

    def job(self, org_id: str) -> str:
        repository = listed(self.call("GET", "/BackupRepositories"))[0]
        body = {
            "name": f"graph bench {org_id[:8]}",
            "organizationId": org_id,
            "repositoryId": repository["id"],
            "backupType": "EntireOrganization",
            "schedulePolicy": {"type": "ManualOnly"},
        }
        return str(self.call("POST", "/Jobs", body)["id"])

    def run(self, job_id: str) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        session = self.call("POST", f"/Jobs/{job_id}/start")
        while session["status"] in ("Queued", "Running"):
            time.sleep(POLL_SECONDS)
            session = self.call("GET", f"/JobSessions/{session['id']}")
        seconds = time.perf_counter() - started
        if session["status"] not in ("Success", "Warning"):
            items = listed(self.call("GET", f"/JobSessions/{session['id']}/LogItems"))
            said = [i.get("title") or i.get("message") for i in items]
            raise RuntimeError(f"run ended {session['status']}: {said[-5:]}")
        return seconds, dict(session)

    def restore_to(self, org_id: str, user: str, folder: str) -> tuple[float, Any]:
        session = self.call("POST", f"/Organizations/{org_id}/explore", {})["id"]
        owners = listed(self.call("GET", f"/RestoreSessions/{session}/Organization/Mailboxes"))
        owner = next(o for o in owners if user in (o.get("name"), o.get("email")))
        path = f"/RestoreSessions/{session}/Organization/Mailboxes/{owner['id']}/restoreTo"
        started = time.perf_counter()
        counts = self.call("POST", path, {"folder": folder})
        seconds = time.perf_counter() - started
        self.call("POST", f"/RestoreSessions/{session}/stop")
        return seconds, counts


def listed(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, dict):
        return list(answer.get("results", []))
    return list(answer)


# ----- the run -----------------------------------------------------------------------------------


@dataclass
class Measure:
    name: str
    value: float
    unit: str
    ceiling: float | None = None
    note: str = ""

    @property
    def ratio(self) -> str:
        return f"{self.value / self.ceiling:.2f}" if self.ceiling else "-"


@dataclass
class Run:
    config: Config
    measures: list[Measure] = field(default_factory=list)
    throttled: dict[str, int] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    seconds: float = 0.0
    code: str = ""

    def add(self, measure: Measure, say: Callable[[str], None]) -> None:
        self.loads.append(os.getloadavg()[0])
        self.measures.append(measure)
        say(f"{measure.name}: {measure.value:,.2f} {measure.unit} (ceiling ratio {measure.ratio})")


def mailbox_requests(state: FakeState, user_id: str) -> int:
    with state.lock:
        return sum(n for (_, mailbox), n in state.throttle.requests.items() if mailbox == user_id)


def run_all(config: Config, work: Path, say: Callable[[str], None]) -> Run:
    run = Run(config, code=code_measured())
    state = FakeState(clock=SystemClock())
    fake = start_fake(state, work / "tls")
    try:
        microsoft_limits(state, config.k)
        one = state.add_tenant("one.onmicrosoft.com", "One")
        files = state.add_tenant("files.onmicrosoft.com", "Files")
        many = state.add_tenant("many.onmicrosoft.com", "Many")
        apps = {t.id: state.add_app(t, secret=SECRET).client_id for t in (one, files, many)}
        mail_bytes = fill_mailbox(state, one, "big", config.big)
        fill_drive(state, files, state.add_user(files, "owner"), config.files)
        for n in range(config.mailboxes):
            fill_mailbox(state, many, f"user{n:03}", config.each)
        say(f"fake: {config.big} + {config.mailboxes}x{config.each} messages, {config.files} files")
        with keepstone_server(work, fake) as base:
            api = Api(base)
            measure_one(run, api, state, one, apps[one.id], mail_bytes, say)
            measure_files(run, api, state, files, apps[files.id], say)
            measure_many(run, api, state, many, apps[many.id], say)
        with state.lock:
            run.throttled = {
                "Outlook 429s": state.throttle.refused,
                "Outlook premature requests": state.throttle.premature,
                "OneDrive 429s": state.resource_units.refused,
                "OneDrive premature requests": state.resource_units.premature,
            }
    finally:
        fake.stop()
    return run


def measure_one(
    run: Run,
    api: Api,
    state: FakeState,
    tenant: Tenant,
    client_id: str,
    mail_bytes: int,
    say: Callable[[str], None],
) -> None:
    config = run.config
    big = next(iter(tenant.users.values()))
    org = api.organization(tenant, client_id)
    job = api.job(org)
    before = mailbox_requests(state, big.id)
    refused_before = state.throttle.refused
    seconds, session = api.run(job)
    requests = mailbox_requests(state, big.id) - before
    refused = state.throttle.refused - refused_before
    run.add(
        Measure(
            "mail backup, one mailbox",
            config.big / seconds,
            "items/s",
            OUTLOOK_CEILING,
            f"{config.big:,} messages in {seconds:.1f} s; session {session['status']}",
        ),
        say,
    )
    run.add(
        Measure(
            "requests per message",
            (requests - refused) / config.big,
            "req/msg",
            None,
            f"{requests - refused:,} requests answered and {refused:,} refused (429) to the "
            "mailbox; aim <= 1.01",
        ),
        say,
    )
    run.add(Measure("mail MB/s, one mailbox", mail_bytes / MB / seconds, "MB/s", None), say)
    seconds, counts = api.restore_to(org, big.user_principal_name, "Restored")
    with state.lock:
        box = state.mailboxes[big.id]
        target = next(f for f in box.folders.values() if f.display_name == "Restored")
        landed = sum(1 for m in box.messages.values() if m.folder_id == target.id)
    run.add(
        Measure(
            "restore, one mailbox (restoreTo)",
            mail_bytes / MB / seconds,
            "MB/s",
            None,
            f"{landed:,} of {config.big:,} messages in {seconds:.1f} s "
            f"({landed / seconds:.1f} msg/s); restored {counts.get('restoredItemsCount')}, "
            f"failed {counts.get('failedItemsCount')}",
        ),
        say,
    )


def measure_files(
    run: Run, api: Api, state: FakeState, tenant: Tenant, client_id: str, say: Callable[[str], None]
) -> None:
    config = run.config
    job = api.job(api.organization(tenant, client_id))
    with state.lock:
        before, refused_before = (
            sum(state.resource_units.requests.values()),
            state.resource_units.refused,
        )
    seconds, session = api.run(job)
    with state.lock:
        requests = sum(state.resource_units.requests.values()) - before
        refused = state.resource_units.refused - refused_before
    run.add(
        Measure(
            "OneDrive backup",
            config.files / seconds,
            "files/s",
            RU_PER_MINUTE / 60,
            f"{config.files:,} files in {seconds:.1f} s, {requests:,} requests ({refused:,} "
            f"refused); session {session['status']}",
        ),
        say,
    )


def measure_many(
    run: Run, api: Api, state: FakeState, tenant: Tenant, client_id: str, say: Callable[[str], None]
) -> None:
    config = run.config
    org = api.organization(tenant, client_id)
    job = api.job(org)
    total = config.mailboxes * config.each
    seconds, session = api.run(job)
    run.add(
        Measure(
            f"mail backup, {config.mailboxes} mailboxes",
            total / seconds,
            "items/s",
            OUTLOOK_CEILING * config.mailboxes,
            f"{total:,} messages in {seconds:.1f} s; session {session['status']}",
        ),
        say,
    )
    users = list(tenant.users.values())
    before = {u.id: mailbox_requests(state, u.id) for u in users}
    seconds, _ = api.run(job)
    with state.lock:
        folders = {u.id: len(state.mailboxes[u.id].folders) - 1 for u in users}  # not the root
    spent = [mailbox_requests(state, u.id) - before[u.id] for u in users]
    aim = max(folders.values()) + 2
    run.add(
        Measure(
            "no-change incremental",
            sum(spent) / len(spent),
            "requests per mailbox",
            None,
            f"aim F + 2 = {aim} (F = {aim - 2} folders, hidden ones included); most "
            f"{max(spent)}; {seconds:.1f} s for all {len(users)} mailboxes",
        ),
        say,
    )


# ----- the report --------------------------------------------------------------------------------


def report(run: Run, command: str) -> str:
    c = run.config
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    loads = f"{min(run.loads):.1f}-{max(run.loads):.1f}" if run.loads else "?"
    setup = (
        f"`{command}` on {os.cpu_count()} cores and {memory / 1e9:.0f} GB of RAM, Python "
        f"{platform.python_version()}, 1-minute load average {loads} at the measures (the machine "
        f"is shared). Keepstone {run.code}: one `keepstone serve` process with `--graph-url`/"
        "`--login-url` at the fake and `SSL_CERT_FILE` its CA; the fake Graph (tests/graph_fake) "
        f"in the benchmark's process. Time scale k = {c.k:g}: Outlook {10_000 / c.k:,.0f} requests "
        "per "
        f"{600 / c.k:g} s per mailbox and 4 in flight, OneDrive {RU_PER_MINUTE / c.k:,.0f} RU per "
        f"{60 / c.k:g} s per (app, tenant) — Microsoft's rates, shorter windows. Three tenants "
        "(one organization and one job each, run one after the other): one mailbox, one "
        "OneDrive (its owner has no mailbox), many mailboxes. Messages ~6 KB in Inbox and two "
        "folders; files 4 KB in four folders. Times are the client's, from the job's start "
        "request to its end seen (polled every 50 ms)."
    )
    lines = [
        "| measure | Keepstone | ceiling | ratio | Corso (published) | notes |",
        "|---|---|---|---|---|---|",
    ]
    corso = {
        "mail backup, one mailbox": CORSO["mail items/s (one mailbox)"],
        "mail MB/s, one mailbox": CORSO["mail MB/s (one mailbox)"],
        "OneDrive backup": CORSO["OneDrive files/s"],
    }
    for m in run.measures:
        ceiling = f"{m.ceiling:,.1f}" if m.ceiling else "-"
        theirs = corso.get(m.name)
        lines.append(
            f"| {m.name} | {m.value:,.2f} {m.unit} | {ceiling} | {m.ratio} | "
            f"{theirs if theirs is not None else '-'} | {m.note} |"
        )
    throttled = ", ".join(f"{k}: {v}" for k, v in run.throttled.items())
    return "\n\n".join(
        (
            setup,
            "\n".join(lines),
            f"Throttling seen: {throttled}. Corso's figures are its own published ones on real "
            "tenants (graph.md §3: one 37,010-item mailbox at 1.89 items/s and 0.38 MB/s; OneDrive "
            "~55 files/s), not measured here. Ceilings: 16.7 requests/s per mailbox (x mailboxes "
            "for the aggregate), 20.8 files/s per tenant (1,250 RU/min at 1 RU per download).",
            f"The whole benchmark took {run.seconds / 60:.1f} minutes.",
        )
    )


def code_measured() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=SCRIPT_DIR
    )
    return f"commit {done.stdout.strip() or 'unknown'}"


@contextmanager
def workspace(parent: Path | None, keep: bool) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="keepstone-bench-graph-", dir=parent))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--scale", type=float, default=1.0, help="1.0: 6,000 messages, 600 files")
    size.add_argument("--small", action="store_true", help="a tenth (--scale 0.1)")
    parser.add_argument("--k", type=float, default=60.0, help="time scale of Microsoft's limits")
    parser.add_argument("--mailboxes", type=int, default=50, help="mailboxes of the many tenant")
    parser.add_argument("--workdir", type=Path, help="where the temporary directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--write", type=Path, help="replace this benchmark's section there")
    args = parser.parse_args(argv)
    if args.small:
        args.scale = 0.1
    if args.scale <= 0 or args.k <= 0 or args.mailboxes < 1:
        parser.error("--scale and --k must be positive, --mailboxes at least 1")
    return args


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    started = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {text}", file=sys.stderr, flush=True)

    config = Config(args.scale, args.k, args.mailboxes)
    with workspace(args.workdir, args.keep) as work:
        run = run_all(config, work, say)
    run.seconds = time.perf_counter() - started
    command = "bench/graph.py " + " ".join(
        a for a in (argv or sys.argv[1:]) if not a.startswith("/")
    )
    text = report(run, command.strip())
    print(text)
    if args.write:
        write_section(args.write, TITLE, text)
    return text


if __name__ == "__main__":
    main()
