"""The Microsoft 365 connector: an Office365 organization's mailboxes (primary and In-Place
Archive) and OneDrives read through Graph for one run (``sources.connector.Connector``).

One ``GraphClient`` per run, shared by every reader thread: its throttling discipline is per
mailbox (``scope`` = the user's Graph id), so many mailboxes proceed in parallel while each stays
within Outlook's 4 requests in flight and its request budget. Parts are read ahead on a pool of
worker threads in the order the run consumes them, each into a buffer bounded by bytes (the
IMAP connector's), so memory stays bounded however fast Graph answers; items are recorded by
the run's thread only, and per-item warnings travel through the buffer to be reported there.

A part that cannot be read raises ``PartFailed`` from its iterator (a per-user warning); the
token endpoint refusing the application fails the run (no mailbox of the tenant can be read).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack

from keepstone.sources.connector import (
    Part,
    PreviousPoint,
    SkipHandler,
    Skipped,
    SourceItem,
)
from keepstone.sources.graph.access import GraphAccess, GraphUser
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.drive_backup import DriveBackup
from keepstone.sources.graph.mail_backup import MailboxBackup, is_carried
from keepstone.sources.readahead import ReadAheadBuffer, ReaderClosed

WORKERS = 8  # parts read at once; each mailbox itself keeps up to 4 requests in flight
BUFFER_BYTES = 32 << 20  # per part read ahead
ENTRY_BYTES = 4096  # what an item costs besides its content

Connect = Callable[[], AbstractContextManager[GraphClient]]


class Office365Backup:
    """The connector of one Office365 organization for one run."""

    def __init__(
        self,
        access: GraphAccess,
        users: Sequence[GraphUser],
        on_skip: SkipHandler,
        check: Callable[[], None] = lambda: None,
        *,
        connect: Connect | None = None,
        workers: int = WORKERS,
    ) -> None:
        self._users = {user.name: user for user in users}
        self._on_skip = on_skip
        self._check = check
        self._connect: Connect = connect or access.client
        self._workers = max(1, workers)
        self._stop = threading.Event()
        self._previous = PreviousPoint()
        self._stack = ExitStack()
        self._client: GraphClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: dict[tuple[str, Part], ReadAheadBuffer] = {}
        self._buffers: list[ReadAheadBuffer] = []

    def users(self) -> list[GraphUser]:
        return list(self._users.values())

    def start(self, plan: Sequence[tuple[str, Sequence[Part]]], previous: PreviousPoint) -> None:
        self._previous = previous
        # Submitted in the order they are consumed: a part waits for a worker only behind
        # parts that come before it, so the run never waits on a stuck queue.
        for user, parts in plan:
            for part in parts:
                if user in self._users:
                    self._ahead[(user, part)] = self._launch(user, part)

    def items(self, user: str, part: Part) -> Iterator[SourceItem]:
        buffer = self._ahead.pop((user, part), None)
        if buffer is None:
            if user not in self._users:
                return iter(())
            buffer = self._launch(user, part)
        return self._drain(buffer)

    def close(self) -> None:
        self._stop.set()
        for buffer in self._buffers:
            buffer.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._stack.close()

    # ----- reading ahead -----

    def _graph(self) -> GraphClient:
        if self._client is None:
            self._client = self._stack.enter_context(self._connect())
        return self._client

    def _launch(self, user: str, part: Part) -> ReadAheadBuffer:
        buffer = ReadAheadBuffer(BUFFER_BYTES, self._stop)
        self._buffers.append(buffer)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="keepstone-m365")
        client = self._graph()
        self._pool.submit(_read_part, client, self._users[user], part, self._previous, buffer)
        return buffer

    def _drain(self, buffer: ReadAheadBuffer) -> Iterator[SourceItem]:
        """The part's items as its reader gives them; skips are reported from the run's
        thread, and the reader's failure is raised here, after what it gave."""
        try:
            for entry in buffer.drain(self._check):
                if isinstance(entry, Skipped):
                    self._on_skip(entry)
                else:
                    yield entry
        finally:
            buffer.close()  # a consumer that stops early releases the reader


def _read_part(
    client: GraphClient,
    user: GraphUser,
    part: Part,
    previous: PreviousPoint,
    buffer: ReadAheadBuffer,
) -> None:
    """Read one part of one user into ``buffer`` (a pool thread)."""

    def skipped(entry: Skipped) -> None:
        buffer.put(entry, 0)

    try:
        for item in _part_items(client, user, part, previous, skipped):
            held = 0 if is_carried(item) or item.kind == "folder" else item.size
            buffer.put(item, ENTRY_BYTES + held)
    except ReaderClosed:
        pass
    except BaseException as error:  # never leave the consumer waiting
        buffer.fail(error)
    else:
        buffer.finish()


def _part_items(
    client: GraphClient,
    user: GraphUser,
    part: Part,
    previous: PreviousPoint,
    on_skip: SkipHandler,
) -> Iterator[SourceItem]:
    before = previous.of_user(user.name)
    if part == "mailbox":
        return MailboxBackup(client, user, "primary", before, on_skip).items()
    if part == "archive":
        return MailboxBackup(client, user, "archive", before, on_skip).items()
    return DriveBackup(client, user, before, on_skip).items()
