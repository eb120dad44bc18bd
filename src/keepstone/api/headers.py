"""Response headers that every answer carries, whatever route or error produced it.

- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and a Content-Security-Policy:
  API answers are data, never a page to run or frame (``default-src 'none'``); an HTML page the
  server serves (Swagger UI) gets a policy allowing only its own assets and its hashed inline
  script.
- ``Strict-Transport-Security`` when clients reach the server over HTTPS.
- ``Cache-Control: no-store`` and ``Pragma: no-cache`` unless a handler chose otherwise: answers
  carry tokens, session ids and users' backed-up data, which no cache may keep. Only static assets
  (``/swagger/static``) are cacheable.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from functools import lru_cache

from starlette.types import Scope

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000"
STATIC_PREFIX = "/swagger/static/"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def page_policy(html: str) -> str:
    """A policy for one of our HTML pages: its assets from this origin, its inline scripts by
    hash, nothing else (no eval, no framing, no form posts elsewhere)."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def security_headers(
    scope: Scope, public: str | None, pages: dict[str, str]
) -> tuple[tuple[bytes, bytes], ...]:
    """The headers above for the request of ``scope`` (``pages``: path -> Content-Security-Policy
    of the HTML page served there; ``public``: the ``--public-url``)."""
    path: str = scope["path"]
    # the scheme of api.public_url.bound_address(scope), without writing the address out
    https = public.startswith("https://") if public else scope.get("scheme", "http") == "https"
    return _encoded(pages.get(path, API_POLICY), not path.startswith(STATIC_PREFIX), https)


@lru_cache(maxsize=64)
def _encoded(policy: str, no_store: bool, https: bool) -> tuple[tuple[bytes, bytes], ...]:
    """A few policies and two flags: each set of headers is encoded once, not per request."""
    headers = {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "content-security-policy": policy,
    }
    if no_store:
        headers |= {"cache-control": "no-store", "pragma": "no-cache"}
    if https:
        headers["strict-transport-security"] = HSTS
    return tuple((name.encode(), value.encode()) for name, value in headers.items())


def adding(
    headers: list[tuple[bytes, bytes]], extra: Sequence[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` (a response's) with those of ``extra`` it does not already carry: a header a
    handler set is kept."""
    present = {name.lower() for name, _ in headers}
    return [*headers, *((n, v) for n, v in extra if n not in present)]
