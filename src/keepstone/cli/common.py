"""What every ``keepstone`` command shares: the console, the data directory option, errors."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keepstone.domain.errors import KeepstoneError
from keepstone.server import open_context, resolve_data_dir
from keepstone.services import catalog
from keepstone.services.context import Context

# Never hard-wrap paths and passwords; off a terminal, leave room for tables of full UUIDs.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (default: $KEEPSTONE_DATA_DIR or ~/.local/share/keepstone).",
    ),
]


def context(data_dir: Path | None) -> Context:
    """The data directory's catalog, with its local proxy (repositories belong to a proxy)."""
    ctx = open_context(resolve_data_dir(data_dir))
    catalog.ensure_local_proxy(ctx)
    return ctx


def say(text: str) -> None:
    """Print text as it is: user names and paths are never read as Rich markup."""
    console.print(text, markup=False, highlight=False)


def say_error(text: str) -> None:
    console.print("[red]error:[/red] ", end="")
    say(text)


def fail(error: KeepstoneError) -> typer.Exit:
    say_error(error.message)
    return typer.Exit(1)


def operator() -> str:
    """Who runs this command, for the audit trail: the operating-system account, which is what
    the data directory's file permissions trust."""
    try:
        account = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        account = "unknown"
    return f"{account} (keepstone CLI)"
