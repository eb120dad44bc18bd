"""Helpers for tests that run ``keepstone`` as a real process: servers, admin commands, logins.

Servers write stdout/stderr to files (never pipes, so a chatty server cannot block on a full
pipe); tests read them once the process is done or whenever they need to.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

READY_TIMEOUT = 180.0  # a loaded CI machine has taken over 60 s to start a server
STOP_TIMEOUT = 30.0
CLI_TIMEOUT = 120.0
# Children may cache compiled bytecode here (outside the source tree and the venv): every server
# and CLI process imports the whole application, and compiling it each time doubles start-up.
PYCACHE_DIR = Path(tempfile.gettempdir()) / f"keepstone-tests-pycache-{os.getuid()}"
SERVER_ENV_VARS = (
    "KEEPSTONE_DATA_DIR",
    "KEEPSTONE_ADMIN_USER",
    "KEEPSTONE_ADMIN_PASSWORD",
    "KEEPSTONE_TIMEZONE",
    "KEEPSTONE_TRUSTED_PROXIES",
    "KEEPSTONE_PUBLIC_URL",
)


def keepstone_command(*args: str) -> list[str]:
    """The ``keepstone`` console script of this venv, with ``args``."""
    script = shutil.which("keepstone", path=str(Path(sys.executable).parent)) or shutil.which(
        "keepstone"
    )
    if script is not None:
        return [script, *args]
    return [sys.executable, "-c", "from keepstone.cli import main; main()", *args]


def process_env(home: Path | None = None, **overrides: str | None) -> dict[str, str]:
    """A copy of this process's environment without any ``KEEPSTONE_*`` setting, plus
    ``overrides`` (a ``None`` value removes the variable). ``home`` replaces ``HOME``."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_ENV_VARS}
    # The CLI's console output is wrapped to the terminal width; keep the default width so the
    # tests see what an operator piping the output would see.
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE_DIR)
    env["PYTHONUNBUFFERED"] = "1"
    if home is not None:
        env["HOME"] = str(home)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A ``keepstone serve`` process started by a test."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path | None
    stdout_path: Path
    stderr_path: Path
    https: bool = False
    _files: list[Any] = field(default_factory=list)
    _ready: bool = False

    @property
    def base_url(self) -> str:
        return f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}"

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return (
            f"exit code {self.process.poll()}\n--- stdout ---\n{self.stdout}\n"
            f"--- stderr (last 3000 chars) ---\n{self.stderr[-3000:]}"
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Wait until the port accepts connections (uvicorn binds after start-up is complete)."""
        if self._ready:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited before it was ready: {self.describe()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    self._ready = True
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"server not ready within {timeout} s: {self.describe()}")

    def send(self, signum: signal.Signals) -> int | None:
        """Send ``signum`` and wait for the exit code (``None`` if it did not exit in time)."""
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int:
        """Stop the server whatever it takes; returns its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        for handle in self._files:
            handle.close()
        self._files.clear()
        code = self.process.returncode
        assert code is not None
        return code


def start_server(
    logs: Path,
    data_dir: Path | None,
    *args: str,
    env: dict[str, str] | None = None,
    https: bool = False,
    port: int | None = None,
    wait: bool = True,
    ready_timeout: float = READY_TIMEOUT,
) -> ServerProcess:
    """Start ``keepstone serve`` (``--data-dir`` only when ``data_dir`` is given) on a free port;
    ``logs`` is a directory for its output files."""
    logs.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = keepstone_command("serve", "--port", str(port), *args)
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    serial = len(list(logs.glob("server-*.out")))
    stdout_path = logs / f"server-{serial}.out"
    stderr_path = logs / f"server-{serial}.err"
    stdout = stdout_path.open("wb")
    stderr = stderr_path.open("wb")
    process = subprocess.Popen(
        command,
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        env=env if env is not None else process_env(),
    )
    server = ServerProcess(
        process, port, data_dir, stdout_path, stderr_path, https, [stdout, stderr]
    )
    if wait:
        try:
            server.wait_ready(ready_timeout)
        except BaseException:
            server.stop()
            raise
    return server


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run ``keepstone args...`` to completion, capturing its output as text."""
    return subprocess.run(
        keepstone_command(*args),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env=env if env is not None else process_env(),
    )


def run_clis(
    *commands: Sequence[str], env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT
) -> list[subprocess.CompletedProcess[str]]:
    """Run several ``keepstone`` commands at once (they are independent); their results in order."""
    processes = [
        subprocess.Popen(
            keepstone_command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env if env is not None else process_env(),
        )
        for args in commands
    ]
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def token_response(client: httpx.Client, username: str, password: str) -> httpx.Response:
    """``POST /v2/Token`` with the vendor's form-encoded password grant."""
    return client.post(
        "/v2/Token", data={"grant_type": "password", "username": username, "password": password}
    )


def login(client: httpx.Client, username: str, password: str) -> str:
    """An access token for ``username``, asserting the login succeeds."""
    response = token_response(client, username, password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_local_organization(client: httpx.Client, name: str, root: Path) -> str:
    """``POST /v2/Organizations`` of a Local organization at ``root``; returns its id."""
    response = client.post(
        "/v2/Organizations",
        json={"type": "Local", "name": name, "localSettings": {"path": str(root)}},
    )
    assert response.status_code == 200, response.text
    org_id: str = response.json()["id"]
    return org_id


def add_job(client: httpx.Client, org_id: str, name: str, repository_id: str) -> str:
    """A manual job of the whole organization into ``repository_id``; returns its id."""
    response = client.post(
        f"/v2/Organizations/{org_id}/Jobs", json={"name": name, "repositoryId": repository_id}
    )
    assert response.status_code == 200, response.text
    job_id: str = response.json()["id"]
    return job_id
