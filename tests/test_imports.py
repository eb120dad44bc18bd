"""What a server's start and a backup run import, counted (not timed): modules that only decorate
a terminal (Rich, Pygments, httpx's own CLI), S3's client before a bucket is reached, and the
console's template engine before its first page stay out of both; a new server's start imports
neither Alembic (a new catalog is made from its schema file) nor X.509 nor httpx (no tenant or
token endpoint reached) (docs/benchmarks.md: the start to first answer and a backup's peak
memory). Each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.process_helpers import process_env

SERVE_PATH = """
import json, pathlib, sys
from keepstone.server import open_context
from keepstone.api.app import create_app

ctx = open_context(pathlib.Path(sys.argv[1]))  # a new catalog, made from sqlite_schema.sql
create_app(ctx)
print(json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))
"""

BACKUP_RUN = """
import json, sys
from keepstone.proxy.backup import run_backup
from keepstone.proxy.worker import ProxyWorker
from keepstone.services import catalog, restores, runs
from keepstone.sources.graph import connector  # a Microsoft 365 backup's: httpx
print(json.dumps(sorted(n for n, m in sys.modules.items() if m is not None)))
"""

UNCONFIGURED_LOG = """
import keepstone, structlog
renderer = structlog.dev.ConsoleRenderer(colors=False)
def fail():
    password = "hunter2-never-logged"
    raise RuntimeError("the failure")
try:
    fail()
except RuntimeError:
    print(renderer(None, "error", {"event": "failed", "exc_info": True}))
"""

COMMAND_IMPORTS = """
import gc, sys, typer
from keepstone import cli

def reached(self, *args, **kwargs):  # the command is about to run: its imports are done
    print(len(collections), gc.isenabled(), "keepstone.server" in sys.modules)
    raise SystemExit(0)

typer.Typer.__call__ = reached
collections = []
gc.callbacks.append(lambda phase, info: collections.append(1) if phase == "start" else None)
cli.main()
"""

TERMINAL_EXTRAS = ("rich", "pygments", "httpx._main")
AT_FIRST_USE = ("botocore", "boto3", "urllib3", "jinja2")
# Alembic loads every dialect it knows when it migrates; a run on SQLite needs no other.
OTHER_DIALECTS = ("sqlalchemy.dialects.postgresql",)
# A new SQLite catalog needs no migration (store/sqlite_schema.py), a plain HTTP server no X.509,
# a server without a Microsoft 365 tenant or OAuth token endpoint to reach no httpx.
NOT_AT_START = ("alembic", "cryptography.x509", "httpx")


def _imported(script: str, *args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _found(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages or m in packages)


def test_a_new_servers_start_imports_no_extras_s3_templates_or_migrations(tmp_path: Path) -> None:
    modules = _imported(SERVE_PATH, str(tmp_path / "data"))
    assert "keepstone.api.app" in modules and "keepstone.store.sqlite_schema" in modules
    assert "structlog" in modules  # the library whose extras are left
    assert _found(modules, TERMINAL_EXTRAS) == []
    assert _found(modules, AT_FIRST_USE) == []
    assert _found(modules, NOT_AT_START) == []


def test_a_backup_runs_process_imports_no_terminal_extras() -> None:
    modules = _imported(BACKUP_RUN)
    assert "keepstone.engine" in modules and "sqlalchemy.orm" in modules
    assert "httpx" in modules and "structlog" in modules  # the libraries whose extras are left
    assert _found(modules, TERMINAL_EXTRAS) == []
    assert _found(modules, AT_FIRST_USE) == []
    assert _found(modules, OTHER_DIALECTS) == []


def _printed(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_structlog_without_rich_renders_an_exception_without_locals() -> None:
    """Before ``logs.configure`` (or in a library's use), structlog's default console renderer
    prints a plain traceback, which shows no frame's locals (Rich's showed them all)."""
    printed = _printed(UNCONFIGURED_LOG)
    assert "RuntimeError: the failure" in printed and "Traceback" in printed
    assert "hunter2" not in printed


def test_a_bucket_that_cannot_be_reached_is_still_caught_by_its_lazy_names() -> None:
    """``object_storage.unreachable()`` names botocore's errors only once one was raised."""
    from botocore.exceptions import EndpointConnectionError

    from keepstone.domain.errors import InvalidInput
    from keepstone.engine.s3location import S3Refused
    from keepstone.services import object_storage

    raised: list[Exception] = [
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        S3Refused("no such bucket", "NoSuchBucket"),
        InvalidInput("no secret key kept here"),
    ]
    caught = []
    for error in raised:
        try:
            raise error
        except object_storage.unreachable(InvalidInput) as e:
            caught.append(e)
    assert caught == raised
    with pytest.raises(ValueError):  # what is not a bucket's failure goes through
        try:
            raise ValueError("not an S3 failure")
        except object_storage.unreachable(InvalidInput):
            pass


def test_the_command_imports_its_modules_without_a_collection() -> None:
    """``keepstone`` (``cli.main``) imports the CLI, the server and the tables with the
    collector paused, then restores it: importing them set off about 220 collections."""
    assert _printed(COMMAND_IMPORTS).split() == ["0", "True", "True"]


def test_the_command_imports_rich_tables_and_progress_bars_only_where_shown() -> None:
    """``keepstone serve`` (like every command) imports the CLI's modules; Rich's tables and
    progress bars are imported by the few commands that show them (cli/repo.py), not by those."""
    shown = ("rich.table", "rich.progress")
    script = (
        f"import sys, keepstone.cli.main; print(sorted(m for m in sys.modules if m in {shown}))"
    )
    assert _printed(script).strip() == "[]"
