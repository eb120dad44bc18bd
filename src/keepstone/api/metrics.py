"""``/metrics`` for Prometheus, behind its own credential or an allow-list of addresses, never
a user's token: a scraper is configured once and must not hold an administrator's password.

- ``KEEPSTONE_METRICS_TOKEN``: the scraper sends it as ``Authorization: Bearer <token>`` (or as
  the password of HTTP Basic, any user name: Prometheus's ``basic_auth``);
- ``KEEPSTONE_METRICS_ALLOW``: addresses or networks (``ADDR`` or ``ADDR/CIDR``, comma
  separated) that may scrape without it, read from the client's address as
  ``api.client_address`` tells it (``X-Forwarded-For`` of trusted proxies only).

With neither, ``/metrics`` answers 404: nothing is exposed until the operator chooses how.
"""

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from keepstone.api.client_address import Network, client_address
from keepstone.services import metrics

router = APIRouter(include_in_schema=False)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    token: str | None = None
    allowed: tuple[Network, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.token) or bool(self.allowed)

    def admits(self, authorization: str, address: str) -> bool:
        if self.token and _presented(authorization, self.token):
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.allowed)


def _presented(authorization: str, token: str) -> bool:
    scheme, _, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.encode(), token.encode())


@router.get("/metrics")
async def scrape(request: Request) -> Response:
    access: MetricsAccess = getattr(request.app.state, "metrics_access", MetricsAccess())
    if not access.enabled:
        return PlainTextResponse("not found\n", status_code=404)
    if not access.admits(request.headers.get("authorization", ""), client_address(request)):
        return PlainTextResponse(
            "metrics need their own credential\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="keepstone-metrics"'},
        )
    body = await run_in_threadpool(metrics.exposition, request.app.state.ctx)
    return Response(body, media_type=CONTENT_TYPE)
