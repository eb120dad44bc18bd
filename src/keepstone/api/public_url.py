"""The address clients reach this server at, for every absolute link either dialect writes (HAL
``_links``, EM ``Href``s, ``Location`` headers).

The ``Host`` header is chosen by the client, so a link built from it can point a victim's client
(or a cache) at an attacker's host. Links therefore come from the operator's ``--public-url``,
or, when none is configured, from the address the connection arrived on (the listening socket's,
as the ASGI server reports it), never from a request header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.types import Scope

DEFAULT_PORTS = {"http": 80, "https": 443}


class PublicUrlError(ValueError):
    """A ``--public-url`` that cannot serve as the base of links."""


def check_public_url(url: str) -> str:
    """``url`` without its trailing slash, if it is an absolute http(s) URL with a host and
    nothing after its path; else ``PublicUrlError`` saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise PublicUrlError(f"public URL '{url}' must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise PublicUrlError(f"public URL '{url}' must not have a query, fragment or user")
    return url.rstrip("/")


def base_url(connection: HTTPConnection) -> str:
    """``scheme://host:port`` (plus the configured path, if any) to put in front of a route."""
    configured: str | None = getattr(connection.app.state, "public_url", None)
    return configured or bound_address(connection.scope)


def bound_address(scope: Scope) -> str:
    """``scheme://host:port`` of the socket the request arrived on."""
    host, port = scope.get("server") or ("localhost", None)
    scheme = scope.get("scheme", "http")
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port or DEFAULT_PORTS.get(scheme, 80)}"


def is_secure(connection: HTTPConnection) -> bool:
    """Whether clients reach this server over HTTPS (directly, or through the configured public
    URL of a TLS-terminating proxy)."""
    return base_url(connection).startswith("https://")


def host_and_port(connection: HTTPConnection) -> tuple[str, int]:
    """The host name and port of :func:`base_url`."""
    parts = urlsplit(base_url(connection))
    return parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme]
