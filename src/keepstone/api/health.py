"""``/healthz`` and ``/readyz`` for load balancers and service managers: no authentication, and
nothing in them but the verdict (``services.health`` logs why a server is not ready)."""

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from keepstone.services import health

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def alive() -> PlainTextResponse:
    """The process answers: its event loop runs (no thread, no catalog)."""
    return PlainTextResponse("ok\n")


@router.get("/readyz")
def ready(request: Request) -> PlainTextResponse:
    """Catalog reachable, schema current, repositories reachable: 200, else 503."""
    if health.ready(request.app.state.ctx):
        return PlainTextResponse("ready\n")
    return PlainTextResponse("not ready\n", status_code=503)
