"""Backup benchmark: Keepstone's real job run beside restic, borg and the machine's floor
(tar | zstd) on one generated organization, side by side.

    uv run python bench/backup.py [--scale 1.0] [--catalog sqlite|postgresql] [--workdir DIR]
        [--keep] [--write docs/benchmarks.md]

Generates a reproducible Local organization (``bench/orggen.py``: 20 users, 1,500 messages and
240 OneDrive files each at scale 1, about 2 GB), then measures for every tool: the initial backup,
a 1 % incremental, a full restore and a one-mailbox restore (both checked byte for byte against
the source), the repository's size and the peak memory; and for Keepstone the time to save one
item through ``restores.stream_item``. Keepstone runs exactly as a job run does in the server
(``runs.start_job`` then ``ProxyWorker(..., run_backup).run_one()`` on a real SQLite catalog, or
with ``--catalog postgresql`` on a database of a PostgreSQL cluster the run starts, as the tests
do: Debian's postgresql package), each step in a child process of this script so its peak RSS is
its own (the PostgreSQL server's memory is not counted). restic, borg and tar run
under ``/usr/bin/time -v``. Needs the Debian packages restic, borgbackup, zstd and time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

from blake3 import blake3

from common import write_section
from keepstone.clock import SystemClock
from keepstone.domain.jobs import BackupType, JobEdit, ScheduleEdit, SessionStatus
from keepstone.domain.policy import ScheduleType
from keepstone.domain.scope import stable_user_id
from keepstone.engine import Item
from keepstone.proxy.backup import run_backup
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import catalog, restores, runs
from keepstone.services.context import Context
from keepstone.store.db import Database
from orggen import Changes, Organization, OrgStats

TITLE = "Backup: Keepstone, restic, borg and the floor"
SEED = 20261122
PASSWORD = "benchmark-password"
SAVE_SAMPLES = 20
MB = 1_000_000
SCRIPT = Path(__file__).resolve()
OK_STATUSES = (SessionStatus.SUCCESS.value, SessionStatus.WARNING.value)

Manifest = dict[str, bytes]


@dataclass
class Measure:
    seconds: float
    rss: int  # bytes: the largest peak resident set of one process of the step
    process_seconds: float | None = None  # Keepstone: the child process's whole wall time
    baseline_rss: int = 0  # Keepstone: the child's RSS when the step began (imports, catalog)


@dataclass
class Results:
    initial: Measure | None = None
    incremental: Measure | None = None
    full_restore: Measure | None = None
    mailbox_restore: Measure | None = None
    repository_bytes: int = 0
    mismatches: list[str] = field(default_factory=list)  # restores unlike the source

    def peak_rss(self) -> int:
        steps = (self.initial, self.incremental, self.full_restore, self.mailbox_restore)
        return max(m.rss for m in steps if m is not None)


class Tool(Protocol):
    name: str

    def prepare(self) -> None: ...

    def backup(self, label: str) -> Measure: ...

    def restore(self, target: Path, user: str | None) -> tuple[Measure, Path]:
        """Restore the latest backup (or only ``user``'s Mail) below ``target``; returns the time
        and the directory that corresponds to the organization's root."""
        ...

    def repository_bytes(self) -> int: ...


# ----- external tools ------------------------------------------------------------------------


def tool_version(command: list[str], pattern: str) -> str:
    if shutil.which(command[0]) is None:
        raise SystemExit(
            f"{command[0]} is not installed: apt-get install -y restic borgbackup zstd time"
        )
    out = subprocess.run(command, capture_output=True, text=True).stdout
    found = re.search(pattern, out)
    return found.group(1) if found else out.strip().splitlines()[0]


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Measure:
    """Run ``command`` under GNU time: wall time and the largest peak RSS of any one process of
    its tree (``wait4``'s rusage: the floor's pipeline reports zstd's or tar's, not their sum;
    every other tool's step is one process)."""
    report = log.with_suffix(".time")
    with log.open("ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(report), *command],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{tail(log)}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read_text())
    return Measure(seconds, int(match.group(1)) * 1024 if match else 0)


def tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def disk_usage(path: Path) -> int:
    """Bytes on disk, as du counts them."""
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


class Restic:
    name = "restic"

    def __init__(self, work: Path, org: Path) -> None:
        self.repo, self.org, self.log = work / "restic-repo", org, work / "restic.log"
        self.env = os.environ | {
            "RESTIC_REPOSITORY": str(self.repo),
            "RESTIC_PASSWORD": PASSWORD,
            "RESTIC_CACHE_DIR": str(work / "restic-cache"),
        }

    def prepare(self) -> None:
        timed(["restic", "init"], self.org.parent, self.env, self.log)

    def backup(self, label: str) -> Measure:
        command = ["restic", "backup", "--quiet", "--host", "bench", "--tag", label, self.org.name]
        return timed(command, self.org.parent, self.env, self.log)

    def restore(self, target: Path, user: str | None) -> tuple[Measure, Path]:
        command = ["restic", "restore", "latest", "--target", str(target)]
        if user is not None:
            command += ["--include", f"/{self.org.name}/{user}/Mail"]
        return timed(command, self.org.parent, self.env, self.log), target / self.org.name

    def repository_bytes(self) -> int:
        return disk_usage(self.repo)


class Borg:
    name = "borg"

    def __init__(self, work: Path, org: Path) -> None:
        self.repo, self.org, self.log = work / "borg-repo", org, work / "borg.log"
        self.latest = ""
        self.env = os.environ | {
            "BORG_BASE_DIR": str(work / "borg-home"),
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        }

    def prepare(self) -> None:
        timed(
            ["borg", "init", "--encryption=none", str(self.repo)],
            self.org.parent,
            self.env,
            self.log,
        )

    def backup(self, label: str) -> Measure:
        self.latest = f"{self.repo}::{label}"
        command = ["borg", "create", "--compression", "zstd,3", self.latest, self.org.name]
        return timed(command, self.org.parent, self.env, self.log)

    def restore(self, target: Path, user: str | None) -> tuple[Measure, Path]:
        target.mkdir(parents=True)
        paths = [f"{self.org.name}/{user}/Mail"] if user is not None else []
        measure = timed(["borg", "extract", self.latest, *paths], target, self.env, self.log)
        return measure, target / self.org.name

    def repository_bytes(self) -> int:
        return disk_usage(self.repo)


class Floor:
    """What the machine does at best with the same bytes: tar piped into zstd -3 on two threads
    (GNU tar's --listed-incremental makes the second run read only what changed)."""

    name = "floor"

    def __init__(self, work: Path, org: Path) -> None:
        self.dir, self.org, self.log = work / "floor", org, work / "floor.log"
        self.archives: list[Path] = []

    def prepare(self) -> None:
        self.dir.mkdir()

    def backup(self, label: str) -> Measure:
        archive = self.dir / f"{label}.tar.zst"
        self.archives.append(archive)
        script = (
            f"set -o pipefail; tar --listed-incremental={self.dir / 'snar'} -cf - "
            f"{self.org.name} | zstd -3 -T2 -q -o {archive}"
        )
        return timed(["bash", "-c", script], self.org.parent, os.environ.copy(), self.log)

    def restore(self, target: Path, user: str | None) -> tuple[Measure, Path]:
        target.mkdir(parents=True)
        member = f" {self.org.name}/{user}/Mail" if user is not None else ""
        script = "set -o pipefail; " + "; ".join(
            f"zstd -dcq {archive} | tar -xf - -C {target} --listed-incremental=/dev/null{member}"
            for archive in self.archives
        )
        measure = timed(["bash", "-c", script], self.org.parent, os.environ.copy(), self.log)
        return measure, target / self.org.name

    def repository_bytes(self) -> int:
        return sum(disk_usage(archive) for archive in self.archives)


# ----- Keepstone: each step in a child process running this script ---------------------------


class Keepstone:
    name = "Keepstone"

    def __init__(self, work: Path, org: Path, database: str | None = None) -> None:
        self.dir, self.org, self.log = work / "keepstone", org, work / "keepstone.log"
        self.database = database  # a PostgreSQL catalog's URL; None: the data dir's SQLite
        self.state: dict[str, Any] = {}
        self.steps = 0
        self.messages: dict[str, str] = {}  # the job run's last log line, by backup label

    def prepare(self) -> None:
        self.dir.mkdir()
        self.state = self.step("setup", org=str(self.org), database=self.database)[1]

    def backup(self, label: str) -> Measure:
        measure, result = self.step("backup")
        self.messages[label] = f"{result['status']}: {result['message']}"
        return measure

    def restore(self, target: Path, user: str | None) -> tuple[Measure, Path]:
        measure, _ = self.step("restore", target=str(target), user=user)
        return measure, target

    def save_one(self, count: int) -> dict[str, Any]:
        measure, result = self.step("save", count=count)
        return result | {"rss": measure.rss}

    def repository_bytes(self) -> int:
        return disk_usage(Path(self.state["repository"]))

    def step(self, step: str, **params: Any) -> tuple[Measure, dict[str, Any]]:
        """Run one step in a child process under GNU time, as the other tools run: its peak
        RSS is its own. (``wait4``'s rusage is not: Linux carries the peak RSS of the process
        that forked over an ``exec``, and this script holds the organization's text bank.)"""
        self.steps += 1
        result_path = self.dir / f"step-{self.steps}-{step}.json"
        command = [
            sys.executable,
            str(SCRIPT),
            "--keepstone-step",
            step,
            "--keepstone-dir",
            str(self.dir),
            "--keepstone-params",
            json.dumps(params),
            "--keepstone-result",
            str(result_path),
        ]
        env = os.environ | {"KEEPSTONE_ADMIN_PASSWORD": PASSWORD}
        timed_step = timed(command, self.dir, env, self.log)
        result: dict[str, Any] = json.loads(result_path.read_text())
        measure = Measure(
            result.get("seconds", timed_step.seconds),
            timed_step.rss,
            timed_step.seconds,
            result.get("baseline_rss", 0),
        )
        return measure, result


def child_main(step: str, directory: Path, params: dict[str, Any], result_path: Path) -> None:
    """Entry point of a Keepstone child process: one step, its result as JSON."""
    state_path = directory / "state.json"
    if step == "setup":
        result = ks_setup(directory / "data", Path(params["org"]), params.get("database"))
        state_path.write_text(json.dumps(result))
    else:
        state = json.loads(state_path.read_text())
        ctx = run_context(state)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        try:
            result = KS_STEPS[step](ctx, state, params) | {"baseline_rss": baseline}
        finally:
            ctx.db.dispose()
    result_path.write_text(json.dumps(result))


def run_context(state: dict[str, Any]) -> Context:
    """The catalog as a process that only runs jobs and restores holds it: the set-up step
    migrated it, and the server's modules (its web stack, the scheduler) are not loaded, as in
    a ``keepstone proxy`` process."""
    data_dir = Path(state["data_dir"])
    return Context(
        db=Database(state["database"]),
        clock=SystemClock(),
        secrets_dir=data_dir / "secrets",
        data_dir=data_dir,
    )


def ks_setup(data_dir: Path, org_root: Path, database: str | None = None) -> dict[str, Any]:
    """A fresh server: catalog (``database``, else the data directory's SQLite file), default
    repository, a Local organization and a manual job."""
    # Imported here: only the set-up step needs the server's modules.
    from keepstone.server import DATABASE_FILE, bootstrap, open_context
    from keepstone.services import jobs
    from keepstone.store.db import sqlite_url

    ctx = open_context(data_dir, SystemClock(), database=database)
    boot = bootstrap(ctx, data_dir)
    org = catalog.create_organization(
        ctx, catalog.OrganizationEdit(name="bench", type="Local", local_path=str(org_root))
    )
    repo = catalog.list_repositories(ctx)[0]
    spec = JobEdit(
        name="bench backup",
        backup_type=BackupType.ENTIRE_ORGANIZATION,
        repository_id=repo.id,
        schedule=ScheduleEdit(type=ScheduleType.MANUAL_ONLY),
    )
    job = jobs.create_job(ctx, org.id, spec).job
    ctx.db.dispose()
    return {
        "data_dir": str(data_dir),
        "database": database or sqlite_url(data_dir / DATABASE_FILE),
        "job_id": job.id,
        "organization_id": org.id,
        "proxy_id": boot.proxy_id,
        "repository": repo.path,
    }


def ks_backup(ctx: Context, state: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """One job run, exactly as the server's proxy runs it."""
    catalog.heartbeat(ctx, state["proxy_id"])
    session = runs.start_job(ctx, state["job_id"], "Started by the backup benchmark")
    assert session is not None
    worker = ProxyWorker(ctx, state["proxy_id"], run_backup)
    started = time.perf_counter()
    ran = worker.run_one()
    seconds = time.perf_counter() - started
    ended = runs.get_session(ctx, session.id)
    messages = [item.message for item in runs.list_log_items(ctx, session.id)]
    if not ran or ended.status not in OK_STATUSES:
        print("\n".join(messages), file=sys.stderr)
        raise SystemExit(f"the job run ended {ended.status}")
    return {
        "seconds": seconds,
        "status": ended.status,
        "message": messages[-1],
        "log": messages,
        "statistics": ended.statistics,
    }


def ks_restore(ctx: Context, state: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Explore the latest restore point and save every item (or one user's mail) into a
    directory laid out like the organization, as ``keepstone restore save`` saves a user's
    items: each read through the session's repository (``read_many``: two threads read the
    next chunks ahead), one Save event per user (saving single
    items through the API, one event each, is ``ks_save``'s measure)."""
    target, user = Path(params["target"]), params.get("user")
    started = time.perf_counter()
    session = restores.explore_at(ctx, at=None, user_name="bench", job_id=state["job_id"])
    view = restores.browser(ctx, session.id)
    users = sorted(view.owners.values()) if user is None else [user]
    # One tree's items at a time (as `keepstone restore save` walks them), not the whole point.
    chosen = (
        i
        for i in view.each_item(users)
        if i.kind != "folder" and (user is None or i.kind == "mail")
    )
    made: set[Path] = set()
    written = 0
    saved: dict[str, int] = {}
    for item, content in view.repository.read_many(chosen):
        path = restored_path(target, item)
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        with path.open("wb") as out:
            for chunk in content:
                written += out.write(chunk)
        os.chmod(path, item.mode)
        os.utime(path, (item.mtime, item.mtime))
        saved[item.user] = saved.get(item.user, 0) + 1
    for owner, count in saved.items():
        restores.record_saved(ctx, session.id, owner, count, str(target / owner), by="bench")
    seconds = time.perf_counter() - started
    restores.stop(ctx, session.id)
    return {"seconds": seconds, "items": sum(saved.values()), "bytes": written}


def restored_path(root: Path, item: Item) -> Path:
    if item.kind == "mail":
        folder = str(item.meta.get("folder_dir", ""))
        return root / item.user / "Mail" / folder / "cur" / str(item.meta["file_name"])
    return root / item.user / "OneDrive" / item.path


def ks_save(ctx: Context, state: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Save single messages of an explored session: the first (which loads the session), then
    ``count`` random ones, each read to its last byte."""
    session = restores.explore_at(ctx, at=None, user_name="bench", job_id=state["job_id"])

    def save(item: Item) -> float:
        started = time.perf_counter()
        owner = stable_user_id(state["organization_id"], item.user)
        _, chunks = restores.stream_item(
            ctx, session.id, owner, restores.item_id(item.key), by="bench"
        )
        size = sum(len(chunk) for chunk in chunks)
        assert size == item.size
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    view = restores.browser(ctx, session.id)
    load_ms = (time.perf_counter() - started) * 1000
    mails = [
        item
        for name in sorted(view.owners.values())
        for item in view.items_of_user(name)
        if item.kind == "mail"
    ]
    rng = random.Random(SEED)
    first_ms = save(rng.choice(mails))
    samples = [save(item) for item in rng.sample(mails, min(params["count"], len(mails)))]
    restores.stop(ctx, session.id)
    return {"load_ms": load_ms, "first_ms": first_ms, "samples_ms": samples}


KS_STEPS: dict[str, Callable[[Context, dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "backup": ks_backup,
    "restore": ks_restore,
    "save": ks_save,
}


# ----- checking restores -----------------------------------------------------------------------


def manifest(root: Path, only_mail_of: str | None = None) -> Manifest:
    """Digest of every message and OneDrive file below ``root``, by a key that ignores whether a
    message sits in ``cur/`` or ``new/`` (restores put everything in ``cur/``)."""
    found: Manifest = {}
    users = [only_mail_of] if only_mail_of else sorted(p.name for p in root.iterdir())
    for user in users:
        mail = root / user / "Mail"
        folders = [mail, *sorted(mail.glob(".*"))] if mail.is_dir() else []
        for folder in folders:
            for sub in ("cur", "new"):
                for path in (folder / sub).glob("*") if (folder / sub).is_dir() else ():
                    found[f"{user}/Mail/{folder.name}/{path.name}"] = digest(path)
        if only_mail_of:
            continue
        drive = root / user / "OneDrive"
        for dirpath, _, names in os.walk(drive):
            for name in names:
                path = Path(dirpath) / name
                found[f"{user}/OneDrive/{path.relative_to(drive)}"] = digest(path)
    return found


def digest(path: Path) -> bytes:
    return blake3(path.read_bytes()).digest()


def compare(expected: Manifest, got: Manifest) -> str | None:
    """None if equal, else what differs."""
    if expected == got:
        return None
    missing = expected.keys() - got.keys()
    extra = got.keys() - expected.keys()
    changed = [k for k in expected.keys() & got.keys() if expected[k] != got[k]]
    return f"{len(missing)} missing, {len(extra)} extra, {len(changed)} different"


# ----- the run ---------------------------------------------------------------------------------


@dataclass
class Run:
    scale: float
    stats: OrgStats
    changes: Changes
    mailbox_user: str
    mailbox_bytes: int
    generate_seconds: float
    results: dict[str, Results]
    save: dict[str, Any]
    keepstone_messages: dict[str, str]
    versions: dict[str, str]
    total_seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at the start and the end
    catalog: str = "sqlite"  # Keepstone's: "sqlite" or "postgresql" (``--catalog``)


def settle() -> None:
    """Flush dirty pages before a timed step, so no step pays for the previous one's writes."""
    os.sync()


def run_all(
    tools: list[Tool], org: Organization, stats: OrgStats, work: Path, say: Callable[[str], None]
) -> tuple[dict[str, Results], Changes, str]:
    results = {tool.name: Results() for tool in tools}
    for tool in tools:
        tool.prepare()
    for tool in tools:
        settle()
        results[tool.name].initial = measure = tool.backup("initial")
        say(f"  {tool.name}: initial backup {measure.seconds:.1f} s")
    changes = org.mutate(0.01)
    say(f"changed {changes.items} items: {changes.describe()}")
    for tool in tools:
        settle()
        results[tool.name].incremental = measure = tool.backup("incremental")
        say(f"  {tool.name}: incremental {measure.seconds:.1f} s")
    expected = manifest(org.root)
    user = median_mailbox(stats)
    expected_mail = {k: v for k, v in expected.items() if k.startswith(f"{user}/Mail/")}
    for tool in tools:
        for label, only, wanted in (("full", None, expected), ("mailbox", user, expected_mail)):
            target = work / f"restore-{tool.name}-{label}"
            settle()
            measure, root = tool.restore(target, only)
            problem = compare(wanted, manifest(root, only) if root.exists() else {})
            if problem:
                results[tool.name].mismatches.append(f"{label} restore: {problem}")
            if label == "full":
                results[tool.name].full_restore = measure
            else:
                results[tool.name].mailbox_restore = measure
            # Kept until the run ends: ext4 makes every file created soon after tens of
            # thousands were deleted skip over the freed inodes (`recently_deleted`), so
            # deleting one tool's restore would slow the next tool's (restore3, 2026-12-05).
            say(
                f"  {tool.name}: {label} restore {measure.seconds:.1f} s, "
                f"{'verified' if not problem else 'MISMATCH ' + problem}"
            )
        results[tool.name].repository_bytes = tool.repository_bytes()
    return results, changes, user


def median_mailbox(stats: OrgStats) -> str:
    ordered = sorted(stats.bytes_by_user_mail, key=lambda u: stats.bytes_by_user_mail[u])
    return ordered[len(ordered) // 2]


@contextmanager
def workspace(parent: Path | None, keep: bool) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="keepstone-bench-backup-", dir=parent))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


@contextmanager
def catalog_database(kind: str) -> Iterator[str | None]:
    """``--catalog postgresql``: a database of a PostgreSQL cluster started for the run (the
    tests' harness, ``tests/postgres_server.py``), as its URL; ``sqlite``: None."""
    if kind == "sqlite":
        yield None
        return
    sys.path.insert(0, str(SCRIPT.parent.parent))  # the tests' harnesses
    from tests import postgres_server

    from keepstone.store.db import database_url

    with postgres_server.running() as server:
        yield database_url(server.url(server.create_database()))


def check_disk(parent: Path, planned: int) -> None:
    """Source, four repositories (each at most the source) and every tool's restores (kept
    until the run ends, see ``run_all``)."""
    needed = int(planned * 1.1) * 10 + 512 * 1024 * 1024
    free = shutil.disk_usage(parent).free
    if needed > free:
        raise SystemExit(
            f"this run needs about {needed / 1e9:.1f} GB free in {parent} "
            f"(about {planned / 1e9:.2f} GB of source data, six times over, and a margin) but only "
            f"{free / 1e9:.1f} GB is free: use a smaller --scale or --workdir on a larger disk"
        )


def versions() -> dict[str, str]:
    return {
        "restic": tool_version(["restic", "version"], r"restic ([\d.]+)"),
        "borg": tool_version(["borg", "--version"], r"borg ([\d.]+)"),
        "zstd": tool_version(["zstd", "--version"], r"v([\d.]+)"),
        "tar": tool_version(["tar", "--version"], r"tar\) ([\d.]+)"),
        "keepstone": version("keepstone"),
    }


# ----- the report ------------------------------------------------------------------------------


def seconds_cell(measure: Measure | None) -> str:
    return f"{measure.seconds:.2f} s" if measure else "-"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def table(run: Run) -> str:
    tools = ["Keepstone", "restic", "borg", "floor"]
    res = [run.results[name] for name in tools]
    source = run.stats.total_bytes
    rows: list[tuple[str, list[float], list[str]]] = []

    def add(name: str, values: list[float], cells: list[str]) -> None:
        rows.append((name, values, cells))

    initial = [r.initial.seconds if r.initial else 0.0 for r in res]
    add("initial backup", initial, [f"{s:.2f} s ({source / MB / s:.0f} MB/s)" for s in initial])
    for label, attr in (
        ("1 % incremental", "incremental"),
        ("full restore", "full_restore"),
        (
            f"one-mailbox restore ({run.mailbox_user}, {run.mailbox_bytes / MB:.0f} MB)",
            "mailbox_restore",
        ),
    ):
        measures = [getattr(r, attr) for r in res]
        add(label, [m.seconds for m in measures], [seconds_cell(m) for m in measures])
    sizes = [float(r.repository_bytes) for r in res]
    add("repository size", sizes, [f"{s / MB:,.0f} MB ({s / source:.0%})" for s in sizes])
    peaks = [float(r.peak_rss()) for r in res]
    add("peak memory (RSS, any step)", peaks, [f"{p / MB:,.0f} MB" for p in peaks])
    lines = [
        "| measure | Keepstone | restic | borg | floor | Keepstone/restic | Keepstone/borg "
        "| Keepstone/floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, values, cells in rows:
        lines.append(
            f"| {name} | {' | '.join(cells)} | {ratio(values[0], values[1])} | "
            f"{ratio(values[0], values[2])} | {ratio(values[0], values[3])} |"
        )
    return "\n".join(lines)


def aims(run: Run) -> list[str]:
    ks, restic, borg, floor = (run.results[n] for n in ("Keepstone", "restic", "borg", "floor"))
    assert ks.initial and restic.initial and floor.initial
    save_ms = statistics.median(run.save["samples_ms"])

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    speedup = restic.initial.seconds / ks.initial.seconds
    vs_floor = ks.initial.seconds / floor.initial.seconds
    lines = [
        f"- initial backup at least 1.5x restic's throughput: {speedup:.2f}x — "
        f"{verdict(speedup >= 1.5)}",
        f"- initial backup within 1.5x of the floor: {vs_floor:.2f}x the floor's time — "
        f"{verdict(vs_floor <= 1.5)}",
    ]
    for label, attr, limit in (
        ("1 % incremental", "incremental", 0.5),  # issue 15: it reads only what changed
        ("full restore", "full_restore", 1.0),
        ("one-mailbox restore", "mailbox_restore", 1.0),
    ):
        mine, theirs = getattr(ks, attr).seconds, getattr(restic, attr).seconds
        bound = "no slower than restic" if limit == 1 else f"at most {limit}x restic's time"
        lines.append(
            f"- {label} {bound}: {mine / theirs:.2f}x restic's time — "
            f"{verdict(mine <= limit * theirs)}"
        )
    memory = ks.peak_rss() / restic.peak_rss()
    lines.append(
        f"- peak memory no more than restic's: {memory:.2f}x restic's — {verdict(memory <= 1)}"
    )
    size = ks.repository_bytes / borg.repository_bytes
    lines.append(f"- repository no larger than borg's: {size:.3f}x borg's — {verdict(size <= 1)}")
    lines.append(
        f"- saving one item under 100 ms: median {save_ms:.1f} ms — {verdict(save_ms < 100)}"
    )
    return lines


def report(run: Run) -> str:
    paragraphs = [
        setup_text(run),
        tools_text(run),
        table(run),
        save_text(run),
        "Aims:\n\n" + "\n".join(aims(run)),
        keepstone_text(run),
        f"The whole benchmark took {run.total_seconds / 60:.1f} minutes; the 1-minute load "
        f"average was {run.load[0]:.1f} when it started and {run.load[1]:.1f} when it ended (on "
        f"{os.cpu_count()} cores: the machine ran other work too, so only ratios within this "
        "run compare).",
    ]
    return "\n\n".join(paragraphs)


def setup_text(run: Run) -> str:
    s = run.stats
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cache = (
        "warm page cache (the source fits in memory several times over)"
        if memory > 3 * s.total_bytes
        else "the source may not stay in the page cache"
    )
    return (
        f"`bench/backup.py --scale {run.scale:g}` on {os.cpu_count()} cores and "
        f"{memory / 1e9:.0f} GB of RAM, Python {platform.python_version()}, {cache}, everything "
        f"on one local disk. The organization (`bench/orggen.py`, seed {SEED}) has "
        f"{len(s.users)} users, {s.messages:,} messages ({s.mail_bytes / MB:,.0f} MB; "
        f"{s.attachments:,} with a base64 attachment, {s.shared_attachments:,} of them from a "
        f"pool shared between users) and {s.files:,} OneDrive files ({s.file_bytes / MB:,.0f} MB, "
        f"half random bytes, half text and CSV): {s.items:,} items, {s.total_bytes / MB:,.0f} MB, "
        f"generated in {run.generate_seconds:.1f} s. The 1 % change between the two backups: "
        f"{run.changes.describe()} ({run.changes.items} items)."
    )


CATALOGS = {
    "sqlite": "a SQLite catalog",
    "postgresql": "a PostgreSQL catalog (a cluster started for the run)",
}


def tools_text(run: Run) -> str:
    v = run.versions
    return (
        f"Keepstone {v['keepstone']}: a real job run (`runs.start_job`, then "
        f"`ProxyWorker(ctx, proxy, run_backup).run_one()`) on {CATALOGS[run.catalog]} "
        "into its default, "
        "unencrypted repository, in a process that holds the catalog and the run path but not "
        "the server's web stack (as a `keepstone proxy` process does); restores through the "
        "restore service as `keepstone restore save` saves (`explore_at`, every item read "
        "through the session's repository, two threads reading the next chunks ahead, into a "
        "directory laid out like the organization, one Save event per user). "
        f"restic {v['restic']}: repository v2 with its default compression, always encrypted, "
        f"default cache. borg {v['borg']}: `--encryption=none`, `--compression zstd,3`. "
        f"Floor: GNU tar {v['tar']} piped into zstd {v['zstd']} `-3 -T2`, with "
        "`--listed-incremental` so the second run reads only what changed; its restores "
        "decompress and extract both archives. Times are wall times of the whole command for "
        "the external tools, and for Keepstone the time of the step itself inside its child "
        "process (as a resident server spends it; see below for the children's start-up). Peak "
        "memory is a tool's highest RSS over its four timed steps (GNU time for the external "
        "tools and for Keepstone's child processes). Ratios are Keepstone's value "
        "divided by the other's, so below 1 is better for Keepstone on every row (for the "
        "initial backup, the throughput ratio is the inverse). MB = 10^6 bytes."
    )


def save_text(run: Run) -> str:
    samples = sorted(run.save["samples_ms"])
    mismatches = [f"{n}: {'; '.join(r.mismatches)}" for n, r in run.results.items() if r.mismatches]
    checked = (
        "every restore matched the source byte for byte (BLAKE3 of every message and file)"
        if not mismatches
        else "**restores that did not match the source:** " + "; ".join(mismatches)
    )
    return (
        "Saving one message through `restores.stream_item` on an explored session: median "
        f"**{statistics.median(samples):.1f} ms** over {len(samples)} random messages (fastest "
        f"{samples[0]:.1f} ms, slowest {samples[-1]:.1f} ms); before the first save, loading "
        f"the session took {run.save['load_ms']:.0f} ms for the restore point's "
        f"{run.stats.items:,} items. Restores: {checked}."
    )


def keepstone_text(run: Run) -> str:
    ks = run.results["Keepstone"]
    steps = [
        ("initial", ks.initial),
        ("incremental", ks.incremental),
        ("full restore", ks.full_restore),
        ("mailbox restore", ks.mailbox_restore),
    ]
    wall = ", ".join(
        f"{name} {m.process_seconds:.1f} s" for name, m in steps if m and m.process_seconds
    )
    memory = ", ".join(
        f"{name} {m.rss / MB:.0f} MB ({m.baseline_rss / MB:.0f} MB)" for name, m in steps if m
    )
    said = "; ".join(f'{label}: "{text}"' for label, text in run.keepstone_messages.items())
    return (
        f"Keepstone's child processes, whole wall time with Python start-up, imports and opening "
        f"the catalog: {wall}. Their peak RSS, with in brackets what the child already held when "
        f"the step began (Python, the open catalog and Keepstone's modules): {memory}; saving "
        f"single "
        f"items {run.save['rss'] / MB:.0f} MB. The job runs' own summaries: {said}."
    )


# ----- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiplies every user's item counts (1.0: about 2 GB)",
    )
    parser.add_argument(
        "--catalog",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="Keepstone's catalog: the data directory's SQLite file (the embedded default), or "
        "a PostgreSQL cluster started for the run",
    )
    parser.add_argument(
        "--workdir", type=Path, help="where the temporary directory goes (default: the system's)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--write", type=Path, help="replace this benchmark's section there")
    for hidden in (
        "--keepstone-step",
        "--keepstone-dir",
        "--keepstone-params",
        "--keepstone-result",
    ):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.keepstone_step:
        child_main(
            args.keepstone_step,
            Path(args.keepstone_dir),
            json.loads(args.keepstone_params),
            Path(args.keepstone_result),
        )
        return

    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    if not Path("/usr/bin/time").exists():
        raise SystemExit("GNU time is not installed: apt-get install -y time")
    found = versions()
    parent = args.workdir or Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {text}", file=sys.stderr, flush=True)

    with workspace(parent, args.keep) as work, catalog_database(args.catalog) as database:
        org = Organization(work / "org", args.scale, SEED)
        check_disk(parent, org.planned_bytes())
        generating = time.perf_counter()
        stats = org.write()
        generated = time.perf_counter() - generating
        say(
            f"generated {stats.items:,} items, {stats.total_bytes / MB:,.0f} MB "
            f"in {generated:.1f} s"
        )
        keepstone = Keepstone(work, org.root, database)
        tools: list[Tool] = [
            keepstone,
            Restic(work, org.root),
            Borg(work, org.root),
            Floor(work, org.root),
        ]
        results, changes, user = run_all(tools, org, stats, work, say)
        save = keepstone.save_one(SAVE_SAMPLES)
        mailbox = sum(
            p.stat().st_size for p in (org.root / user / "Mail").rglob("*") if p.is_file()
        )
    run = Run(
        args.scale,
        stats,
        changes,
        user,
        mailbox,
        generated,
        results,
        save,
        keepstone.messages,
        found,
        time.perf_counter() - started,
        (load_at_start, os.getloadavg()[0]),
        args.catalog,
    )
    text = report(run)
    print(text)
    if args.write:
        write_section(args.write, TITLE, text)


if __name__ == "__main__":
    main()
