"""A fault-injecting HTTP proxy to put between Keepstone and an S3 server.

Requests pass through unchanged (the Host header too, so signatures still match) unless a rule
matches: ``Fault("503", method="PUT", times=3)`` answers the next three PUTs with 503 SlowDown,
``"500"`` with 500 InternalError, ``"reset"`` forwards the request and then cuts the connection
after half of the answer's body (or before any answer with ``before_answer=True``), ``"delay"``
waits ``seconds`` before forwarding (a slow or stalled server). ``seen`` counts every request
by method, so tests can prove what was retried.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
    "<Message>injected by the test</Message></Error>"
)


@dataclass
class Fault:
    kind: str  # "503" | "500" | "reset" | "delay"
    method: str | None = None
    path_contains: str = ""
    times: int = 1
    seconds: float = 0.0
    before_answer: bool = False

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method in (None, method) and self.path_contains in path


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.upstream_host = target.hostname or "127.0.0.1"
        self.upstream_port = target.port or 80
        self.faults: list[Fault] = []
        self.seen: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            self.seen[method] += 1
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    self.injected[fault.kind] += 1
                    return fault
        return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _relay(self) -> None:
            length = int(self.headers.get("Content-Length", "0") or "0")
            body = self.rfile.read(length) if length else b""
            fault = proxy.take(self.command, self.path)
            if fault is not None and fault.kind in ("503", "500"):
                self._error(int(fault.kind))
                return
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
            if fault is not None and fault.kind == "reset" and fault.before_answer:
                self._reset()
                return
            status, headers, answer = self._forward(body)
            if fault is not None and fault.kind == "reset":
                self._send(status, headers, answer, cut=True)
                return
            self._send(status, headers, answer)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            conn = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=60)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    conn.putheader(name, value)
                conn.endheaders(body or None)
                answer = conn.getresponse()
                data = answer.read()
                return answer.status, answer.getheaders(), data
            finally:
                conn.close()

        def _send(
            self, status: int, headers: list[tuple[str, str]], body: bytes, cut: bool = False
        ) -> None:
            self.send_response(status)
            upstream_length = None
            for name, value in headers:
                if name.lower() == "content-length":
                    upstream_length = value
                if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(name, value)
            # A HEAD answer has no body but the length of the one a GET would have (an object's
            # size is read from it).
            length = upstream_length if self.command == "HEAD" and upstream_length else len(body)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command == "HEAD":
                return
            if cut:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self._reset()
                return
            self.wfile.write(body)

        def _error(self, status: int) -> None:
            code = "SlowDown" if status == 503 else "InternalError"
            data = _ERROR_BODY.format(code=code).encode()
            self._send(status, [("Content-Type", "application/xml")], data)

        def _reset(self) -> None:
            # SO_LINGER 0: close sends RST, the client sees "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

    return Handler
