"""Where an S3 repository lives, how it is reached, and its failures: what the catalog's
services check and name without loading botocore, which only ``s3store.py`` (the store itself)
imports, when a repository is first read or written in S3."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from keepstone.domain.errors import InvalidInput, KeepstoneError
from keepstone.engine.store import check_name

MiB = 1024 * 1024


class S3Unavailable(KeepstoneError):
    """The S3 service kept failing after every retry."""


class S3Refused(S3Unavailable):
    """The S3 service refused a request for good (no such bucket, access denied, ...)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where a repository lives: service point, region, bucket, folder, and the credentials."""

    service_point: str
    region: str
    bucket: str
    folder: str
    access_key: str
    secret_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class S3Tuning:
    """Multipart and retry discipline; tests shrink the delays, never the checks."""

    multipart_threshold: int = 16 * MiB
    part_size: int = 8 * MiB
    list_page_size: int = 1000  # S3's own maximum keys per ListObjectsV2 page
    attempts: int = 8
    backoff_base: float = 0.2  # seconds; the n-th retry waits up to base * 2**n
    backoff_cap: float = 10.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # a stalled response is abandoned and retried after this
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)


def check_service_point(url: str, prop: str = "servicePoint") -> str:
    """An ``https://`` URL, or ``http://`` to a loopback host; no credentials, query or fragment."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{prop} must be an http(s) URL; got '{url}'", prop)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput(f"{prop} must not carry credentials, a query or a fragment", prop)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InvalidInput(f"{prop} must use https:// unless it is on loopback", prop)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInput(f"{prop} has an invalid port", prop) from None
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def check_bucket(name: str, prop: str = "bucket") -> str:
    """S3's bucket naming rules (3-63 of lowercase letters, digits, dots and hyphens)."""
    ok = 3 <= len(name) <= 63 and all(c.islower() or c.isdigit() or c in ".-" for c in name)
    if not ok or not name[0].isalnum() or not name[-1].isalnum() or ".." in name:
        raise InvalidInput(f"'{name}' is not a valid bucket name", prop)
    return name


def check_folder(folder: str, prop: str = "s3Folder") -> str:
    """A key prefix of plain components: the repository lives below ``<folder>/``."""
    folder = folder.strip("/")
    if folder:
        try:
            check_name(folder)
        except InvalidInput:
            raise InvalidInput(f"'{folder}' is not a valid folder name", prop) from None
    return folder


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: the only hosts plain HTTP may reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
