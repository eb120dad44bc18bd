"""What the app serves, read from its routes: an app over a throwaway catalog, as
``tests/conftest.py`` builds one (a context over a SQLite file in a temporary directory)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from fastapi import FastAPI

from keepstone.api.app import create_app
from keepstone.api.deferred import install_all
from keepstone.server import open_context
from tests.contract.openapi import VERSIONS, Operation, implemented_operations


def route_table_app() -> FastAPI:
    """A fresh app whose only use is its route table: its catalog is deleted at once (routes do
    not depend on the catalog's contents)."""
    with tempfile.TemporaryDirectory(prefix="keepstone-routes-") as folder:
        ctx = open_context(Path(folder) / "data")
        try:
            app = create_app(ctx)
            install_all(app)  # the parts put in at their first request too (api.deferred)
            return app
        finally:
            ctx.db.dispose()


@functools.cache
def implemented_by_version() -> dict[int, frozenset[Operation]]:
    """``implemented_operations`` of every spec version, for the app as the code is now."""
    app = route_table_app()
    return {version: frozenset(implemented_operations(app, version)) for version in VERSIONS}
