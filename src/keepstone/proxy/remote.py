"""``keepstone proxy``: a proxy on another machine, working runs for a server over HTTP.

It needs no catalog and no key: it registers once with a one-time token (``keepstone admin
proxy-token``) and keeps the credential it gets in a 0600 state file, so a restart needs no new
token. Runs, their work packages (repository places and secrets) and everything a run reports
go through ``ServerChannel`` to the server's ``/_proxy/v1``. Plain ``http://`` is accepted only
to a loopback server; otherwise https, checked against the system store (``SSL_CERT_FILE``).
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from keepstone import __version__
from keepstone.clock import Clock, SystemClock
from keepstone.domain.jobs import SessionStatus
from keepstone.engine.s3location import is_loopback
from keepstone.proxy import load
from keepstone.proxy.channel import WorkPackage
from keepstone.proxy.executor import StopRun
from keepstone.proxy.worker import Worker
from keepstone.services import proxy_wire, restore_points, runs
from keepstone.services.task_sessions import UserTally

log = structlog.get_logger(__name__)

STATE_FILE = "proxy.json"
API = "/_proxy/v1"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
END_PATIENCE_SECONDS = 120.0  # how long an attempt's end is retried while the server is away
STOP_GRACE_SECONDS = 60.0
# How long a call about a run is asked again while the server is away (within a run's lease, so
# no other proxy has taken the run over meanwhile; the server answers 409 if one has).
AWAY_PATIENCE_SECONDS = 60.0
AWAY_STATUSES = (502, 503, 504)
LOST = "This proxy lost its claim on the run"


class ProxyError(Exception):
    """The proxy cannot go on (a refused registration, a bad server URL): says why."""


def default_state_dir(name: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "keepstone-proxy" / name


def check_server_url(url: str) -> str:
    """``https://``, or ``http://`` to a loopback server only; returns it without a final /."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ProxyError(f"--server must be an https:// URL; got '{url}'")
    if parts.scheme == "http" and not _loopback(host):
        raise ProxyError(
            "--server: plain http:// is accepted only to a server on this machine; use https://"
        )
    return url.rstrip("/")


def _loopback(host: str) -> bool:
    return is_loopback(host)


def tls_context() -> ssl.SSLContext:
    """The system's CA store (OpenSSL honours ``SSL_CERT_FILE``/``SSL_CERT_DIR``), TLS 1.2+."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# ---- the state file: the credential, kept between runs of the proxy ---------------------------


@dataclass(frozen=True)
class State:
    server: str
    proxy_id: str
    credential: str

    def __repr__(self) -> str:  # the credential never reaches a log line through a repr
        return f"State(server={self.server!r}, proxy_id={self.proxy_id!r})"


def load_state(state_dir: Path, server: str) -> State | None:
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ProxyError(f"the state file {path} cannot be read: {error}") from None
    if data.get("server") != server:
        return None  # registered with another server: this one needs a token
    return State(data["server"], data["proxyId"], data["credential"])


def save_state(state_dir: Path, state: State) -> None:
    """Write the state file 0600 in a 0700 directory (a temporary file, then a rename)."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    temporary = state_dir / (STATE_FILE + ".tmp")
    data = {"server": state.server, "proxyId": state.proxy_id, "credential": state.credential}
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(data, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, state_dir / STATE_FILE)


# ---- the channel over HTTP --------------------------------------------------------------------


def retry_after(response: httpx.Response) -> float | None:
    """The seconds of a ``Retry-After`` given in seconds (small, as Keepstone sends), if any."""
    value = response.headers.get("retry-after", "")
    return min(float(value), 30.0) if value.isdigit() else None


def message_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text[:500]


class ServerChannel:
    """A ``RunChannel`` to a server's ``/_proxy/v1``, authenticated by the proxy credential."""

    def __init__(self, client: httpx.Client, proxy_id: str, clock: Clock | None = None) -> None:
        self.client = client
        self.proxy_id = proxy_id
        self.clock: Clock = clock or SystemClock()
        self.away_patience = AWAY_PATIENCE_SECONDS
        # (run, task id) -> the task's user, until the task or its run ends
        self._subjects: dict[tuple[str, str], tuple[str, str]] = {}

    def _post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.client.post(API + path, json=body or {})

    def _patient_post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """``_post``, asked again while the server says it cannot answer now (502/503/504: its
        catalog restarting, a reverse proxy between restarts) or cannot be reached at all (the
        request never left), for up to ``away_patience`` seconds: a run is not failed for a
        moment's absence. Other answers, and transport errors after the request was sent (it
        may have been done), are the caller's."""
        deadline = time.monotonic() + self.away_patience
        pause = 0.5
        while True:
            try:
                response = self._post(path, body)
                if response.status_code not in AWAY_STATUSES or time.monotonic() > deadline:
                    return response
                wait = retry_after(response) or pause
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                wait = pause
            log.warning("server away; asking again", path=path, seconds=wait)
            time.sleep(wait)
            pause = min(pause * 2, 5.0)

    def _call(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """A call the proxy cannot go on without: refusals raise, naming the server's reason."""
        response = self._post(path, body)
        if response.status_code >= 400:
            raise ProxyError(f"{path}: {response.status_code} {message_of(response)}")
        return response

    def _run_call(
        self, run: runs.Attempt, what: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """A call about a run: a refusal of the claim (another proxy's now, or ended) stops the
        run at once, so nothing more of it is written."""
        claim = proxy_wire.claim_token(run)
        response = self._patient_post(f"/runs/{run.session_id}/{claim}/{what}", body)
        if response.status_code in (403, 404, 409):
            raise StopRun(SessionStatus.FAILED, LOST)
        if response.status_code >= 400:
            raise ProxyError(f"{what}: {response.status_code} {message_of(response)}")
        return response

    def start(self) -> int:
        return int(self._call("/start").json()["abandoned"])

    def heartbeat(self, active_runs: int) -> int:
        load.HOST.sample()
        now = load.HOST.current()
        body = {
            "cpuPercent": now.cpu_percent,
            "memoryPercent": now.memory_percent,
            "version": __version__,
            "activeRuns": active_runs,
        }
        return int(self._call("/heartbeat", body).json()["threadsNumber"])

    def claim(self) -> runs.ClaimedRun | None:
        response = self._call("/claim")
        if response.status_code == 204:
            return None
        return proxy_wire.decode_run(response.json())

    def work(self, run: runs.ClaimedRun) -> WorkPackage:
        return proxy_wire.decode_work(self._run_call(run, "work").json())

    def renew(
        self, run: runs.ClaimedRun, statistics: runs.Statistics, progress: int
    ) -> runs.RunState:
        try:
            response = self._run_call(
                run, "renew", {"statistics": statistics, "progress": progress}
            )
        except StopRun:
            return runs.RunState.LOST
        except httpx.TransportError:
            return runs.RunState.CONTINUE  # the server is away a moment: the lease says how long
        return runs.RunState(response.json()["state"])

    def log(
        self,
        run: runs.ClaimedRun,
        status: SessionStatus,
        message: str,
        subject: tuple[str, str] | None,
    ) -> None:
        body: dict[str, Any] = {"status": status.value, "message": message[:8000]}
        if subject is not None:
            body["subject"] = {"id": subject[0], "name": subject[1]}
        self._run_call(run, "log", body)

    def start_task(self, run: runs.ClaimedRun, subject: tuple[str, str]) -> str:
        response = self._run_call(run, "tasks", {"id": subject[0], "name": subject[1]})
        task_id = str(response.json()["taskId"])
        self._subjects[run.session_id, task_id] = subject  # for its success log item
        return task_id

    def finish_task(
        self,
        run: runs.ClaimedRun,
        task_id: str,
        status: SessionStatus,
        tally: UserTally,
        reason: str,
        outcome: str = "",
    ) -> None:
        body: dict[str, Any] = {
            "status": status.value,
            "items": tally.items,
            "totalBytes": tally.total_bytes,
            "readBytes": tally.read_bytes,
            "writtenBytes": tally.written_bytes,
            "reason": reason,
        }
        self._run_call(run, f"tasks/{task_id}/finish", body)
        # The success log item goes as it always went, in a call of its own: the wire stays as
        # servers of every version take it (in process, CatalogChannel writes both at once).
        subject = self._subjects.pop((run.session_id, task_id), None)
        if outcome:
            self.log(run, SessionStatus.SUCCESS, outcome, subject)

    def record(
        self, run: runs.ClaimedRun, repository_id: str, facts: restore_points.SnapshotFacts
    ) -> None:
        body = {"repositoryId": repository_id, "facts": proxy_wire.encode_facts(facts)}
        self._run_call(run, "record", body)

    def end(
        self,
        run: runs.ClaimedRun,
        status: SessionStatus,
        message: str,
        statistics: runs.Statistics,
        progress: int,
        *,
        retryable: bool,
    ) -> None:
        for key in list(self._subjects):  # tasks a stopped run never finished
            if key[0] == run.session_id:
                self._subjects.pop(key, None)
        body = {
            "status": status.value,
            "message": message,
            "statistics": statistics,
            "progress": progress,
            "retryable": retryable,
        }
        deadline = time.monotonic() + END_PATIENCE_SECONDS
        while True:  # the outcome is worth waiting for: lost, the reaper fails the attempt
            try:
                self._run_call(run, "end", body)
                return
            except StopRun:
                return  # someone else has ended this attempt (reaped, taken over)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)


# ---- the process ------------------------------------------------------------------------------


def register(client: httpx.Client, server: str, token: str, name: str) -> State:
    response = client.post(API + "/register", json={"token": token, "name": name})
    if response.status_code != 200:
        raise ProxyError(f"registration refused: {message_of(response)}")
    data = response.json()
    return State(server, data["proxyId"], data["credential"])


def run_proxy(
    server: str,
    token: str | None,
    name: str,
    state_dir: Path | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Register (once), then work runs until SIGTERM or Ctrl-C; then stop like the built-in
    proxy does: running runs end at their next check and are retried later."""
    server = check_server_url(server)
    state_dir = state_dir or default_state_dir(name)
    verify: ssl.SSLContext | bool = tls_context() if server.startswith("https:") else False
    with httpx.Client(base_url=server, timeout=TIMEOUT, verify=verify) as client:
        state = load_state(state_dir, server)
        if state is None:
            if not token:
                raise ProxyError("--token is needed to register this proxy with the server")
            state = register(client, server, token, name)
            save_state(state_dir, state)
            say(f"Registered proxy '{name}' ({state.proxy_id}) with {server}")
        client.headers["Authorization"] = f"Bearer {state.credential}"
        stopped = (
            f"The proxy {name} was stopped during this run; the work finished so far is kept "
            "and the next attempt continues from it"
        )
        worker = Worker(ServerChannel(client, state.proxy_id), shutdown_message=stopped)
        stopping = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stopping.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            worker.start()
            say(f"Proxy '{name}' working for {server}")
            stopping.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if not worker.stop(STOP_GRACE_SECONDS):
                log.error("runs did not stop in time; exiting", seconds=STOP_GRACE_SECONDS)
                os._exit(1)
    say(f"Proxy '{name}' stopped")
