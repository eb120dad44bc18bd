"""``GET /v8/Health``: the vendor's health report, anonymous as the vendor's is.

The vendor's report has one entry per part of its own stack (its NATS server, its PostgreSQL
configuration database); Keepstone's has one per part of its: ``catalog`` (its configuration
database, SQLite or PostgreSQL) and ``repositories``, checked as ``/readyz`` checks them
(``services.health``). Like ``/readyz`` it names no path and no error: whoever can reach the
port may read it, and the server's log says what failed. Always ``200``, ``Unhealthy`` too: the
spec declares the report for 200 only (any other status is its error model, which SDKs
generated from it then expect); load balancers have ``/readyz``, which answers 503."""

from starlette.responses import Response

from keepstone.api.vb365.deps import Ctx, json
from keepstone.api.vb365.versions import VersionedRouter
from keepstone.services import health

router = VersionedRouter()

_DESCRIPTIONS = {
    ("catalog", True): "The catalog answers and its schema is the one this server expects.",
    ("catalog", False): (
        "The catalog cannot be read, or its schema is not the one this server expects; "
        "the server's log says which."
    ),
    ("repositories", True): "Every repository can be reached.",
    ("repositories", False): "A repository cannot be reached; the server's log says which.",
}


UNCHECKED = "Not checked: the catalog that lists them cannot be read."


@router.get("/Health", since=8)
def health_report(ctx: Ctx) -> Response:
    found = health.logged(health.checks(ctx))
    entries = {"catalog": _entry("catalog", not found.catalog)}
    if found.repositories is None:  # the catalog lists them: unchecked while it is away
        entries["repositories"] = {"status": "Unhealthy", "description": UNCHECKED}
    else:
        entries["repositories"] = _entry("repositories", not found.repositories)
    return json({"status": _status(not found.problems), "entries": entries})


def _entry(name: str, ok: bool) -> dict[str, str]:
    return {"status": _status(ok), "description": _DESCRIPTIONS[name, ok]}


def _status(ok: bool) -> str:
    return "Healthy" if ok else "Unhealthy"
