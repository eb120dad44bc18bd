"""A cluster of real ``keepstone serve`` processes on one PostgreSQL catalog, for process-level
tests (several servers now; the failure matrix and the scale benchmark build on it).

Each node is one ``keepstone serve``: its own data directory (so its own ``server-id`` and
built-in proxy) and loopback port, all on the same ``--database`` URL, with one shared
``KEEPSTONE_SECRET_KEY`` (sealed secrets reach every server), one administrator password, and
short timings for tests (:class:`Timings`: the leader lease, the writers' idle-in-transaction
timeout). The first node starts alone (it migrates the empty catalog and creates the
administrator); the others start after it, in parallel::

    with Cluster(tmp_path, postgres_url, nodes=2) as cluster:
        leader, epoch = cluster.wait_for_term()       # a Node and its epoch, from the lease row
        with leader.client() as api: ...              # httpx, logged on (VB365 bearer token)
        leader.kill()                                 # kill -9
        leader.freeze(); leader.thaw()                # SIGSTOP / SIGCONT
        leader.stop(); leader.start()                 # SIGTERM (clean stop), start again
        cluster.wait_for_leader(other_than=leader)    # waits for the next term
        with cluster.catalog() as s: ...              # a read transaction on the catalog itself
        with cluster.catalog_write() as s: ...        # arranging state (a job's next run)

Waiting is always for a condition with a generous deadline (:func:`wait_for`): the tests share a
loaded machine. Every process is stopped (or killed) when the ``with`` block ends; a frozen one is
thawed first so it can stop cleanly. Output of each node goes to files under ``<root>/logs``
(:attr:`Node.output` reads them; failures include them).

Only ``postgresql://`` catalogs make sense here: SQLite serves one server.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from keepstone.services.leadership import LEASE_ENV, SCHEDULER
from keepstone.store.db import Database, database_url
from keepstone.store.postgres import IDLE_IN_TRANSACTION_ENV
from keepstone.store.tables import LeaderLease
from tests import process_helpers as processes

PASSWORD = "cluster admin password 1"
READY_TIMEOUT = 120.0  # a loaded machine starts a server slowly
WAIT_TIMEOUT = 180.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Timings:
    """Short settings for tests: the leader lease and the writers' idle-in-transaction timeout
    (seconds; both set through the environment of every node)."""

    lease: float = 2.0
    # not shorter: a starved (not frozen) process sits idle in its transactions for a while too
    idle_in_transaction: float = 5.0


def wait_for(
    condition: Callable[[], T | None], what: str, timeout: float = WAIT_TIMEOUT, pause: float = 0.1
) -> T:
    """``condition()``'s first truthy value, polled until ``timeout`` (then AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(pause)


class Node:
    """One ``keepstone serve`` of the cluster."""

    def __init__(self, name: str, root: Path, env: dict[str, str]) -> None:
        self.name = name
        self.data_dir = root / name
        self.logs = root / "logs" / name
        self.port = processes.free_port()
        self._env = env
        self._server: processes.ServerProcess | None = None
        self.frozen = False

    # ---- lifecycle ----

    def launch(self) -> None:
        """Start the process (not waiting for it: :meth:`wait_ready`)."""
        assert not self.running, f"{self.name} is running"
        self._server = processes.start_server(
            self.logs, self.data_dir, env=self._env, port=self.port, wait=False
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        assert self._server is not None
        self._server.wait_ready(timeout)

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def stop(self) -> int:
        """SIGTERM (after thawing a frozen one); its exit code."""
        self.thaw()
        code = self.server.stop()
        self._server = None
        return code

    def kill(self) -> None:
        """``kill -9``: nothing of the process runs another instruction."""
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(timeout=processes.STOP_TIMEOUT)
        self.frozen = False
        self.server.stop()  # closes its output files
        self._server = None

    def freeze(self) -> None:
        """SIGSTOP: the process keeps its connections and locks, and does nothing."""
        self.server.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen and self._server is not None:
            self._server.process.send_signal(signal.SIGCONT)
        self.frozen = False

    # ---- looking at it ----

    @property
    def server(self) -> processes.ServerProcess:
        assert self._server is not None, f"{self.name} is not running"
        return self._server

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.process.poll() is None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def server_id(self) -> str:
        """Its ``<data-dir>/server-id`` (made at its first start)."""
        return (self.data_dir / "server-id").read_text().strip()

    @property
    def output(self) -> str:
        """Everything it printed, across its starts."""
        return "".join(path.read_text(errors="replace") for path in sorted(self.logs.glob("*")))

    @contextmanager
    def client(self, timeout: float = 60.0) -> Iterator[httpx.Client]:
        """An httpx client of this node, logged on as the administrator (a VB365 token)."""
        with httpx.Client(base_url=self.base_url, timeout=timeout) as client:
            client.headers.update(processes.bearer(processes.login(client, "admin", PASSWORD)))
            yield client

    def __repr__(self) -> str:
        return f"Node({self.name}, port {self.port})"


class Cluster:
    """``nodes`` servers on the catalog ``url``, under ``root`` (see the module's docstring)."""

    def __init__(
        self,
        root: Path,
        url: str,
        nodes: int = 2,
        timings: Timings | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.url = url
        self.timings = timings or Timings()
        self.secret_key = Fernet.generate_key().decode()
        env = processes.process_env(
            KEEPSTONE_DATABASE=url,
            KEEPSTONE_SECRET_KEY=self.secret_key,
            KEEPSTONE_ADMIN_PASSWORD=PASSWORD,
            **{
                LEASE_ENV: str(self.timings.lease),
                IDLE_IN_TRANSACTION_ENV: str(self.timings.idle_in_transaction),
            },
            **(extra_env or {}),
        )
        self.nodes = [Node(f"server-{i}", root, env) for i in range(nodes)]
        self._db: Database | None = None

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """The first node alone (it migrates and bootstraps), then the others at once."""
        first, *others = self.nodes
        first.start()
        for node in others:
            node.launch()
        with ThreadPoolExecutor(max(1, len(others))) as pool:
            list(pool.map(lambda node: node.wait_ready(), others))

    def close(self) -> None:
        """Stop every node still running (thawing the frozen first); dispose of the catalog."""
        for node in self.nodes:
            node.thaw()
        for node in self.nodes:
            if node._server is not None:
                node.stop()
        if self._db is not None:
            self._db.dispose()
            self._db = None

    # ---- the catalog ----

    @property
    def database(self) -> Database:
        """The catalog, opened from the test process: ``.read()`` to look, ``.write()`` to
        arrange state (a job's next run, say)."""
        if self._db is None:
            self._db = Database(database_url(self.url))
        return self._db

    def catalog(self) -> AbstractContextManager[Session]:
        """A read transaction on the catalog."""
        return self.database.read()

    def catalog_write(self) -> AbstractContextManager[Session]:
        """A write transaction on the catalog."""
        return self.database.write()

    def lease(self, role: str = SCHEDULER) -> tuple[str, int, float] | None:
        """The role's row: (holder server id, epoch, seconds until it expires)."""
        with self.catalog() as s:
            row = s.get(LeaderLease, role)
            if row is None:
                return None
            left = row.expires_at.timestamp() - time.time()
            return row.holder, row.epoch, left

    def term(self, role: str = SCHEDULER) -> tuple[Node, int] | None:
        """The leading node and its epoch, from one read of the role's row (unexpired)."""
        lease = self.lease(role)
        if lease is None or lease[2] <= 0:
            return None
        node = next((n for n in self.nodes if n.running and n.server_id == lease[0]), None)
        return None if node is None else (node, lease[1])

    def leader(self, role: str = SCHEDULER) -> Node | None:
        """The node whose unexpired term the catalog holds now, if any."""
        term = self.term(role)
        return None if term is None else term[0]

    def wait_for_term(
        self, other_than: Node | None = None, timeout: float = WAIT_TIMEOUT
    ) -> tuple[Node, int]:
        """The leading node (not ``other_than``) and its epoch, once there is one. Under heavy
        load a leader may miss its renewals and lose the role: read the term right before
        acting on it."""

        def found() -> tuple[Node, int] | None:
            term = self.term()
            return term if term is not None and term[0] is not other_than else None

        return wait_for(found, f"a leader other than {other_than}", timeout)

    def wait_for_leader(
        self, other_than: Node | None = None, timeout: float = WAIT_TIMEOUT
    ) -> Node:
        return self.wait_for_term(other_than, timeout)[0]

    def other_than(self, node: Node) -> Node:
        """Another running node (the first found)."""
        return next(n for n in self.nodes if n is not node and n.running)

    def __getitem__(self, index: int) -> Node:
        return self.nodes[index]
