"""``keepstone proxy`` (a remote proxy) and ``keepstone admin proxy-token`` (its registration)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keepstone import logs
from keepstone.cli.common import DatabaseOption, DataDir, context, say, say_error


def proxy_token(data_dir: DataDir = None, database_url: DatabaseOption = None) -> None:
    """Print a one-time token a remote proxy registers with (valid 24 hours, one use)."""
    from keepstone.services import proxy_link

    token = proxy_link.new_registration_token(context(data_dir, database_url))
    print(token)  # alone on stdout: scripts read it as it is


def proxy_command(
    server: Annotated[
        str, typer.Option(help="The server's URL (https://, or http:// on loopback).")
    ],
    name: Annotated[str, typer.Option(help="This proxy's name: its hostName in /vN/Proxies.")],
    token: Annotated[
        str | None,
        typer.Option(
            help="A registration token ('keepstone admin proxy-token'); first start only."
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the proxy keeps its credential (default "
            "~/.local/state/keepstone-proxy/<name>)."
        ),
    ] = None,
) -> None:
    """Run a proxy for a server on this machine, in the foreground until SIGTERM or Ctrl-C."""
    from keepstone.proxy.remote import ProxyError, run_proxy

    logs.configure()
    try:
        run_proxy(server, token, name, state_dir, say=say)
    except ProxyError as error:
        say_error(str(error))
        raise typer.Exit(1) from None
