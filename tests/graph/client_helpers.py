"""A tiny scripted HTTPS server for the Graph client's tests: a trustme CA, a handler per test
that answers each request (or resets the connection), and a record of what arrived."""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme

RESET = "reset"  # a handler's answer that aborts the connection with a TCP RST


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # the test's clock when the request arrived


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    cut_at: int | None = None  # send only this many body bytes, then reset the connection

    @classmethod
    def json(cls, document: object, status: int = 200, **headers: str) -> Answer:
        return cls(
            status, {"Content-Type": "application/json", **headers}, json.dumps(document).encode()
        )


Handler = Callable[[Seen], "Answer | str"]


@dataclass
class Scripted:
    url: str
    ca_pem: Path
    seen: list[Seen]
    handler: list[Handler]  # one slot, so a test can swap the script
    clock: list[float]  # the injected clock the requests are stamped with

    def serve(self, handler: Handler) -> None:
        self.handler[0] = handler
        self.seen.clear()


def _make_handler(server: Scripted) -> type[BaseHTTPRequestHandler]:
    class Handle(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
                server.clock[0],
            )
            server.seen.append(seen)
            answer = server.handler[0](seen)
            if isinstance(answer, str):
                self._reset()
                return
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body[: answer.cut_at])
            if answer.cut_at is not None:  # a clean close mid-body: every byte sent arrives
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.close_connection = True

        def _reset(self) -> None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        do_GET = do_POST = _any

    return Handle


@contextmanager
def scripted_server(tmp: Path) -> Iterator[Scripted]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_pem = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    state = Scripted("", ca_pem, [], [lambda seen: Answer(404)], [0.0])
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    state.url = f"https://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class FakeTime:
    """An injected clock and sleeper: sleeping advances the clock, so no test sleeps for real.
    The same list is the server's clock, so requests are stamped with the client's time."""

    def __init__(self, shared: list[float]) -> None:
        self._now = shared
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self._now[0]

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now[0] += seconds
