"""A private PostgreSQL cluster for the tests, from Debian's binaries (``initdb``/``pg_ctl``).

One cluster per pytest worker, on a free loopback port, in a temporary directory, without
durability (``fsync=off``: a test catalog never outlives its machine). PostgreSQL refuses to run
as root, so under root the cluster belongs to the ``postgres`` account (Debian's package creates
it). Each test gets its own database, copied from a migrated template (``CREATE DATABASE ...
TEMPLATE``), which is faster than running the migrations and isolates tests completely.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psycopg

from keepstone.store.postgres import Listener

SUPERUSER = "keepstone"
TEMPLATE = "keepstone_template"


def binaries() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` directory (``$KEEPSTONE_PG_BIN`` wins)."""
    chosen = os.environ.get("KEEPSTONE_PG_BIN")
    if chosen:
        return Path(chosen)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major_version)
    return Path(found[-1]).parent if found else None


def _major_version(path: str) -> int:
    version = Path(path).parent.parent.name
    return int(version) if version.isdigit() else 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        # Not under pytest's temporary root: that one is private to root (0700) and the cluster's
        # owner must reach its directory.
        self.root = Path(tempfile.mkdtemp(prefix="keepstone-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._owner = "postgres" if os.geteuid() == 0 else None
        self._numbers = itertools.count(1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self._owner:
            command = ["runuser", "-u", self._owner, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if self._owner:
            shutil.chown(self.root, self._owner, self._owner)
        self._run(
            "initdb",
            "--no-sync",
            "-A",
            "trust",
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "-D",
            str(self.data),
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "400",
            "shared_buffers": "32MB",
            "log_min_messages": "fatal",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def restart(self) -> None:
        """A fast restart (``-m fast``): every session of every client is terminated."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-m",
            "fast",
            "-w",
            "restart",
        )

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(), autocommit=True)

    def create_database(self, template: str | None = None) -> str:
        """A new empty database (a copy of ``template`` when given); returns its name."""
        name = f"t{os.getpid()}_{next(self._numbers)}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.admin() as connection:
            connection.execute(f"CREATE DATABASE {name}{clause}")  # type: ignore[arg-type]
        return name

    def drop_database(self, name: str) -> None:
        with self.admin() as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


class DatabasePool:
    """Databases copied from ``template`` one ahead, and dropped, on a background thread: the
    copy and the drop (~0.1 s of the cluster's time per test) overlap the tests themselves."""

    def __init__(self, server: PostgresServer, template: str) -> None:
        self.server = server
        self.template = template
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-pool")
        self._next: Future[str] = self._background.submit(server.create_database, template)

    def take(self) -> str:
        name = self._next.result()
        self._next = self._background.submit(self.server.create_database, self.template)
        return name

    def give_back(self, name: str) -> None:
        self._background.submit(self.server.drop_database, name)

    def close(self) -> None:
        self._background.shutdown(wait=True)


@contextlib.contextmanager
def running() -> Iterator[PostgresServer]:
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL is not installed: the tests need Debian's postgresql package "
            "(scripts/test installs it)"
        )
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@contextlib.contextmanager
def listening(url: str, channel: str, deadline: float) -> Iterator[threading.Event]:
    """A ``Listener`` on ``channel`` (subscribed when this yields) and the event it sets."""
    woken = threading.Event()
    listener = Listener(url, channel, woken.set)
    listener.start()
    try:
        assert listener.listening.wait(deadline), "the listener never subscribed"
        yield woken
    finally:
        listener.stop(deadline)
