"""Whether this server can do its work, for load balancers and service managers (``/readyz``).

Ready means: the catalog answers, its schema is the one this code expects (a server started
beside a newer or older catalog must not take traffic), and every repository can be reached,
checked where this server can check it. A repository on this server's built-in proxy must be a
writable directory here; one on another proxy is reachable when that proxy is online (it is the
proxy, not this server, that reads and writes it).

The reasons a check failed are logged, never answered: the endpoint is unauthenticated, and a
path or an error text is information for the operator, not for whoever can reach the port.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import structlog
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from keepstone.services.context import Context
from keepstone.services.proxies import proxy_status
from keepstone.store.db import HEAD_REVISION
from keepstone.store.tables import Proxy, Repository

log = structlog.get_logger("keepstone.health")


def expected_revision() -> str:
    """The newest migration this code ships (the schema ``Database.migrate`` brings about)."""
    return HEAD_REVISION


@dataclass(frozen=True, slots=True)
class Checks:
    """What keeps this server from being ready, by what was checked, worded for the log."""

    catalog: list[str]
    repositories: list[str] | None  # None: not checked (the catalog that lists them is away)

    @property
    def problems(self) -> list[str]:
        return [*self.catalog, *(self.repositories or [])]


def checks(ctx: Context) -> Checks:
    """The catalog's and the repositories' checks: two catalog statements whatever the number
    of repositories. The repositories are not checked while the catalog cannot be read."""
    try:
        with ctx.db.read() as s:
            revision = s.execute(text("SELECT version_num FROM alembic_version")).scalar()
            rows = s.execute(
                select(Repository.name, Repository.path, Proxy).join(
                    Proxy, Repository.proxy_id == Proxy.id
                )
            ).all()
    except SQLAlchemyError as error:
        unreachable = f"catalog unreachable: {error.__class__.__name__}: {error}"
        return Checks([unreachable.splitlines()[0]], None)
    catalog: list[str] = []
    if revision != expected_revision():
        catalog.append(
            f"catalog schema is at {revision}, this server expects {expected_revision()}"
        )
    repositories: list[str] = []
    now = ctx.clock.now()
    for name, path, proxy in rows:
        if proxy.is_local and proxy.server_id == ctx.server_id:
            if not (os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)):
                repositories.append(f"repository '{name}': '{path}' is not a writable directory")
        elif proxy_status(proxy, now) != "Online":
            repositories.append(f"repository '{name}': its proxy {proxy.host_name} is offline")
    return Checks(catalog, repositories)


def ready(ctx: Context) -> bool:
    """Whether the server is ready; each reason it is not is logged as a warning."""
    return not logged(checks(ctx)).problems


def logged(found: Checks) -> Checks:
    """``found``, each of its problems logged as a warning (never answered: see above)."""
    for problem in found.problems:
        log.warning("not ready", reason=problem)
    return found
