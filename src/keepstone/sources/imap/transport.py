"""Opening a connection: TCP, then TLS (implicit or STARTTLS) checked against the trust."""

from __future__ import annotations

import contextlib
import socket
import ssl

from keepstone.sources.imap.errors import ImapError, TlsFailure, Unreachable
from keepstone.sources.imap.model import Endpoint, Security
from keepstone.sources.imap.parse import Response
from keepstone.sources.imap.trust import check_pin, context_for
from keepstone.sources.imap.wire import Wire


def open_wire(endpoint: Endpoint) -> tuple[Wire, Response]:
    """A connected ``Wire`` past the greeting (and past STARTTLS when asked), with the
    greeting that counts (the one before STARTTLS says nothing about the TLS session)."""
    sock = _tcp(endpoint)
    try:
        if endpoint.security is Security.TLS:
            sock = _tls(sock, endpoint)
        sock.settimeout(endpoint.timeouts.connect)
        wire = Wire(sock)
        greeting = wire.greeting()
        if endpoint.security is Security.STARTTLS:
            wire = _starttls(wire, endpoint)
            greeting = Response((b"* OK",), ())
        wire.sock.settimeout(endpoint.timeouts.command)
        return wire, greeting
    except BaseException:
        with contextlib.suppress(OSError):
            sock.close()
        raise


def _tcp(endpoint: Endpoint) -> socket.socket:
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        sock = socket.create_connection(
            (endpoint.host, endpoint.port), timeout=endpoint.timeouts.connect
        )
    except TimeoutError as error:
        raise Unreachable(f"{where} did not answer in {endpoint.timeouts.connect} s") from error
    except socket.gaierror as error:
        raise Unreachable(f"{endpoint.host}: host name not found ({error.strerror})") from error
    except OSError as error:
        raise Unreachable(f"cannot connect to {where}: {error.strerror or error}") from error
    # commands go out whole; small ones must not wait for the previous segment's ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _tls(sock: socket.socket, endpoint: Endpoint) -> ssl.SSLSocket:
    context = context_for(endpoint.trust)
    sock.settimeout(endpoint.timeouts.connect)
    try:
        tls = context.wrap_socket(sock, server_hostname=endpoint.host)
    except ssl.SSLCertVerificationError as error:
        raise TlsFailure(
            f"the server certificate is not trusted: {error.verify_message}"
        ) from error
    except (ssl.SSLError, OSError) as error:
        raise TlsFailure(f"the TLS handshake failed: {error}") from error
    try:
        check_pin(endpoint.trust, tls)
    except ImapError:
        with contextlib.suppress(OSError):
            tls.close()
        raise
    return tls


def _starttls(wire: Wire, endpoint: Endpoint) -> Wire:
    result = wire.exchange(b"STARTTLS")
    if result.status != b"OK":
        raise TlsFailure("the server refused STARTTLS")
    if wire.buffered():
        # bytes sent before the handshake could be injected by anyone on the path
        raise TlsFailure("the server sent data after accepting STARTTLS")
    return Wire(_tls(wire.sock, endpoint))
