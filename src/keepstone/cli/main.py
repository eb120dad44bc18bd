"""``keepstone serve`` and ``keepstone admin ...``."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from keepstone import logs
from keepstone.api.client_address import parse_networks
from keepstone.cli.common import (
    DatabaseOption,
    DataDir,
    console,
    context,
    database,
    fail,
    operator,
    say,
    say_error,
)
from keepstone.cli.proxy import proxy_command, proxy_token
from keepstone.cli.repo import repo_app, restore_app
from keepstone.domain.errors import KeepstoneError
from keepstone.server import ServeOptions, ServerError, resolve_data_dir, serve
from keepstone.services import audit, auth
from keepstone.sources.graph.settings import EndpointError, GraphEndpoints

app = typer.Typer(help="Keepstone backup server.", no_args_is_help=True, add_completion=False)
admin = typer.Typer(help="Administer users and tokens; read the audit trail.", no_args_is_help=True)
users = typer.Typer(help="Add, list, remove users and change passwords.", no_args_is_help=True)
app.add_typer(admin, name="admin")
admin.add_typer(users, name="user")
app.add_typer(repo_app, name="repo")
app.add_typer(restore_app, name="restore")
app.command("proxy")(proxy_command)
admin.command("proxy-token")(proxy_token)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4443,
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate for HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS.")] = None,
    tls_self_signed: Annotated[
        bool,
        typer.Option(
            help="Serve HTTPS with a certificate made on first start, kept in the data dir."
        ),
    ] = False,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="IANA time zone of schedules' dailyTime (default $KEEPSTONE_TIMEZONE, UTC)."
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            help="A reverse proxy (ADDR or ADDR/CIDR) whose X-Forwarded-For is believed; "
            "repeatable (default $KEEPSTONE_TRUSTED_PROXIES, comma-separated)."
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            help="URL clients reach the server at, for absolute links (default "
            "$KEEPSTONE_PUBLIC_URL, else the address listened on; never the Host header)."
        ),
    ] = None,
    graph_url: Annotated[
        str | None,
        typer.Option(
            help="Microsoft Graph (or a Graph-compatible service), https only (default "
            "$KEEPSTONE_GRAPH_URL, else https://graph.microsoft.com)."
        ),
    ] = None,
    login_url: Annotated[
        str | None,
        typer.Option(
            help="The login service for app-only tokens, https only (default "
            "$KEEPSTONE_LOGIN_URL, else https://login.microsoftonline.com)."
        ),
    ] = None,
    secret_key_file: Annotated[
        Path | None,
        typer.Option(
            help="The key sealing secrets in the catalog (a Fernet key; the file readable by "
            "its owner alone); default $KEEPSTONE_SECRET_KEY, else secrets stay in vault files."
        ),
    ] = None,
) -> None:
    """Run the server until SIGTERM or Ctrl-C."""
    logs.configure()
    try:
        proxies = parse_networks(
            trusted_proxy or os.environ.get("KEEPSTONE_TRUSTED_PROXIES", "").split(",")
        )
    except ValueError as error:
        say_error(f"--trusted-proxy: {error}")
        raise typer.Exit(2) from None
    try:
        graph = GraphEndpoints.resolve(graph_url, login_url)
    except EndpointError as error:
        say_error(str(error))
        raise typer.Exit(2) from None
    options = ServeOptions(
        resolve_data_dir(data_dir),
        host,
        port,
        tls_cert,
        tls_key,
        tls_self_signed,
        timezone,
        proxies,
        public_url,
        graph,
        database(database_url),
        secret_key_file,
    )
    try:
        serve(options, say=say)
    except ServerError as error:
        say_error(str(error))
        raise typer.Exit(1) from None


def _password(given: str | None) -> str:
    if given:
        return given
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("add")
def user_add(
    name: str,
    role: Annotated[
        auth.Role,
        typer.Option(
            help="Administrator, ReadOnly, or None: no global role, only what the organization "
            "roles naming the user as an operator grant (/vN/RbacRoles)."
        ),
    ] = auth.Role.ADMINISTRATOR,
    password: Annotated[str | None, typer.Option(help="Asked for when not given.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add a user."""
    try:
        auth.add_user(context(data_dir, database_url), name, _password(password), role)
    except KeepstoneError as error:
        raise fail(error) from None
    say(f"Added user '{name}' ({role.value})")


@users.command("list")
def user_list(data_dir: DataDir = None, database_url: DatabaseOption = None) -> None:
    """List users and their roles."""
    from rich.table import Table  # here: ``keepstone serve`` shows no table (cli/repo.py)
    from rich.text import Text

    table = Table("Name", "Role", "Created (UTC)")
    for user in auth.list_users(context(data_dir, database_url)):
        table.add_row(Text(user.name), user.role, f"{user.created_at:%Y-%m-%d %H:%M:%S}")
    console().print(table)


@users.command("remove")
def user_remove(name: str, data_dir: DataDir = None, database_url: DatabaseOption = None) -> None:
    """Remove a user; their tokens and logon sessions stop working at once."""
    try:
        auth.remove_user(context(data_dir, database_url), name, by=operator())
    except KeepstoneError as error:
        raise fail(error) from None
    say(f"Removed user '{name}'")


@users.command("passwd")
def user_passwd(
    name: str,
    password: Annotated[str | None, typer.Option()] = None,
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
) -> None:
    """Change a user's password; their tokens and logon sessions are revoked."""
    try:
        auth.set_password(context(data_dir, database_url), name, _password(password), by=operator())
    except KeepstoneError as error:
        raise fail(error) from None
    say(f"Changed the password of '{name}' and revoked their tokens")


@users.command("revoke-tokens")
def user_revoke_tokens(
    name: str, data_dir: DataDir = None, database_url: DatabaseOption = None
) -> None:
    """Revoke every access and refresh token and every logon session of a user."""
    try:
        auth.revoke_tokens(context(data_dir, database_url), name, by=operator())
    except KeepstoneError as error:
        raise fail(error) from None
    say(f"Revoked the tokens of '{name}'")


@admin.command("audit")
def audit_list(
    since: Annotated[
        datetime | None,
        typer.Option(help="Only events at or after this time (ISO 8601; UTC unless it says)."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many events.")] = 100,
    data_dir: DataDir = None,
    database_url: DatabaseOption = None,
) -> None:
    """List the audit trail, most recent first: logins, revocations, saves and restores."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        found = audit.events(context(data_dir, database_url), since=since, limit=limit)
    except KeepstoneError as error:
        raise fail(error) from None
    from rich.table import Table  # here: see user_list
    from rich.text import Text

    table = Table("Time (UTC)", "Action", "Outcome", "User", "Address", "Dialect", "About")
    for event in found:
        table.add_row(
            f"{event.time:%Y-%m-%d %H:%M:%S}",
            event.action,
            event.outcome,
            Text(event.user_name),
            Text(event.address or ""),
            event.dialect or "",
            Text(_about(event)),
        )
    console().print(table)


def _about(event: audit.AuditEvent) -> str:
    parts = [f"user {event.subject}"] if event.subject else []
    if event.organization_id:
        parts.append(f"organization {event.organization_id}")
    parts += [f"{key}={value}" for key, value in sorted(event.details.items())]
    return "; ".join(parts)
