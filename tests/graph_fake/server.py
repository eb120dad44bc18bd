"""Serve the fake over HTTPS on loopback ports, each app under uvicorn in its own thread."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from tests.graph_fake.app import graph_app, login_app
from tests.graph_fake.state import FakeState
from tests.graph_fake.tls import TlsFiles, make_tls_files

STARTUP_DEADLINE_SECONDS = 30.0


class _Served:
    def __init__(self, app: Starlette, tls: TlsFiles) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            ssl_certfile=str(tls.cert_pem),
            ssl_keyfile=str(tls.key_pem),
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the fake Graph server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STARTUP_DEADLINE_SECONDS)
        self.sock.close()


@dataclass
class FakeGraph:
    """A running fake: where to reach it, which CA to trust, its state to arrange and inspect."""

    state: FakeState
    graph_url: str
    login_url: str
    ca_pem: Path
    _servers: tuple[_Served, _Served]

    def reset(self, state: FakeState | None = None) -> FakeState:
        """Serve a fresh state (tests do not see each other's data) without restarting."""
        new = state or FakeState()
        new.graph_resources.add(self.graph_url)
        for served in self._servers:
            served.app.state.fake = new
        self.state = new
        return new

    def stop(self) -> None:
        for served in self._servers:
            served.stop()


def start_fake(state: FakeState, tls_dir: Path) -> FakeGraph:
    tls = make_tls_files(tls_dir)
    graph = _Served(graph_app(state), tls)
    login = _Served(login_app(state), tls)
    graph_url = f"https://127.0.0.1:{graph.port}"
    # A client may derive its token scope from its Graph URL setting; both forms are accepted.
    state.graph_resources.add(graph_url)
    graph.start()
    try:
        login.start()
    except BaseException:
        graph.stop()
        raise
    return FakeGraph(
        state, graph_url, f"https://127.0.0.1:{login.port}", tls.ca_pem, (graph, login)
    )
