"""What every ``keepstone`` command shares: the console, the data directory option, errors."""

from __future__ import annotations

import functools
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keepstone.domain.errors import KeepstoneError
from keepstone.server import (
    ServerError,
    open_context,
    resolve_data_dir,
    resolve_database,
    resolve_secret_key,
)
from keepstone.services import catalog
from keepstone.services.context import Context
from keepstone.sources.names import display

if TYPE_CHECKING:
    from rich.console import Console

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (default: $KEEPSTONE_DATA_DIR or ~/.local/share/keepstone).",
    ),
]

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Catalog URL, e.g. postgresql://user@host:5432/keepstone (default: "
        "$KEEPSTONE_DATABASE, else the data directory's SQLite file).",
    ),
]


def database(option: str | None) -> str | None:
    """The catalog's SQLAlchemy URL (none: SQLite in the data directory); a bad one ends the
    command with exit status 2."""
    try:
        return resolve_database(option)
    except ServerError as error:
        say_error(str(error))
        raise typer.Exit(2) from None


def context(data_dir: Path | None, database_option: str | None = None) -> Context:
    """The catalog (the data directory's, or ``--database``), with its local proxy
    (repositories belong to a proxy)."""
    url = database(database_option)
    try:  # the key from $KEEPSTONE_SECRET_KEY: a catalog with sealed secrets needs it
        ctx = open_context(
            resolve_data_dir(data_dir), database=url, secret_box=resolve_secret_key(None)
        )
    except ServerError as error:
        say_error(str(error))
        raise typer.Exit(1) from None
    catalog.ensure_local_proxy(ctx)
    return ctx


@functools.cache
def console() -> Console:
    """The console of the commands that show tables, progress or coloured errors, made at its
    first use: Rich's console is 0.015-0.03 s of imports, which ``keepstone serve`` (plain
    lines only) never needs."""
    from rich.console import Console

    # Never hard-wrap paths and passwords; off a terminal, leave room for tables of full UUIDs.
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


# Control characters but the line feed and the tab, each shown as U+FFFD: a name or a path can
# carry any of them (an escape sequence would drive the operator's terminal).
_CONTROLS = dict.fromkeys([*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)], "\ufffd")


def say(text: str) -> None:
    """Print text as data: user names and paths are never read as Rich markup or emoji codes,
    their control characters never reach the terminal, and bytes that are not UTF-8 (a path's)
    show as U+FFFD. Flushed at once, as Rich did: whoever reads a server's output through a
    pipe sees each line when it is said."""
    print(display(text).translate(_CONTROLS), flush=True)


def say_error(text: str) -> None:
    console().print("[red]error:[/red] ", end="")
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
