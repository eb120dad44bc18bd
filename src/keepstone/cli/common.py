"""What every ``keepstone`` command shares: the console, the data directory option, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keepstone.domain.errors import KeepstoneError
from keepstone.server import open_context, resolve_data_dir
from keepstone.services.context import Context

console = Console(soft_wrap=True)  # never hard-wrap paths and passwords in logs or pipes

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (default: $KEEPSTONE_DATA_DIR or ~/.local/share/keepstone).",
    ),
]


def context(data_dir: Path | None) -> Context:
    return open_context(resolve_data_dir(data_dir))


def say(text: str) -> None:
    """Print text as it is: user names and paths are never read as Rich markup."""
    console.print(text, markup=False, highlight=False)


def say_error(text: str) -> None:
    console.print("[red]error:[/red] ", end="")
    say(text)


def fail(error: KeepstoneError) -> typer.Exit:
    say_error(error.message)
    return typer.Exit(1)
