"""Host names and IP addresses a user types for a server we connect to (IMAP, SMTP).

Checked before they are stored: a name that the resolver cannot even encode (a label over 63
characters, non-ASCII) must be refused where it is typed, not found out by ``getaddrinfo``
when a mail or a backup is due.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_host_name(host: str) -> bool:
    """ASCII labels of 1-63 characters, 253 in all; an international name in its xn-- form."""
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_LABEL.match(label) for label in labels)


def is_host(host: str) -> bool:
    return is_ip(host) or is_host_name(host)


HOST_RULE = (
    "a name is ASCII: letters, digits, '-' and dots; write an international name in its xn-- form"
)
