"""The address a request came from: the peer, or, when the peer is a reverse proxy the operator
trusts (``keepstone serve --trusted-proxy``), the right-most address of ``X-Forwarded-For`` that
is not itself a trusted proxy. Anyone can write ``X-Forwarded-For``, so it is read only then."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # the CLI reads --trusted-proxy without loading the web stack
    from starlette.requests import Request

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """``ADDR`` or ``ADDR/CIDR`` entries; raises ValueError naming a bad one."""
    networks = []
    for text in texts:
        text = text.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"'{text}' is not an IP address or network (ADDR or ADDR/CIDR)"
            ) from None
    return tuple(networks)


def client_address(request: Request) -> str:
    trusted: Sequence[Network] = getattr(request.app.state, "trusted_proxies", ())
    peer = request.client.host if request.client else "unknown"
    if not _is_trusted(peer, trusted):
        return peer
    forwarded = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(forwarded):
        if not _is_trusted(hop, trusted):
            return hop[:64]
    return forwarded[0] if forwarded else peer


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
