"""IMAP benchmark: Keepstone backing up and restoring an IMAP organization, side by side with
mbsync (Debian ``isync``) pulling the same mailboxes into a local Maildir, on one private Dovecot.

    uv run python bench/imap.py [--small | --scale 1.0] [--workdir DIR] [--keep]
        [--skip-keepstone] [--write docs/benchmarks.md]

The mailbox set (``bench/mailgen.py``): one mailbox of 5,000 messages of about 20 KB in its Inbox
and ten of 1,000 over five folders (``--small``: a tenth), written straight into Dovecot's Maildir
and indexed once before anything is timed. Then, in one run and in this order for every phase:
Keepstone, mbsync with its defaults (``FSync yes``) and mbsync with ``FSync no``:

1. the initial backup (messages/s, MB/s of RFC822.SIZE);
2. a 1 % change made through IMAP (new messages, re-flagged, expunged), then an incremental;
3. an incremental with nothing changed (seconds per mailbox);
4. restore of the 5,000-message mailbox into a new folder of the same user: Keepstone's
   ``restoreTo`` (MULTIAPPEND; then again with the server's MULTIAPPEND hidden, one APPEND per
   message) and mbsync pushing its local copy (``Sync Push``, ``CopyArrivalDate yes``); every
   restored folder is read back and compared with the source: bytes, flags and INTERNALDATE.

Keepstone is driven as a user drives it: a ``keepstone serve`` process, an ``Imap`` organization
made with ``POST /v8/Organizations``, a job (``POST /v8/Jobs``) started with
``POST /v8/Jobs/{id}/start`` and its session polled until it ends; restores through
``POST /v8/Organizations/{id}/explore`` and ``.../RestoreSessions/{id}/Organization/Mailboxes/
{owner}/restoreTo``. Needs Debian's dovecot-imapd and isync.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx

import imapio
import mailgen
from api import PASSWORD, start_server
from common import write_section
from dovecot import PLAIN_APPEND_HOST, Dovecot
from dovecot import free_port as free_tcp_port

TITLE = "IMAP: Keepstone vs mbsync"
SCRIPT_DIR = Path(__file__).resolve().parent
SEED = 20261203
MB = 1_000_000
CHANGE = 0.01
MBSYNC = "/usr/bin/mbsync"
TICK = os.sysconf("SC_CLK_TCK")
KS = "Keepstone"
MBS = "mbsync"
MBS_NOSYNC = "mbsync FSync no"
PHASES = ("initial", "incremental", "unchanged")
UNCHANGED_RUNS = 3  # sub-second figures on a shared machine: the median of three runs


@dataclass
class Step:
    seconds: float
    client_cpu: float  # the tool's CPU seconds (user + system) during the step
    server_cpu: float  # Dovecot's (its master and every finished child)
    note: str = ""
    load: float = field(default_factory=lambda: os.getloadavg()[0])  # 1-min load at the start


@dataclass
class Tool:
    name: str
    steps: dict[str, Step] = field(default_factory=dict)
    stored_bytes: int = 0
    problem: str = ""  # why it did not run


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU of a process (and of its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def disk_usage(path: Path) -> int:
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def settle() -> None:
    """Flush dirty pages so no step pays for the previous one's writes."""
    os.sync()


# ----- mbsync ----------------------------------------------------------------------------------


class Mbsync:
    """mbsync 1.4 pulling every mailbox into ``<dir>/<user>/`` (one channel per mailbox, run one
    after the other by ``mbsync -a``), and pushing one mailbox back as its restore."""

    def __init__(self, directory: Path, dovecot: Dovecot, fsync: bool) -> None:
        self.dir, self.dovecot, self.fsync = directory, dovecot, fsync
        self.rc = directory / "mbsyncrc"
        self.log = directory / "mbsync.log"

    def account(self, user: str, host: str = "127.0.0.1") -> str:
        return (
            f"IMAPAccount acc-{user}\nHost {host}\nPort {self.dovecot.port}\nUser {user}\n"
            f"Pass {mailgen.password(user)}\nSSLType None\nAuthMechs LOGIN\n\n"
            f"IMAPStore far-{user}\nAccount acc-{user}\n\n"
            f"MaildirStore near-{user}\nPath {self.dir}/{user}/\nInbox {self.dir}/{user}/INBOX\n"
            "SubFolders Verbatim\n\n"
        )

    def write_config(self, users: list[str]) -> None:
        self.dir.mkdir(parents=True)
        parts = [f"FSync {'yes' if self.fsync else 'no'}\n\n"]
        for user in users:
            (self.dir / user).mkdir()
            parts.append(self.account(user))
            parts.append(
                f"Channel {user}\nFar :far-{user}:\nNear :near-{user}:\nPatterns *\n"
                "Create Near\nSync Pull\nExpunge Near\nSyncState *\nCopyArrivalDate yes\n\n"
            )
        self.rc.write_text("".join(parts))

    def run(self, rc: Path, *args: str) -> Step:
        return timed_command([MBSYNC, "-q", "-c", str(rc), *args], self.dovecot, self.log)

    def sync(self) -> Step:
        return self.run(self.rc, "-a")

    def push(self, user: str, folder: str) -> Step:
        """mbsync's restore: its local copy of ``user``'s Inbox pushed into a new folder."""
        rc = self.dir / "mbsyncrc-push"
        rc.write_text(
            f"FSync {'yes' if self.fsync else 'no'}\n\n{self.account(user)}"
            f"Channel push\nFar :far-{user}:{folder}\nNear :near-{user}:INBOX\nCreate Far\n"
            f"Sync Push\nSyncState {self.dir}/push-state/\nCopyArrivalDate yes\n"
        )
        (self.dir / "push-state").mkdir(exist_ok=True)
        return self.run(rc, "push")

    def stored_bytes(self) -> int:
        return disk_usage(self.dir)


def timed_command(command: list[str], dovecot: Dovecot, log: Path) -> Step:
    assert dovecot.process is not None
    server_before = cpu_seconds(dovecot.process.pid)
    with log.open("ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise SystemExit(f"failed: {' '.join(command)}\n{tail}")
    server = cpu_seconds(dovecot.process.pid) - server_before
    return Step(seconds, usage.ru_utime + usage.ru_stime, server)


# ----- Keepstone, through its API -----------------------------------------------------------


class KeepstoneApi:
    """A ``keepstone serve`` process, an Imap organization, a job over the whole organization."""

    API = "/v8"

    def __init__(self, directory: Path, dovecot: Dovecot, users: list[str]) -> None:
        self.dir, self.dovecot, self.users = directory, dovecot, users
        self.server: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.http = httpx.Client(timeout=600)
        self.org_id = self.job_id = self.repository = ""
        self.summaries: dict[str, str] = {}

    def start(self) -> None:
        self.dir.mkdir(parents=True)
        port = free_tcp_port()
        # A loaded shared machine can take a while to import and open a fresh catalog.
        self.server, _seconds = start_server(self.dir / "data", port, wait=180)
        self.base = f"http://127.0.0.1:{port}{self.API}"
        token = self.http.post(
            f"{self.base}/Token",
            data={"grant_type": "password", "username": "admin", "password": PASSWORD},
        )
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        org = self.call("POST", "/Organizations", self.organization_body())
        self.org_id = org["id"]
        repository = first(self.call("GET", "/BackupRepositories"))
        self.repository = repository.get("path", "")
        job = self.call(
            "POST",
            "/Jobs",
            {
                "name": "imap bench",
                "organizationId": self.org_id,
                "repositoryId": repository["id"],
                "backupType": "EntireOrganization",
                "schedulePolicy": {"type": "ManualOnly"},
            },
        )
        self.job_id = job["id"]

    def organization_body(self) -> dict[str, Any]:
        return {
            "type": "Imap",
            "name": "imap-bench",
            "imapSettings": {
                "host": "127.0.0.1",
                "port": self.dovecot.port,
                "security": "None",
                "allowCleartext": True,
                "authentication": "Password",
                "maxConnections": 4,
                "users": [
                    {"name": user, "login": user, "password": mailgen.password(user)}
                    for user in self.users
                ],
            },
        }

    def call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, self.base + path, json=body)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else None

    def measured(self, work: Callable[[], Any]) -> tuple[Step, Any]:
        assert self.server is not None and self.dovecot.process is not None
        server, mine = self.dovecot.process.pid, self.server.pid
        before = cpu_seconds(server), cpu_seconds(mine, children=False)
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
        client = cpu_seconds(mine, children=False) - before[1]
        return Step(seconds, client, cpu_seconds(server) - before[0]), result

    def backup(self, label: str) -> Step:
        step, session = self.measured(self.run_job)
        items = self.call("GET", f"/JobSessions/{session['id']}/LogItems")
        said = [i.get("title") or i.get("message") or "" for i in listed(items)]
        self.summaries[label] = f"{session['status']}: {said[-1] if said else ''}"
        if session["status"] not in ("Success", "Warning"):
            raise RuntimeError(f"Keepstone {label} backup ended {session['status']}: {said}")
        step.note = f"{session_seconds(session):.2f} s"
        return step

    def run_job(self) -> dict[str, Any]:
        session = self.call("POST", f"/Jobs/{self.job_id}/start")
        while session["status"] in ("Queued", "Running"):
            time.sleep(0.05)
            session = self.call("GET", f"/JobSessions/{session['id']}")
        return dict(session)

    def restore(self, user: str, folder: str) -> Step:
        """``restoreTo`` the latest restore point's ``user`` mailbox into ``folder``."""
        explored = self.call("POST", f"/Organizations/{self.org_id}/explore", {})
        session = explored["id"]
        owners = listed(self.call("GET", f"/RestoreSessions/{session}/Organization/Mailboxes"))
        owner = next(o for o in owners if user in (o.get("name"), o.get("email")))
        path = f"/RestoreSessions/{session}/Organization/Mailboxes/{owner['id']}/restoreTo"
        step, counts = self.measured(lambda: self.call("POST", path, {"folder": folder}))
        step.note = str(counts)
        self.call("POST", f"/RestoreSessions/{session}/stop")
        return step

    def use_host(self, host: str) -> None:
        self.call("PUT", f"/Organizations/{self.org_id}", {"imapSettings": {"host": host}})

    def stored_bytes(self) -> int:
        return disk_usage(Path(self.repository)) if self.repository else 0

    def peak_rss(self) -> int:
        assert self.server is not None
        status = Path(f"/proc/{self.server.pid}/status").read_text()
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(found.group(1)) * 1024 if found else 0

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
            self.server = None
        self.http.close()


def session_seconds(session: dict[str, Any]) -> float:
    """The server's own duration of a job session: from its creation to its end."""
    begun, ended = (datetime.fromisoformat(session[k]) for k in ("creationTime", "endTime"))
    return (ended - begun).total_seconds()


def first(answer: Any) -> dict[str, Any]:
    return listed(answer)[0]


def listed(answer: Any) -> list[dict[str, Any]]:
    """A v8 page (``{"results": [...]}``) or a bare list."""
    if isinstance(answer, dict):
        return list(answer.get("results", []))
    return list(answer)


# ----- the run ---------------------------------------------------------------------------------


@dataclass
class Restore:
    seconds: float
    messages: int
    verified: str  # "verified" or what differed
    step: Step


@dataclass
class Run:
    scale: float
    stats: mailgen.MailStats
    wire_bytes: int
    generate_seconds: float
    index_seconds: float
    changes: imapio.Changes
    tools: dict[str, Tool]
    restores: dict[str, Restore]
    keepstone_summaries: dict[str, str]
    keepstone_rss: int
    versions: dict[str, str]
    total_seconds: float = 0.0


def imap_session(dovecot: Dovecot, user: str, host: str = "127.0.0.1") -> Any:
    return imapio.session(host, dovecot.port, user, mailgen.password(user))


def wire_size(dovecot: Dovecot, users: list[str]) -> int:
    """The sum of RFC822.SIZE (CRLF line ends): what an IMAP client downloads."""
    total = 0
    for user in users:
        for path in dovecot.maildir(user).rglob("*,W=*"):
            total += int(re.search(r",W=(\d+)", path.name).group(1))  # type: ignore[union-attr]
    return total


def make_changes(dovecot: Dovecot, users: list[str], mails: mailgen.MailSet) -> imapio.Changes:
    rng = random.Random(f"{SEED}:change")
    total = imapio.Changes()
    for user in users:
        arrival = partial(mails.message, rng, "INBOX", f"{user}@{mailgen.DOMAIN}")
        with imap_session(dovecot, user) as client:
            done = imapio.change(client, rng, CHANGE, arrival)
        total.new += done.new
        total.reflagged += done.reflagged
        total.expunged += done.expunged
    return total


# mbsync inserts this header into every message it copies (its "transaction UID").
MBSYNC_TUID = re.compile(rb"^X-TUID: [^\r\n]*\r\n", re.M)


def check_restore(dovecot: Dovecot, user: str, before: set[str]) -> tuple[int, str]:
    """Read every folder the restore created and compare it with the source Inbox."""
    with imap_session(dovecot, user) as client:
        created = [f for f in imapio.folders(client) if f not in before]
        expected = imapio.fingerprints(client, "INBOX")
        got = sum((imapio.fingerprints(client, f) for f in created), Counter())
        count = sum(got.values())
        if got == expected:
            return count, "verified"
        loose = sum((imapio.fingerprints(client, f, MBSYNC_TUID) for f in created), Counter())
        if loose == imapio.fingerprints(client, "INBOX", MBSYNC_TUID):
            return count, "identical but for an added X-TUID header"
    missing, extra = expected - got, got - expected
    return count, f"{sum(missing.values())} missing or different, {sum(extra.values())} extra"


def run_all(
    args: argparse.Namespace, work: Path, say: Callable[[str], None], started: float
) -> Run:
    users = mailgen.users()
    dovecot = Dovecot(work / "dovecot", {u: mailgen.password(u) for u in users})
    mails = mailgen.MailSet(args.scale, SEED)
    clock = time.perf_counter()
    stats = mails.write({u: dovecot.maildir(u) for u in users})
    generated = time.perf_counter() - clock
    wire = wire_size(dovecot, users)
    say(f"generated {stats.messages:,} messages, {wire / MB:,.0f} MB in {generated:.1f} s")
    dovecot.start()
    keepstone: KeepstoneApi | None = None
    try:
        clock = time.perf_counter()
        for user in users:
            with imap_session(dovecot, user) as client:
                imapio.prime(client)
        indexed = time.perf_counter() - clock
        say(f"Dovecot indexed every folder in {indexed:.1f} s")
        tools = {name: Tool(name) for name in (KS, MBS, MBS_NOSYNC)}
        mbsyncs = {
            MBS: Mbsync(work / "mbsync", dovecot, fsync=True),
            MBS_NOSYNC: Mbsync(work / "mbsync-nofsync", dovecot, fsync=False),
        }
        for tool in mbsyncs.values():
            tool.write_config(users)
        if args.skip_keepstone:
            tools[KS].problem = "not run (--skip-keepstone)"
        else:
            keepstone = KeepstoneApi(work / "keepstone", dovecot, users)
            try:
                keepstone.start()
            except (RuntimeError, httpx.HTTPError, SystemExit) as error:
                tools[KS].problem = f"could not set up: {error}"
                say(f"Keepstone: {tools[KS].problem}")
                keepstone.stop()
                keepstone = None
        changes = imapio.Changes()
        for phase in PHASES:
            if phase == "incremental":
                changes = make_changes(dovecot, users, mails)
                say(f"changed {changes.total} messages: {changes.describe()}")
            run_phase(phase, tools, keepstone, mbsyncs, say)
        for name, tool in mbsyncs.items():
            tools[name].stored_bytes = tool.stored_bytes()
        restores = run_restores(dovecot, tools, keepstone, mbsyncs[MBS], say)
        if keepstone is not None:
            tools[KS].stored_bytes = keepstone.stored_bytes()
        summaries = keepstone.summaries if keepstone else {}
        rss = keepstone.peak_rss() if keepstone else 0
    finally:
        if keepstone is not None:
            keepstone.stop()
        dovecot.stop()
    return Run(
        args.scale,
        stats,
        wire,
        generated,
        indexed,
        changes,
        tools,
        restores,
        summaries,
        rss,
        versions(),
        time.perf_counter() - started,
    )


def run_phase(
    phase: str,
    tools: dict[str, Tool],
    keepstone: KeepstoneApi | None,
    mbsyncs: dict[str, Mbsync],
    say: Callable[[str], None],
) -> None:
    """One phase for every tool, Keepstone first; the no-change phase three times over, each
    tool's median kept."""
    runs: dict[str, list[Step]] = {name: [] for name in tools}
    for _ in range(UNCHANGED_RUNS if phase == "unchanged" else 1):
        if keepstone is not None and not tools[KS].problem:
            settle()
            try:
                runs[KS].append(step := keepstone.backup(phase))
                say(f"  {KS}: {phase} {step.seconds:.2f} s ({keepstone.summaries[phase]})")
            except (RuntimeError, httpx.HTTPError) as error:
                tools[KS].problem = f"{phase} backup failed: {error}"
                say(f"  {KS}: {tools[KS].problem}")
        for name, mbsync in mbsyncs.items():
            settle()
            runs[name].append(step := mbsync.sync())
            say(f"  {name}: {phase} {step.seconds:.2f} s")
    for name, steps in runs.items():
        if steps:
            ordered = sorted(steps, key=lambda s: s.seconds)
            tools[name].steps[phase] = ordered[len(ordered) // 2]


RESTORE_FOLDERS = {
    KS: "Restored-keepstone",
    f"{KS} (APPEND)": "Restored-keepstone-append",
    MBS: "Restored-mbsync",
}


def run_restores(
    dovecot: Dovecot,
    tools: dict[str, Tool],
    keepstone: KeepstoneApi | None,
    mbsync: Mbsync,
    say: Callable[[str], None],
) -> dict[str, Restore]:
    """Restore the big mailbox with each tool, each into its own new folder, then check it."""
    user = mailgen.BIG_USER
    attempts: list[tuple[str, Callable[[], Step]]] = []
    if keepstone is not None and not tools[KS].problem:
        attempts.append((KS, lambda: keepstone.restore(user, RESTORE_FOLDERS[KS])))

        def plain_append() -> Step:
            keepstone.use_host(PLAIN_APPEND_HOST)
            return keepstone.restore(user, RESTORE_FOLDERS[f"{KS} (APPEND)"])

        attempts.append((f"{KS} (APPEND)", plain_append))
    attempts.append((MBS, lambda: mbsync.push(user, RESTORE_FOLDERS[MBS])))
    results: dict[str, Restore] = {}
    for name, attempt in attempts:
        with imap_session(dovecot, user) as client:
            before = set(imapio.folders(client))
        settle()
        try:
            step = attempt()
        except (RuntimeError, httpx.HTTPError) as error:
            say(f"  {name}: restore failed: {error}")
            if name == KS:
                tools[KS].problem = f"restore failed: {error}"
            continue
        count, verdict = check_restore(dovecot, user, before)
        results[name] = Restore(step.seconds, count, verdict, step)
        say(f"  {name}: restore of {count:,} messages {step.seconds:.2f} s, {verdict}")
    return results


def versions() -> dict[str, str]:
    mbsync = subprocess.run([MBSYNC, "--version"], capture_output=True, text=True).stdout
    dovecot = subprocess.run(["/usr/sbin/dovecot", "--version"], capture_output=True, text=True)
    from importlib.metadata import version

    return {
        "mbsync": mbsync.split()[-1] if mbsync else "?",
        "dovecot": dovecot.stdout.split()[0] if dovecot.stdout else "?",
        "keepstone": version("keepstone"),
        "code": code_measured(),
    }


def code_measured() -> str:
    """The commit measured, and the heads of a merge not yet committed (a trial merge)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=SCRIPT_DIR)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    merging = Path(SCRIPT_DIR, git("rev-parse", "--git-path", "MERGE_HEAD") or "-")
    if merging.is_file():
        heads = [git("rev-parse", "--short", line) for line in merging.read_text().split()]
        return f"commit {head} with an uncommitted merge of {', '.join(heads)}"
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "src") else ""
    return f"commit {head}{dirty}"


# ----- the report ------------------------------------------------------------------------------


def rate(run: Run, step: Step | None, messages: int, size: int) -> str:
    if step is None:
        return "-"
    return (
        f"{step.seconds:.2f} s ({messages / step.seconds:,.0f} msg/s, "
        f"{size / MB / step.seconds:.1f} MB/s)"
    )


def ratio(mine: float | None, theirs: float | None) -> str:
    return f"{mine / theirs:.2f}" if mine and theirs else "-"


def table(run: Run) -> str:
    ks, mb, nf = (run.tools[n] for n in (KS, MBS, MBS_NOSYNC))
    mailboxes = len(run.stats.by_user)
    rows = []

    def seconds(tool: Tool, phase: str) -> float | None:
        step = tool.steps.get(phase)
        return step.seconds if step else None

    def cell(tool: Tool, phase: str, per_mailbox: bool = False) -> str:
        value = seconds(tool, phase)
        if value is None:
            return "-"
        if per_mailbox:
            return f"{value:.2f} s ({value / mailboxes:.3f} s/mailbox)"
        return f"{value:.2f} s"

    messages, size = run.stats.messages, run.wire_bytes
    initial = [rate(run, t.steps.get("initial"), messages, size) for t in (ks, mb, nf)]
    rows.append(("initial backup", initial, "initial"))
    rows.append(
        (
            f"incremental, 1 % changed ({run.changes.total} messages)",
            [cell(t, "incremental") for t in (ks, mb, nf)],
            "incremental",
        )
    )
    rows.append(
        (
            f"incremental, nothing changed ({mailboxes} mailboxes; median of {UNCHANGED_RUNS})",
            [cell(t, "unchanged", True) for t in (ks, mb, nf)],
            "unchanged",
        )
    )
    lines = [
        f"| measure | {KS} | {MBS} | {MBS_NOSYNC} | {KS}/{MBS} | {KS}/{MBS_NOSYNC} |",
        "|---|---|---|---|---|---|",
    ]
    for name, cells, phase in rows:
        lines.append(
            f"| {name} | {' | '.join(cells)} | {ratio(seconds(ks, phase), seconds(mb, phase))} "
            f"| {ratio(seconds(ks, phase), seconds(nf, phase))} |"
        )
    cpu = [
        f"{t.steps['initial'].client_cpu:.1f} s / {t.steps['initial'].server_cpu:.1f} s"
        if "initial" in t.steps
        else "-"
        for t in (ks, mb, nf)
    ]
    lines.append(f"| initial backup CPU: the tool / Dovecot | {' | '.join(cpu)} | | |")
    stored = [f"{t.stored_bytes / MB:,.0f} MB" if t.stored_bytes else "-" for t in (ks, mb, nf)]
    lines.append(
        f"| stored after three runs | {' | '.join(stored)} "
        f"| {ratio(ks.stored_bytes, mb.stored_bytes)} | {ratio(ks.stored_bytes, nf.stored_bytes)} |"
    )
    ks_restore, mb_restore = run.restores.get(KS), run.restores.get(MBS)
    restore_cells = [
        restore_cell(ks_restore),
        restore_cell(mb_restore),
        "",
        ratio(
            ks_restore.seconds if ks_restore else None, mb_restore.seconds if mb_restore else None
        ),
        "",
    ]
    lines.append(f"| restore one mailbox ({mailgen.BIG_USER}) | {' | '.join(restore_cells)} |")
    append = run.restores.get(f"{KS} (APPEND)")
    if append:
        lines.append(f"| the same, one APPEND per message | {restore_cell(append)} | | | | |")
    return "\n".join(lines)


def restore_cell(restore: Restore | None) -> str:
    if restore is None:
        return "-"
    return (
        f"{restore.seconds:.2f} s ({restore.messages / restore.seconds:,.0f} msg/s, "
        f"{restore.verified})"
    )


def aims(run: Run) -> list[str]:
    ks, mb = run.tools[KS], run.tools[MBS]
    if "initial" not in ks.steps:
        return [f"- not measured: Keepstone {ks.problem}"]

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    speed = mb.steps["initial"].seconds / ks.steps["initial"].seconds
    lines = [
        f"- initial backup at least mbsync's throughput: {speed:.2f}x mbsync's — "
        f"{verdict(speed >= 1)}"
    ]
    if "unchanged" in ks.steps:
        per = ks.steps["unchanged"].seconds / len(run.stats.by_user)
        lines.append(
            f"- no-change incremental under 0.2 s per mailbox: {per:.3f} s — {verdict(per < 0.2)}"
        )
    restore = run.restores.get(KS)
    if restore:
        speed = restore.messages / restore.seconds
        lines.append(
            f"- restore at least 1,000 messages/s with MULTIAPPEND: {speed:,.0f} msg/s — "
            f"{verdict(speed >= 1000 and restore.verified == 'verified')}"
        )
    return lines


def setup_text(run: Run, command: str) -> str:
    s = run.stats
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    loads = [step.load for tool in run.tools.values() for step in tool.steps.values()]
    load = f"{min(loads):.1f}-{max(loads):.1f}" if loads else "?"
    return (
        f"`{command}` on {os.cpu_count()} cores and {memory / 1e9:.0f} GB of RAM, Python "
        f"{platform.python_version()}, 1-minute load average {load} when the steps began (the "
        "machine is shared: other work ran beside the benchmark), everything on one local disk. "
        f"Dovecot {run.versions['dovecot']} (`bench/dovecot.py`: rootless, plain IMAP "
        "on loopback, Maildir, `mail_fsync = never` so the server's disk is not what is "
        f"measured). The mailbox set (`bench/mailgen.py`, seed {SEED}): {len(s.by_user)} "
        f"mailboxes, {s.messages:,} messages, {run.wire_bytes / MB:,.0f} MB as IMAP counts it "
        f"(average {run.wire_bytes / s.messages / 1000:.1f} KB; {s.attachments:,} with a base64 "
        f"attachment, {s.shared_attachments:,} of them from a shared pool; {s.list_copies:,} "
        f"mailing-list copies identical across mailboxes), {s.folders} folders; the largest "
        f"mailbox has {max(s.by_user.values()):,} messages in one folder. Written into Maildir in "
        f"{run.generate_seconds:.1f} s, indexed by Dovecot in {run.index_seconds:.1f} s before "
        f"any timing. The 1 % change: {run.changes.describe()}, through IMAP."
    )


def tools_text(run: Run) -> str:
    v = run.versions
    text = (
        f"Keepstone {v['keepstone']} ({v['code']}): one `keepstone serve` process; an `Imap` "
        "organization (`POST /v8/Organizations`, security `None` on loopback, 4 connections), a "
        "job over the whole organization started with `POST /v8/Jobs/{id}/start`, its session "
        "polled every 50 ms until it ended (the time is the client's, from the start request to "
        "the end seen); the default repository (deduplicated, compressed). Restores: "
        "`POST /v8/Organizations/{id}/explore`, then `restoreTo` a new folder of the same user "
        "(the server has MULTIAPPEND); the APPEND row is the same restore after "
        f"`PUT /v8/Organizations/{{id}}` pointed the organization at {PLAIN_APPEND_HOST}, where "
        "the same Dovecot hides MULTIAPPEND. "
        f"mbsync {v['mbsync']} (Debian isync): one channel per mailbox (`Patterns *`, "
        "`Create Near`, `Sync Pull`, `Expunge Near`, `SyncState *`, `CopyArrivalDate yes`), "
        "all run by one `mbsync -a`, once with its default `FSync yes` and once with `FSync no`, "
        "each into its own Maildir; its restore pushes its local copy of the mailbox into a new "
        "folder (`Sync Push`, `Create Far`, `CopyArrivalDate yes`, a fresh `SyncState`). Every "
        "restored folder was read back and compared with the source Inbox: BLAKE3 of every "
        "message, its flags and its INTERNALDATE. In each phase Keepstone ran first, then the "
        "two mbsync runs. CPU: the tool's process (Keepstone: the whole server process) and "
        "Dovecot's (all its processes). Ratios are Keepstone's time divided by the other's: "
        "below 1 is better for Keepstone. MB = 10^6 bytes."
    )
    return text


def keepstone_text(run: Run) -> str:
    ks = run.tools[KS]
    if ks.problem and not ks.steps:
        return f"**Keepstone was not measured:** {ks.problem}."
    said = "; ".join(f'{label}: "{text}"' for label, text in run.keepstone_summaries.items())
    cpu = ", ".join(
        f"{phase} {s.client_cpu:.1f} s (Dovecot {s.server_cpu:.1f} s)"
        for phase, s in ks.steps.items()
    )
    own = ", ".join(f"{phase} {s.note}" for phase, s in ks.steps.items())
    extra = f" **Problem:** {ks.problem}." if ks.problem else ""
    return (
        f"The job sessions' own durations (creation to end, as the server records them): {own}. "
        f"Keepstone's server process CPU per run: {cpu}; its peak RSS over the whole benchmark "
        f"{run.keepstone_rss / MB:,.0f} MB. The job runs' own summaries: {said}.{extra}"
    )


def report(run: Run, command: str) -> str:
    return "\n\n".join(
        (
            setup_text(run, command),
            tools_text(run),
            table(run),
            "Aims:\n\n" + "\n".join(aims(run)),
            keepstone_text(run),
            f"The whole benchmark took {run.total_seconds / 60:.1f} minutes.",
        )
    )


# ----- main ------------------------------------------------------------------------------------


@contextmanager
def workspace(parent: Path | None, keep: bool) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="keepstone-bench-imap-", dir=parent))
    os.chmod(work, 0o755)  # Dovecot runs as an unprivileged user below it
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
    size.add_argument("--scale", type=float, default=1.0, help="1.0: 15,000 messages, ~300 MB")
    size.add_argument("--small", action="store_true", help="a tenth of the data (--scale 0.1)")
    parser.add_argument("--workdir", type=Path, help="where the temporary directory goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--skip-keepstone", action="store_true", help="measure mbsync only")
    parser.add_argument("--write", type=Path, help="replace this benchmark's section there")
    args = parser.parse_args(argv)
    if args.small:
        args.scale = 0.1
    if args.scale <= 0:
        parser.error("--scale must be positive")
    return args


def main() -> None:
    args = parse_args()
    for needed in (MBSYNC, "/usr/sbin/dovecot"):
        if not Path(needed).exists():
            raise SystemExit(f"{needed} is missing: apt-get install -y dovecot-imapd isync")
    started = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {text}", file=sys.stderr, flush=True)

    command = "bench/imap.py " + " ".join(a for a in sys.argv[1:] if not a.startswith("/"))
    with workspace(args.workdir, args.keep) as work:
        run = run_all(args, work, say, started)
    text = report(run, command.strip())
    print(text)
    if args.write:
        write_section(args.write, TITLE, text)


if __name__ == "__main__":
    main()
