"""Start, stop and ``kill -9`` a real ``keepstone proxy`` process (a remote proxy) in a test.

``registration_token(data_dir, env)`` runs ``keepstone admin proxy-token`` and returns what it
printed; ``start_proxy(logs, server_url, name, token, state_dir)`` starts ``keepstone proxy``
with its output in files (never pipes) and waits until it says it works for the server.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import process_helpers as processes
from tests.conftest import Api
from tests.local_org import Organization

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
WORKING = "working for"


def registration_token(data_dir: Path, env: dict[str, str]) -> str:
    result = processes.run_cli("admin", "proxy-token", "--data-dir", str(data_dir), env=env)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n", "the token is printed alone on stdout"
    return token


@dataclass
class ProxyProcess:
    process: subprocess.Popen[bytes]
    name: str
    stdout_path: Path
    stderr_path: Path
    _files: list[Any] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )

    def describe(self) -> str:
        return f"proxy {self.name}: exit code {self.process.poll()}\n{self.output[-4000:]}"

    def wait_working(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if WORKING in self.stdout_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise AssertionError(f"the proxy ended: {self.describe()}")
            time.sleep(0.1)
        raise AssertionError(f"the proxy did not start within {timeout} s: {self.describe()}")

    def kill(self) -> None:
        """``kill -9``: no goodbye, no end of its runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)
        self._close()

    def stop(self) -> int:
        """SIGTERM, as an operator stops it; returns its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        self._close()
        code = self.process.returncode
        assert code is not None
        return code

    def _close(self) -> None:
        for handle in self._files:
            handle.close()
        self._files.clear()


def start_proxy(
    logs: Path,
    server_url: str,
    name: str,
    token: str | None,
    state_dir: Path,
    env: dict[str, str] | None = None,
    wait: bool = True,
) -> ProxyProcess:
    logs.mkdir(parents=True, exist_ok=True)
    args = ["proxy", "--server", server_url, "--name", name, "--state-dir", str(state_dir)]
    if token is not None:
        args += ["--token", token]
    serial = len(list(logs.glob(f"proxy-{name}-*.out")))
    stdout_path = logs / f"proxy-{name}-{serial}.out"
    stderr_path = logs / f"proxy-{name}-{serial}.err"
    stdout, stderr = stdout_path.open("wb"), stderr_path.open("wb")
    process = subprocess.Popen(
        processes.keepstone_command(*args),
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        env=env if env is not None else processes.process_env(),
    )
    proxy = ProxyProcess(process, name, stdout_path, stderr_path, [stdout, stderr])
    if wait:
        try:
            proxy.wait_working()
        except BaseException:
            proxy.stop()
            raise
    return proxy


def local_job(api: Api, organization: Organization, repository: str, name: str = "far") -> str:
    org = api.post(
        "/v2/Organizations",
        {
            "type": "Local",
            "name": f"{name}.test",
            "localSettings": {"path": str(organization.root)},
        },
    )
    assert org.status_code == 200, org.text
    job = api.post(
        f"/v2/Organizations/{org.json()['id']}/Jobs",
        {"name": name, "repositoryId": repository, "schedulePolicy": {"type": "ManualOnly"}},
    )
    assert job.status_code == 200, job.text
    return str(job.json()["id"])


def local_repository(api: Api, path: Path, proxy_id: str) -> str:
    repo = api.post(
        "/v2/BackupRepositories", {"name": path.name, "path": str(path), "proxyId": proxy_id}
    )
    assert repo.status_code == 200, repo.text
    return str(repo.json()["id"])
