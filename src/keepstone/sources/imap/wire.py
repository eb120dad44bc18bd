"""One IMAP connection's command/response exchange over a (TLS) socket.

Commands are sent with their literals (``LITERAL+`` when the server has it, else waiting for
each continuation); responses are read line by line with literal contents read as exact bytes
(never decoded, never scanned). Every socket failure, timeout, end of stream or ``BYE`` becomes
``ConnectionLost``, and the connection is dead afterwards.
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import cast

from keepstone.sources.imap.errors import (
    AuthenticationFailed,
    ConnectionLost,
    FolderMissing,
    ImapError,
    ProtocolError,
    Throttled,
)
from keepstone.sources.imap.parse import Response

MAX_LINE = 1 << 20  # a longer response line (without literals) is not IMAP we can use
MAX_LITERAL = 1 << 30  # no message we would store is larger; refuse before allocating
_LITERAL_END = re.compile(rb"\{(\d{1,12})\}\r?\n$")
_TAGGED = re.compile(rb"([A-Za-z0-9]+) (OK|NO|BAD)(?: \[([^\]]*)\])? ?(.*)", re.DOTALL)
_BACKOFF = re.compile(
    rb"(?:backoff time|retry after)\D{0,5}(\d+)\s*(milliseconds|ms|seconds|s)?", re.I
)


@dataclass(frozen=True)
class Literal:
    data: bytes


Arg = bytes | Literal
Challenge = Callable[[bytes], bytes]


@dataclass(frozen=True)
class Result:
    """A finished command: its untagged responses and the tagged status line."""

    untagged: list[Response]
    status: bytes  # OK, NO, BAD
    code: bytes  # the response code without brackets, e.g. b"APPENDUID 12 3", or b""
    text: bytes

    def codes(self) -> Iterator[bytes]:
        """Response codes of the tagged line and of untagged ``OK`` lines."""
        if self.code:
            yield self.code
        for response in self.untagged:
            match = re.match(rb"\* OK \[([^\]]*)\]", response.head)
            if match:
                yield match.group(1)


def quoted(text: str) -> Arg:
    """A string argument: quoted when it is plain 7-bit text, else a literal (exact bytes)."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) > 1000 or re.search(rb"[\x00-\x1f\x7f-\xff]", raw):
        return Literal(raw)
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class Wire:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._reader = cast(io.BufferedReader, sock.makefile("rb", buffering=1 << 16))
        self._tags = count(1)
        self.literal_plus = False
        self.dead: str | None = None  # why the connection is unusable

    # ----- reading -----

    def read_response(self) -> Response:
        texts: list[bytes] = []
        literals: list[bytes] = []
        with self._io():
            while True:
                line = self._reader.readline(MAX_LINE)
                if not line:
                    raise ConnectionLost("the server closed the connection")
                if not line.endswith(b"\n"):
                    raise ProtocolError("a server response line is too long")
                literal = _LITERAL_END.search(line)
                if literal is None:
                    texts.append(line.rstrip(b"\r\n"))
                    return Response(tuple(texts), tuple(literals))
                size = int(literal.group(1))
                if size > MAX_LITERAL:
                    raise ProtocolError(f"the server sent a literal of {size} bytes")
                texts.append(line[: literal.start()])
                data = self._reader.read(size)
                if len(data) != size:
                    raise ConnectionLost("the server closed the connection inside a literal")
                literals.append(data)

    def greeting(self) -> Response:
        response = self.read_response()
        if response.head.startswith(b"* BYE"):
            self._kill("the server refused the connection")
            raise ConnectionLost(f"the server refused the connection: {_said(response.head)}")
        if not response.head.startswith((b"* OK", b"* PREAUTH")):
            raise ProtocolError("the server did not greet as an IMAP server")
        return response

    # ----- commands -----

    def run(self, *args: Arg, challenge: Challenge | None = None) -> Result:
        """Send a command and wait for its end; ``NO``/``BAD`` raise the matching error."""
        result = self.exchange(*args, challenge=challenge)
        if result.status != b"OK":
            raise failure(result, args[0] if isinstance(args[0], bytes) else b"command")
        return result

    def exchange(self, *args: Arg, challenge: Challenge | None = None) -> Result:
        """Send a command and return how it ended, whatever the status."""
        if self.dead:
            raise ConnectionLost(self.dead)
        tag = b"K%d" % next(self._tags)
        untagged: list[Response] = []
        self._send_command(tag, args, untagged)
        return self._finish(tag, untagged, challenge)

    def _send_command(self, tag: bytes, args: tuple[Arg, ...], untagged: list[Response]) -> None:
        """The whole command in one send (one TCP segment train, no Nagle wait on its tail),
        except where a synchronizing literal must wait for the server's go-ahead."""
        out = [tag]
        for arg in args:
            if isinstance(arg, bytes):
                out += [b" ", arg]
                continue
            size = len(arg.data)
            if self.literal_plus:
                out += [b" {%d+}\r\n" % size, arg.data]
                continue
            out.append(b" {%d}\r\n" % size)
            self._send(b"".join(out))
            self._await_continuation(tag, untagged)
            out = [arg.data]
        out.append(b"\r\n")
        self._send(b"".join(out))

    def _await_continuation(self, tag: bytes, untagged: list[Response]) -> None:
        while True:
            response = self.read_response()
            if response.head.startswith(b"+"):
                return
            if response.head.startswith(tag + b" "):
                raise failure(_tagged(response), b"literal")
            self._note(response, untagged)

    def _finish(self, tag: bytes, untagged: list[Response], challenge: Challenge | None) -> Result:
        while True:
            response = self.read_response()
            if response.head.startswith(tag + b" "):
                return _tagged(response, untagged)
            if response.head.startswith(b"+"):
                if challenge is None:
                    raise ProtocolError("unexpected continuation request from the server")
                self._send(challenge(response.head[1:].strip()) + b"\r\n")
                continue
            self._note(response, untagged)

    def _note(self, response: Response, untagged: list[Response]) -> None:
        if response.head.startswith(b"* BYE"):
            # the tagged answer may still follow (LOGOUT); if not, reading raises ConnectionLost
            self.dead = f"the server ended the session: {_said(response.head)}"
        untagged.append(response)

    # ----- plumbing -----

    def _send(self, data: bytes) -> None:
        with self._io():
            self.sock.sendall(data)

    @contextlib.contextmanager
    def _io(self) -> Iterator[None]:
        try:
            yield
        except ImapError as error:
            if isinstance(error, ConnectionLost):
                self._kill(error.message)
            raise
        except TimeoutError as error:
            self._kill("the server did not answer in time")
            raise ConnectionLost("the server did not answer in time") from error
        except (OSError, ssl.SSLError, ValueError) as error:
            reason = self.dead or f"the connection broke: {error}"
            self._kill(reason)
            raise ConnectionLost(reason) from error

    def _kill(self, reason: str) -> None:
        self.dead = self.dead or reason
        self.close()

    def buffered(self) -> bool:
        """Whether the server sent bytes not read yet (checked before a TLS upgrade)."""
        self.sock.setblocking(False)
        try:
            return bool(self._reader.peek(1))
        except (BlockingIOError, OSError):
            return False
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._reader.close()
        with contextlib.suppress(OSError):
            self.sock.close()


def _tagged(response: Response, untagged: list[Response] | None = None) -> Result:
    match = _TAGGED.match(response.head)
    if match is None:
        raise ProtocolError(f"unreadable tagged response {_said(response.head)!r}")
    return Result(untagged or [], match.group(2), match.group(3) or b"", match.group(4))


def failure(result: Result, verb: bytes) -> ImapError:
    """The error a ``NO``/``BAD`` means, from its response code first."""
    code = result.code.split(b" ", 1)[0].upper()
    said = _said(result.text)
    name = verb.decode("ascii", "replace")
    if code in (b"THROTTLED", b"UNAVAILABLE", b"LIMIT", b"INUSE"):
        return Throttled(f"{name}: the server asks to wait ({said})", retry_after(result.text))
    if code in (b"AUTHENTICATIONFAILED", b"AUTHORIZATIONFAILED", b"EXPIRED") or (
        verb.upper() in (b"LOGIN", b"AUTHENTICATE") and result.status == b"NO"
    ):
        return AuthenticationFailed(f"the server refused the login ({said})")
    if code == b"NONEXISTENT":
        return FolderMissing(f"{name}: no such folder ({said})")
    return ProtocolError(f"{name} failed: {result.status.decode()} {said}")


def retry_after(text: bytes) -> float | None:
    match = _BACKOFF.search(text)
    if match is None:
        return None
    value = int(match.group(1))
    unit = (match.group(2) or b"s").lower()
    return value / 1000 if unit in (b"milliseconds", b"ms") else float(value)


def _said(text: bytes) -> str:
    """Server text, shortened and printable, for a message."""
    shown = text.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in shown)[:200]
