"""Running a Keepstone server: its data directory, first-start bootstrap, TLS, and lifecycle."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import secrets
import signal
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import IO, TYPE_CHECKING

import structlog
import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from keepstone.api.client_address import Network, parse_networks
from keepstone.clock import Clock, SystemClock
from keepstone.domain.errors import InvalidInput
from keepstone.domain.time_zones import UnknownTimeZone, time_zone
from keepstone.engine.heap import collector_paused, freeze_long_lived
from keepstone.engine.s3location import is_loopback
from keepstone.proxy.worker import ProxyWorker
from keepstone.scheduler import Scheduler
from keepstone.services import auth, catalog, proxies, tasks, vault
from keepstone.services.context import Context
from keepstone.services.leadership import Leadership
from keepstone.services.secret_box import SecretBox, SecretKeyError
from keepstone.sources.graph.settings import GraphEndpoints
from keepstone.store.db import Database, DatabaseUrlError, database_url, sqlite_url

if TYPE_CHECKING:
    from fastapi import FastAPI

    from keepstone.store.postgres import Listener

if TYPE_CHECKING:
    from keepstone.api.metrics import MetricsAccess

log = structlog.get_logger("keepstone.server")
DATABASE_FILE = "keepstone.db"
INITIAL_PASSWORD_FILE = "initial-admin-password"
SERVER_ID_FILE = "server-id"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
CATALOG_SUFFIXES = ("-wal", "-shm", "-journal")
# How long a stop waits for a running backup or retention to reach its next stop check.
STOP_GRACE_SECONDS = 120.0
WAKE_CHANNEL = "keepstone_runs"  # NOTIFY channel: a run was queued or asked to stop


class ServerError(Exception):
    """A reason the server cannot start, worded for the person starting it."""


def resolve_data_dir(option: Path | None) -> Path:
    """``--data-dir``, else ``$KEEPSTONE_DATA_DIR``, else ``~/.local/share/keepstone``."""
    chosen = option or os.environ.get("KEEPSTONE_DATA_DIR") or "~/.local/share/keepstone"
    return Path(chosen).expanduser().resolve()


def resolve_database(option: str | None) -> str | None:
    """``--database``, else ``$KEEPSTONE_DATABASE``, else none: the data directory's SQLite file.
    A plain ``postgresql://user@host:port/db`` is accepted (psycopg 3)."""
    chosen = option or os.environ.get("KEEPSTONE_DATABASE") or None
    if chosen is None:
        return None
    try:
        return database_url(chosen)
    except DatabaseUrlError as error:
        raise ServerError(str(error)) from None


def resolve_secret_key(key_file: Path | None) -> SecretBox | None:
    """The operator's key: ``--secret-key-file`` (readable by its owner alone), else
    ``$KEEPSTONE_SECRET_KEY``, else none (the vault's files keep the secrets)."""
    if key_file is not None:
        try:
            if key_file.stat().st_mode & 0o077:
                raise ServerError(
                    f"--secret-key-file {key_file} is open to group or others; chmod 600 it"
                )
            text = key_file.read_text(encoding="ascii", errors="replace")
        except OSError as error:
            raise ServerError(f"--secret-key-file {key_file}: {error.strerror}") from None
    else:
        text = os.environ.get("KEEPSTONE_SECRET_KEY") or ""
        if not text:
            return None
    try:
        return SecretBox(text)
    except SecretKeyError as error:
        raise ServerError(str(error)) from None


def resolve_timezone(name: str | None) -> tzinfo:
    """The server's time zone (schedules' ``dailyTime`` is read in it): ``$KEEPSTONE_TIMEZONE``."""
    name = name or os.environ.get("KEEPSTONE_TIMEZONE") or "UTC"
    try:
        return time_zone(name)
    except UnknownTimeZone as error:
        raise ServerError(str(error)) from None


class DataDirLock:
    """An exclusive lock on the data directory, so two servers never share one catalog."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "keepstone.lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ServerError(
                f"another Keepstone server (pid {holder}) is already using the data "
                f"directory {self.path.parent}; stop it or choose another --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def open_context(
    data_dir: Path,
    clock: Clock | None = None,
    tz: tzinfo = UTC,
    graph: GraphEndpoints | None = None,
    database: str | None = None,
    secret_box: SecretBox | None = None,
) -> Context:
    """The catalog (``database``, a SQLAlchemy URL, else the SQLite file of ``data_dir``),
    migrated to the newest schema, its secrets checked against ``secret_box`` (and the vault's
    files moved into the catalog when a key is first given)."""
    make_private_data_dir(data_dir, sqlite=database is None)
    db = Database(database or sqlite_url(data_dir / DATABASE_FILE))
    db.migrate()
    ctx = Context(
        db=db,
        clock=clock or SystemClock(),
        tz=tz,
        secrets_dir=data_dir / "secrets",
        data_dir=data_dir,
        graph=graph or GraphEndpoints(),
        secret_box=secret_box,
    )
    try:
        moved = vault.start(ctx)
    except SecretKeyError as error:
        db.dispose()
        raise ServerError(str(error)) from None
    if moved:
        log.info("secrets moved into the catalog", count=moved)
    return ctx


def make_private_data_dir(data_dir: Path, *, sqlite: bool = True) -> None:
    """The data directory and its secrets 0700 and the catalog 0600, whatever the umask and
    whatever an older version left: the catalog holds every password hash. SQLite gives its
    ``-wal`` and ``-shm`` files the database file's mode, so the database is created 0600 before
    SQLite opens it."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    os.chmod(data_dir, PRIVATE_DIRECTORY)
    if (data_dir / "secrets").is_dir():
        os.chmod(data_dir / "secrets", PRIVATE_DIRECTORY)
    if not sqlite:
        return
    database = data_dir / DATABASE_FILE
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    for path in (database, *(data_dir / f"{DATABASE_FILE}{s}" for s in CATALOG_SUFFIXES)):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path, PRIVATE_FILE)


def server_identity(data_dir: Path) -> str:
    """This server's id among the servers of its catalog: ``<data-dir>/server-id``, a uuid made
    at the first start and kept (its built-in proxy and its leader lease name it)."""
    path = data_dir / SERVER_ID_FILE
    try:
        return str(uuid.UUID(path.read_text(encoding="ascii").strip()))
    except FileNotFoundError:
        pass
    except (ValueError, UnicodeDecodeError):
        raise ServerError(f"{path} holds no server id; remove it to make a new one") from None
    made = str(uuid.uuid4())
    _write_private(path, made + "\n")
    return made


@dataclass(frozen=True, slots=True)
class Bootstrap:
    proxy_id: str
    generated_password: str | None
    server_id: str = ""


def bootstrap(ctx: Context, data_dir: Path) -> Bootstrap:
    """First start creates the server's id and built-in proxy, the default repository and the
    administrator; later starts find and reuse them. A catalog left without any administrator
    gets one again, so an operator can never lock themselves out."""
    server_id = server_identity(data_dir)
    proxy = catalog.ensure_local_proxy(ctx, server_id)
    try:
        catalog.ensure_default_repository(ctx, data_dir / "repository")
    except InvalidInput as error:  # the name is taken: another server of the catalog made it
        if error.prop != "name":
            raise
        log.info("the catalog's default repository belongs to another server")
    generated = None
    if not any(user.role == auth.Role.ADMINISTRATOR for user in auth.list_users(ctx)):
        name = os.environ.get("KEEPSTONE_ADMIN_USER") or "admin"
        password = os.environ.get("KEEPSTONE_ADMIN_PASSWORD")
        if not password:
            password = generated = secrets.token_urlsafe(18)
            _write_private(data_dir / INITIAL_PASSWORD_FILE, password + "\n")
        auth.add_user(ctx, name, password, auth.Role.ADMINISTRATOR)
    return Bootstrap(proxy.id, generated, server_id)


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "w") as handle:
        os.fchmod(handle.fileno(), PRIVATE_FILE)
        handle.write(text)


def self_signed_certificate(data_dir: Path) -> tuple[Path, Path]:
    """A certificate made on first use and kept in ``<data-dir>/tls`` for later starts."""
    folder = data_dir / "tls"
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    folder.mkdir(mode=0o700, exist_ok=True)
    # imported here: X.509 is needed only to make the certificate once (about 20 ms of a start)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName(host),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    _write_private(
        key_path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


@dataclass(frozen=True, slots=True)
class ServeOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 4443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_self_signed: bool = False
    timezone: str | None = None
    trusted_proxies: tuple[Network, ...] = ()  # whose X-Forwarded-For the server believes
    public_url: str | None = None
    graph: GraphEndpoints = field(default_factory=GraphEndpoints)  # where the Graph connector goes
    database: str | None = None  # a SQLAlchemy URL (resolve_database); none: SQLite in data_dir
    secret_key_file: Path | None = None  # else $KEEPSTONE_SECRET_KEY (resolve_secret_key)


def resolve_public_url(option: str | None) -> str | None:
    """``--public-url``, else ``$KEEPSTONE_PUBLIC_URL``, else none (links then use the address
    the server listens on)."""
    from keepstone.api.public_url import PublicUrlError, check_public_url

    chosen = option or os.environ.get("KEEPSTONE_PUBLIC_URL")
    try:
        return check_public_url(chosen) if chosen else None
    except PublicUrlError as error:
        raise ServerError(str(error)) from None


def resolve_metrics_access() -> MetricsAccess:
    """Who may scrape ``/metrics``: ``$KEEPSTONE_METRICS_TOKEN`` (a bearer or basic secret)
    and ``$KEEPSTONE_METRICS_ALLOW`` (addresses or networks, comma separated); with neither,
    nobody (api/metrics.py)."""
    from keepstone.api.metrics import MetricsAccess

    token = os.environ.get("KEEPSTONE_METRICS_TOKEN") or None
    if token is not None and len(token) < 16:
        raise ServerError("KEEPSTONE_METRICS_TOKEN must be at least 16 characters")
    try:
        allowed = parse_networks((os.environ.get("KEEPSTONE_METRICS_ALLOW") or "").split(","))
    except ValueError as error:
        raise ServerError(f"KEEPSTONE_METRICS_ALLOW: {error}") from None
    return MetricsAccess(token, allowed)


def strict_tls(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's TLS context, held to TLS 1.2 or newer by the server itself rather than by
    whatever the Python or OpenSSL build defaults to."""
    context = default()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    return context


def serve(options: ServeOptions, say: Callable[[str], None] = print) -> None:
    """Run until SIGTERM or Ctrl-C, then stop the proxy and release the data directory."""
    tz = resolve_timezone(options.timezone)
    public = resolve_public_url(options.public_url)
    options.data_dir.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    lock = DataDirLock(options.data_dir)
    lock.acquire()
    try:
        # A start makes a few hundred thousand objects (the app's routes and models above all)
        # and no garbage worth a collection: none runs until they are frozen (engine/heap.py).
        with collector_paused():
            running = _start(options, tz, public, say)
            freeze_long_lived()
        try:
            _Server(running.config).run()
        finally:
            stop_background_work(running.scheduler, running.worker)
            if running.listener is not None:
                running.listener.stop(STOP_GRACE_SECONDS)
            running.ctx.db.dispose()
            say("Keepstone stopped")
    finally:
        lock.release()
        log.info("data directory released", data_dir=str(options.data_dir))


@dataclass(frozen=True, slots=True)
class _Running:
    """A started server's parts, for ``serve`` to run and then stop."""

    ctx: Context
    config: uvicorn.Config
    worker: ProxyWorker
    scheduler: Scheduler
    listener: Listener | None


def _start(
    options: ServeOptions, tz: tzinfo, public: str | None, say: Callable[[str], None]
) -> _Running:
    """The catalog opened, the server bootstrapped, the app made, the proxy and scheduler
    running: everything but answering."""
    ctx = open_context(
        options.data_dir,
        tz=tz,
        graph=options.graph,
        database=options.database,
        secret_box=resolve_secret_key(options.secret_key_file),
    )
    # A first start hashes the administrator's password (Argon2, about 0.2 s in C, which
    # releases the GIL): it runs beside the app's imports and analysis, which need no catalog.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bootstrap") as pool:
        bootstrapping = pool.submit(bootstrap, ctx, options.data_dir)
        app = _create_app(ctx, options, public)
        started = bootstrapping.result()
    ctx.server_id = started.server_id
    tasks.fail_interrupted(ctx, alone=not other_servers_online(ctx, started.proxy_id))
    if started.generated_password:
        say(
            f"Created administrator '{os.environ.get('KEEPSTONE_ADMIN_USER') or 'admin'}' with "
            f"password: {started.generated_password}\n(also written to "
            f"{options.data_dir / INITIAL_PASSWORD_FILE}; "
            "change it with 'keepstone admin user passwd')"
        )
    cert, key = _tls_files(options)
    if cert is None and not is_loopback(options.host):
        say(
            f"WARNING: serving plain HTTP on non-loopback address {options.host}: passwords "
            "and tokens cross the network unencrypted; use --tls-self-signed or "
            "--tls-cert/--tls-key"
        )
    scheme = "https" if cert else "http"
    ctx.public_url = public or f"{scheme}://{options.host}:{options.port}"
    worker = ProxyWorker(ctx, started.proxy_id)
    listener = wire_wakeups(ctx, worker.wake)
    worker.start()
    scheduler = Scheduler(ctx, Leadership(ctx, started.server_id))
    scheduler.start()
    say(
        f"Keepstone serving {scheme}://{options.host}:{options.port}/ "
        f"(data directory {options.data_dir})"
    )
    config = uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        ssl_certfile=cert,
        ssl_keyfile=key,
        ssl_context_factory=strict_tls if cert else None,
        log_config=None,
        access_log=False,
        # uvicorn would believe X-Forwarded-For from loopback peers; only the operator's
        # --trusted-proxy list is believed (api/client_address.py).
        proxy_headers=False,
        # no "server: uvicorn": the software and its version are nobody's business (and a
        # header less on every answer)
        server_header=False,
        # no WebSocket route anywhere: uvicorn's "auto" imported the websockets library at
        # every start (0.01-0.02 s); an upgrade request is now answered as plain HTTP
        ws="none",
        timeout_graceful_shutdown=10,
    )
    logging.getLogger("uvicorn.error").addFilter(no_websocket_advice)
    return _Running(ctx, config, worker, scheduler, listener)


def no_websocket_advice(record: logging.LogRecord) -> bool:
    """uvicorn without WebSocket support advises installing a WebSocket library at every
    upgrade request; Keepstone serves no WebSocket, so the advice is noise that any client
    could write into the log at will (the request itself is answered as plain HTTP)."""
    return not record.getMessage().startswith("No supported WebSocket library")


def _create_app(ctx: Context, options: ServeOptions, public: str | None) -> FastAPI:
    """The app first: creating it is most of a start's CPU, which the proxy's and the
    scheduler's first rounds would otherwise share (they are running before it answers)."""
    from keepstone.api.app import create_app  # here: the CLI's other commands need no web stack

    return create_app(
        ctx,
        trusted_proxies=options.trusted_proxies,
        public=public,
        metrics_access=resolve_metrics_access(),
    )


def other_servers_online(ctx: Context, own_proxy_id: str) -> bool:
    """Whether another server of the catalog is running (its built-in proxy heartbeats). Tasks
    do not record which server runs them, so running tasks are failed at start only when no
    other server could be running them."""
    now = ctx.clock.now()
    return any(
        proxy.is_local and proxy.id != own_proxy_id and proxies.proxy_status(proxy, now) == "Online"
        for proxy in catalog.list_proxies(ctx)
    )


def wire_wakeups(ctx: Context, wake_local: Callable[[], None]) -> Listener | None:
    """New work wakes this server's proxy at once and, on PostgreSQL, every other process of
    the catalog through ``NOTIFY``; a listener wakes this one's on theirs. The proxy polls as
    well (``proxy/worker.py``), as notifications are lost while a connection is re-made."""

    def wake() -> None:
        wake_local()
        try:
            ctx.db.notify(WAKE_CHANNEL)
        except SQLAlchemyError as error:  # the others' polling finds the work anyway
            log.warning("could not notify the catalog's other processes", error=str(error))

    ctx.wake_proxies = wake
    if ctx.db.dialect != "postgresql":
        return None
    from keepstone.store.postgres import Listener

    listener = Listener(ctx.db.url, WAKE_CHANNEL, wake_local)
    listener.start()
    return listener


def stop_background_work(scheduler: Scheduler, worker: ProxyWorker) -> None:
    """Stop the scheduler, the retention runs, the proxy's backup and the tasks, and wait for
    them: the data-directory lock may be released only when nothing of this server still writes
    (a server started next must never run beside this one's backup). Work that will not stop
    within ``STOP_GRACE_SECONDS`` ends with the process, which frees the lock only then."""
    log.info("stopping background work")
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    stopped = scheduler.stop(STOP_GRACE_SECONDS)
    stopped = worker.stop(max(0.0, deadline - time.monotonic())) and stopped
    if not stopped:
        log.error("background work did not stop in time; exiting", seconds=STOP_GRACE_SECONDS)
        os._exit(1)  # the kernel frees the lock as the last thread of the process dies
    tasks.stop_workers()
    log.info("background work stopped")


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would kill the process
    before the proxy stops and the data directory is released; here a signal simply means stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _tls_files(options: ServeOptions) -> tuple[str | None, str | None]:
    if options.tls_self_signed:
        cert, key = self_signed_certificate(options.data_dir)
        return str(cert), str(key)
    if (options.tls_cert is None) != (options.tls_key is None):
        raise ServerError("--tls-cert and --tls-key go together")
    for path in (options.tls_cert, options.tls_key):
        if path is not None and not path.is_file():
            raise ServerError(f"TLS file {path} does not exist")
    return (str(options.tls_cert), str(options.tls_key)) if options.tls_cert else (None, None)
