"""What every use case needs: the database, the clock, the server's time zone, and a way to wake
the proxies when there is new work."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path

from keepstone.clock import Clock
from keepstone.services.secret_box import SecretBox
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.store.db import Database


def _nothing() -> None:
    return None


@dataclass
class Context:
    db: Database
    clock: Clock
    tz: tzinfo = UTC
    wake_proxies: Callable[[], None] = field(default=_nothing)
    secrets_dir: Path | None = None  # where repository passwords are kept (services.vault)
    secret_box: SecretBox | None = None  # the operator's key: secrets sealed in the catalog
    data_dir: Path | None = None  # no repository or organization may overlap it
    graph: GraphEndpoints = field(default_factory=GraphEndpoints)  # --graph-url/--login-url
    server_id: str = ""  # this server's <data-dir>/server-id ("" for a CLI command)
    # Where people reach this server (--public-url, else the address it listens on): the base
    # of the links in notification mails ("" for a CLI command).
    public_url: str = ""


def new_id() -> str:
    return str(uuid.uuid4())
