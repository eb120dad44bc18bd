"""A job run's real work: read the organization in scope and write one restore point.

The organization's type picks its connector (``sources.connector``: Local, Imap, Office365);
everything else is the same for every source. Unchanged items (same change token as in the
job's previous restore point, or the previous item the connector names, their chunks still in
the repository) are carried over without being read. Files are chunked, hashed, compressed and
stored by a small thread pool (the engine releases the GIL in its hot loops).

One bad item never fails a run: an item the source cannot give (a link, a FIFO, a file that
vanished, an unreadable one), or a part of a user that cannot be read at all, is a warning log
item with the user as its subject; the session ends ``Warning`` and the restore point holds
everything else. Only the repository failing (or the organization's root) fails the run.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keepstone.domain.errors import InvalidInput, KeepstoneError
from keepstone.domain.jobs import SessionStatus
from keepstone.domain.scope import Parts, ScopeUser, resolve_scope, stable_user_id
from keepstone.domain.units import human_bytes
from keepstone.engine import BackupWriter, Item, Repository, SnapshotInfo
from keepstone.engine.heap import collector_paused
from keepstone.engine.writer import item_record
from keepstone.proxy.executor import Outcome, RunContext, no_connector
from keepstone.services import restore_points
from keepstone.services.task_sessions import UserTally
from keepstone.sources.connector import (
    CarriedBlock,
    Connector,
    ConnectorFactory,
    Content,
    Part,
    PartFailed,
    PreviousPoint,
    Skipped,
    SourceItem,
    SourceUser,
    Watched,
)
from keepstone.sources.local import LocalOrganization
from keepstone.sources.names import display

WORKERS = 2
# Items read ahead of the one being recorded. Items are recorded in order, so the head holds
# back the pool: with 16, a 20 MB file at the head left the other worker idle once it had done
# the next 15 items (the bench's initial backup: each worker had an item in hand 61-65 % of the
# time; with 128, 94 %, the same peak memory). A remote source's items carry their content
# until a worker stores it, so the bytes of items handed to the pool bound it too.
IN_FLIGHT = 128
IN_FLIGHT_BYTES = 64 * 1024 * 1024
# Small items go to the pool in batches: a task costs a future, a queue hand-off and a thread's
# wake-up, all under the GIL (the bench's initial backup: 34,800 tasks for 30,000 messages and
# 4,800 files; 5,122 in batches). Ordered as the source gives them; a batch of 16 small
# messages is a few milliseconds of a worker's time. Only for the Local source: a remote
# connector's iterator may wait for its earlier items to be stored (Graph's and IMAP's bounded
# read-ahead), which a batch not yet full would hold back for ever.
BATCH_ITEMS = 16
BATCH_ITEM_BYTES = 256 * 1024  # larger items go alone
ITEM_WARNINGS = 100  # per user, items skipped that get a log item of their own
# At most this much work is done again when another proxy takes a run over: after a user, the
# packs stored so far are made durable and indexed once this many seconds have passed (each
# checkpoint costs a pack and an index object). Takeover tests set it to 0 through the
# environment of the proxies they start.
CHECKPOINT_SECONDS = float(os.environ.get("KEEPSTONE_CHECKPOINT_SECONDS", "60"))
# bench/scale.py's model of a remote data path: each item's content is read this many
# milliseconds after it is asked for (a round trip to a far source). Never set in production.
SOURCE_LATENCY_ENV = "KEEPSTONE_BENCH_SOURCE_LATENCY_MS"
SOURCE_LATENCY = float(os.environ.get(SOURCE_LATENCY_ENV, "0")) / 1000


def run_backup(run: RunContext) -> Outcome:
    """The executor of every job run: the organization's type picks the connector."""
    if run.run.copy is not None:  # a copy job's run: no source is read
        from keepstone.proxy.copy import run_copy  # imported here: it imports this module

        return run_copy(run)
    organization = run.run.organization
    if run.work().unavailable:
        return Outcome(SessionStatus.FAILED, run.work().unavailable, retryable=False)
    if organization.type == "Local":
        root = Path(organization.settings["path"])
        local = lambda on_skip: LocalOrganization(root, on_skip=on_skip)  # noqa: E731
        return Backup(run, local, batch_items=BATCH_ITEMS).execute()
    if organization.type == "Imap":
        return Backup(run, _imap_connector(run)).execute()
    if organization.type == "Office365":
        return _office365_backup(run).execute()
    return no_connector(run)


def _imap_connector(run: RunContext) -> ConnectorFactory:
    # Imported here: the IMAP adapter loads only for IMAP runs.
    from keepstone.sources.imap.backup import ImapBackup

    access = run.work().imap
    assert access is not None  # the work package of an Imap run carries it
    return lambda on_skip: ImapBackup(access, on_skip, check=run.check)


def _office365_backup(run: RunContext) -> Backup:
    """An Office365 run: the users of the organization's cache, named by the vendor's ids (as
    its job items and ``/Organizations/{id}/Users`` name them)."""
    # Imported here: the Graph connector loads only for Office365 runs.
    from keepstone.sources.graph.connector import Office365Backup

    graph = run.work().graph
    assert graph is not None  # the work package of an Office365 run carries it
    access, users = graph.access, graph.users
    return Backup(
        run,
        lambda on_skip: Office365Backup(access, users, on_skip, check=run.check),
        graph.vendor_ids,
    )


@dataclass
class Counts:
    messages: int = 0
    files: int = 0
    unchanged: int = 0
    bytes_read: int = 0
    bytes_new: int = 0
    bytes_total: int = 0  # of every item kept, unchanged ones included

    def tally(self) -> UserTally:
        return UserTally(
            self.messages + self.files, self.bytes_total, self.bytes_read, self.bytes_new
        )

    def describe(self) -> str:
        return (
            f"{self.messages} messages, {self.files} files ({self.unchanged} unchanged), "
            f"{human_bytes(self.bytes_read)} read, {human_bytes(self.bytes_new)} new"
        )


class UnreadableItem(Exception):
    """The source could not give an item's content: the item is skipped, the run goes on."""


@dataclass
class UserRun:
    """One user's part of a run: counts, and what went wrong (per item, per part)."""

    name: str
    subject: tuple[str, str]
    task_id: str  # the user's task session
    counts: Counts = field(default_factory=Counts)
    parts: int = 0
    failed_parts: int = 0


class Backup:
    """One run of any organization through its connector."""

    def __init__(
        self,
        run: RunContext,
        connector: ConnectorFactory,
        user_ids: Mapping[str, str] | None = None,
        batch_items: int = 1,
    ) -> None:
        """``user_ids``: user name -> the id the organization's API lists the user under (an
        Office365 user's vendor id); others get a stable id derived from the name.
        ``batch_items``: small items given to the pool per task (see ``BATCH_ITEMS``)."""
        self.batch_items = batch_items
        self.run = run
        self.claim = run.run
        self.user_ids = dict(user_ids or {})
        self.source: Connector = connector(self._skipped)
        self.total = Counts()
        self.warnings = 0
        self._warned: dict[str, int] = {}
        self._first_warning: dict[str, str] = {}  # per user: its task session's reason
        self.source_seconds = self.target_seconds = 0.0
        self._lock = threading.Lock()

    def execute(self) -> Outcome:
        try:
            return self._execute()
        finally:
            self.source.close()

    def _execute(self) -> Outcome:
        work = self.run.work()
        with collector_paused():  # the index: a tuple an entry, no cycle (a full GC: 0.04 s)
            repo = work.open_repository(self.claim.scope.repository_id)
        users = self.source.users()
        scope = resolve_scope(
            self.claim.scope.backup_type,
            self.claim.scope.selected_items,
            self.claim.scope.excluded_items,
            [
                ScopeUser(u.name, self._subject(u.name)[0], getattr(u, "graph_id", ""))
                for u in users
            ],
        )
        plan: list[tuple[str, list[Part]]] = []
        for user in users:
            chosen = scope.get(user.name)
            if chosen is not None:
                plan.append((user.name, _parts(chosen, user)))
        parent = self._parent(repo)
        with collector_paused():  # a few objects per item and no cycles
            previous = _previous_point(repo, parent)
        self.source.start(plan, previous)
        writer = repo.writer(self._tags(), parent=parent)
        previous.check_chunks_with(writer.known_ids)  # the lock is held: chunks stay
        checkpointed = time.monotonic()
        # One pool for the run: starting its threads again for every user cost more than an
        # unchanged user's items.
        pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="keepstone-backup")
        try:
            for user_name, parts in plan:
                self.run.check()
                previous.enter(user_name)  # only this user's records are held
                self._finish_user(self._backup_user(pool, writer, user_name, parts, previous))
                if time.monotonic() - checkpointed >= CHECKPOINT_SECONDS:
                    writer.checkpoint()  # a run taken over resumes from here
                    checkpointed = time.monotonic()
            lost = self.run.renew()
            if lost is not None and lost.status is SessionStatus.FAILED:
                raise lost  # never a snapshot from a run whose claim is gone
            snapshot_id = writer.commit(self.run.now())
        except BaseException:
            writer.abort()  # keeps the finished chunks: the next run does not upload them again
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        self._record(repo, snapshot_id)
        status = SessionStatus.WARNING if self.warnings else SessionStatus.SUCCESS
        return Outcome(
            status,
            f"Backup finished: {len(scope)} users, {self.total.describe()}"
            + (f"; {self.warnings} warnings (items not read)" if self.warnings else ""),
        )

    # ----- warnings: one log item per skipped item, with its user as the subject -----

    def _subject(self, user: str) -> tuple[str, str]:
        known = self.user_ids.get(user)
        return known or stable_user_id(self.claim.organization.id, user), user

    def _skipped(self, skipped: Skipped) -> None:
        self._warn(skipped.user, f"cannot be read: {skipped.path}: {skipped.reason}")

    def _warn(self, user: str, text: str) -> None:
        """A warning about one item or part of ``user``; past ``ITEM_WARNINGS`` for a user
        they are only counted (a tree of a million links must not write a million log items)."""
        self.warnings += 1
        self._warned[user] = self._warned.get(user, 0) + 1
        self._first_warning.setdefault(user, text)
        if self._warned[user] <= ITEM_WARNINGS:
            self.run.log(SessionStatus.WARNING, f"User {user}: {text}", self._subject(user))

    def _finish_user(self, user: UserRun) -> None:
        warned = self._warned.get(user.name, 0)
        unlisted = warned - ITEM_WARNINGS
        if unlisted > 0:
            self.run.log(
                SessionStatus.WARNING,
                f"User {user.name}: {unlisted} more items could not be read (not listed)",
                user.subject,
            )
        status, reason = self._user_outcome(user, warned)
        # Nothing of a failed user was read: no success to report. Otherwise the success log
        # item goes with the task's end, in one catalog transaction.
        failed = status is SessionStatus.FAILED
        outcome = "" if failed else f"User {user.name}: {user.counts.describe()}"
        self.run.finish_task(user.task_id, status, user.counts.tally(), reason, outcome)

    def _user_outcome(self, user: UserRun, warned: int) -> tuple[SessionStatus, str]:
        """Failed when no part of the user could be read, Warning when some items could not;
        the reason names the first problem and how many there were."""
        if not warned:
            return SessionStatus.SUCCESS, ""
        first = self._first_warning[user.name]
        reason = first if warned == 1 else f"{warned} warnings; the first: {first}"
        if user.parts and user.failed_parts == user.parts:
            return SessionStatus.FAILED, reason
        return SessionStatus.WARNING, reason

    # ----- one user -----

    def _backup_user(
        self,
        pool: ThreadPoolExecutor,
        writer: BackupWriter,
        user: str,
        parts: list[Part],
        previous: PreviousPoint,
    ) -> UserRun:
        subject = self._subject(user)
        state = UserRun(user, subject, self.run.start_task(subject))
        sources = [self._guarded(state, user, part) for part in parts]
        pending = ReadAhead()
        batches = Batches(pool, lambda items: self._store_all(writer, items), self.batch_items)
        try:
            for source in sources:
                for item in source:
                    if isinstance(item, CarriedBlock):
                        pending.add(item)
                    else:
                        pending.add((item, self._plan(batches, writer, item, previous)))
                    for entry in pending.due():
                        self._record_entry(writer, entry, state)
            batches.flush()
            for entry in pending.rest():
                self._record_entry(writer, entry, state)
        except BaseException:
            # A stopped run must end now: the items read ahead are not stored.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        return state

    def _guarded(
        self, state: UserRun, user: str, part: Part
    ) -> Iterator[SourceItem | CarriedBlock]:
        """A part's items; if the part itself cannot be read (its directory is missing, a link,
        unreadable; a mailbox server that keeps failing), one warning, and the user's other part
        still goes on."""
        state.parts += 1
        try:
            yield from self.source.items(user, part)
        except (OSError, InvalidInput, PartFailed) as error:
            state.failed_parts += 1
            self._warn(user, f"cannot be read: {_why(error)}")

    def _plan(
        self,
        batches: Batches,
        writer: BackupWriter,
        item: SourceItem,
        previous: PreviousPoint,
    ) -> Slot | Stored:
        """An unchanged item is carried over as is (its stored JSON too when nothing about it
        changed); anything else is read and stored. A folder item (a source's state, never any
        content) is kept as the source gives it, without decoding the one it replaces: that
        gives the very same item, and a folder's state can be large. An item with
        ``content_meta`` is always read: part of its metadata is in its content."""
        if item.kind == "folder" and item.size == 0:
            meta = _meta(item)
            return Stored(
                Item(item.key, item.user, "folder", item.path, 0, item.mtime, item.mode, meta)
            )
        if item.content_meta is not None:
            return batches.add(item)
        before = previous.get(item.key)
        if (
            before is not None
            and before.meta.get("change_token") == item.change_token
            and writer.known(before.chunks)
        ):
            carried = _carried(before, before.key, item)
            return Stored(carried, record=previous.record(item.key) if carried == before else None)
        same = item.previous
        if same is not None and writer.known(same.chunks):
            # The same content under a new key (the connector knows): nothing to read.
            return Stored(_carried(same, item.key, item))
        return batches.add(item)

    def _store_all(
        self, writer: BackupWriter, items: list[SourceItem]
    ) -> list[Stored | UnreadableItem | InvalidInput]:
        """A batch's items stored in order (in a pool thread): an item the source cannot give
        is its own failure; the repository failing fails the batch, and the run."""
        done: list[Stored | UnreadableItem | InvalidInput] = []
        for item in items:
            try:
                done.append(self._store(writer, item))
            except (UnreadableItem, InvalidInput) as error:
                done.append(error)
        return done

    def _store(self, writer: BackupWriter, item: SourceItem) -> Stored:
        """Read and store the item's content (in a pool thread). Failures of the source become
        ``UnreadableItem``; failures of the repository propagate and fail the run."""
        started = time.perf_counter()
        if SOURCE_LATENCY:
            time.sleep(SOURCE_LATENCY)
        try:
            stream = item.open()
        except (OSError, InvalidInput) as error:
            raise UnreadableItem(_why(error)) from error
        wanted = item.content_meta
        with stream:
            timed = TimedReader(stream, wanted.head_bytes if wanted is not None else 0)
            chunks, size, new = writer.add_file(timed)
            changed = _changed_while_read(stream, size)
        with self._lock:  # statistics only; the pool's threads add to them
            self.source_seconds += timed.seconds + SOURCE_LATENCY
            self.target_seconds += time.perf_counter() - started - timed.seconds - SOURCE_LATENCY
        meta = _meta(item) if wanted is None else _meta(item, wanted.parse(timed.head()))
        if changed:
            meta["change_token"] = ""  # not what was read: the next run reads it again
        stored = Item(
            key=item.key,
            user=item.user,
            kind=item.kind,
            path=item.path,
            size=size,
            mtime=item.mtime,
            mode=item.mode,
            meta=meta,
            chunks=chunks,
        )
        # Its JSON made here, in parallel: the run's thread records every item in order, and
        # encoding them there was a sixth of its work (the bench's initial backup).
        return Stored(stored, new, changed, item_record(stored))

    def _record_entry(
        self,
        writer: BackupWriter,
        entry: tuple[SourceItem, Slot | Stored] | CarriedBlock,
        user: UserRun,
    ) -> None:
        if isinstance(entry, CarriedBlock):
            self._record_block(writer, entry, user)
        else:
            self._record_item(writer, *entry, user)

    def _record_block(self, writer: BackupWriter, block: CarriedBlock, user: UserRun) -> None:
        """Items carried as their previous JSON: one call for the folder, not one per item."""
        self.run.check()
        size = writer.add_records(block.user, block.kind, block.folder, block.records)
        if block.kind == "folder":
            return
        count = len(block.records)
        for tally in (user.counts, self.total):
            tally.messages += count if block.kind == "mail" else 0
            tally.files += count if block.kind == "file" else 0
            tally.unchanged += count
            tally.bytes_total += size
        self._report(writer)

    def _record_item(
        self,
        writer: BackupWriter,
        source: SourceItem,
        planned: Slot | Stored,
        user: UserRun,
    ) -> None:
        self.run.check()
        fresh = isinstance(planned, Slot)
        try:
            outcome = planned.result() if isinstance(planned, Slot) else planned
            writer.add_item(outcome.item, outcome.record)
        except (UnreadableItem, InvalidInput) as error:
            self._warn(user.name, f"cannot be read: {source_text(source)}: {_why(error)}")
            return
        if outcome.changed:
            self._warn(
                user.name,
                f"{source_text(source)} changed while it was read: the copy kept may mix old "
                "and new content, and the next run reads it again",
            )
        stored = outcome.item
        if source.kind == "folder":
            return  # a folder's state: no content, not counted
        for tally in (user.counts, self.total):
            tally.messages += source.kind == "mail"
            tally.files += source.kind == "file"
            tally.unchanged += not fresh
            tally.bytes_read += stored.size if fresh else 0
            tally.bytes_new += outcome.new_bytes
            tally.bytes_total += stored.size
        self._report(writer)

    def _report(self, writer: BackupWriter) -> None:
        self.run.report(
            progress=self.total.messages + self.total.files,
            read_items=self.total.messages + self.total.files,
            read_bytes=self.total.bytes_read,
            transferred_bytes=self.total.bytes_new,
            written_bytes=writer.stats.bytes_stored,
            bottleneck="Source" if self.source_seconds > self.target_seconds else "Target",
        )

    def _parent(self, repo: Repository) -> str | None:
        mine = [
            s for s in repo.snapshots() if s.tags.get(restore_points.TAG_JOB) == self.claim.job_id
        ]
        return mine[-1].id if mine else None

    def _tags(self) -> dict[str, str]:
        return {
            restore_points.TAG_JOB: self.claim.job_id,
            restore_points.TAG_ORGANIZATION: self.claim.organization.id,
            restore_points.TAG_SESSION: self.claim.session_id,
        }

    def _record(self, repo: Repository, snapshot_id: str) -> None:
        info = next(s for s in repo.snapshots() if s.id == snapshot_id)
        kinds = {"mail": self.total.messages, "file": self.total.files}
        self.run.record(self.claim.scope.repository_id, facts_of(repo, info, kinds))


def _previous_point(repo: Repository, parent: str | None) -> PreviousPoint:
    """The parent's records a user at a time when its trees allow it, else all at once."""
    if parent is None:
        return PreviousPoint()
    by_user = repo.user_records(parent)
    if by_user is None:
        return PreviousPoint.of_records(repo.item_records(parent))
    return PreviousPoint.of_users(by_user)


def facts_of(
    repo: Repository, info: SnapshotInfo, kinds: Mapping[str, int] | None = None
) -> restore_points.SnapshotFacts:
    """What the catalog keeps of a snapshot; ``kinds``, how many of its items are of each kind,
    are read when not given. Its item count is messages and files: folder items are a source's
    state (IMAP's UIDs, Graph's delta links, a Local folder's listing), nothing a person restores,
    so the count matches what its run's sessions and task sessions say they backed up."""
    if kinds is None:
        kinds = Counter(item.kind for item in repo.items(info.id))
    mail, files = kinds.get("mail", 0), kinds.get("file", 0)
    return restore_points.SnapshotFacts(
        snapshot_id=info.id,
        time=info.time,
        tags=dict(info.tags),
        item_count=mail + files,
        size=info.size,
        has_mail=mail > 0,
        has_files=files > 0,
    )


Entry = tuple[SourceItem, "Slot | Stored"] | CarriedBlock
Stores = list["Stored | UnreadableItem | InvalidInput"]  # a batch's outcomes, in its order


class _Batch:
    """Items given to the pool as one task; ``done`` is set once it is submitted."""

    __slots__ = ("done", "items")

    def __init__(self) -> None:
        self.items: list[SourceItem] = []
        self.done: Future[Stores] | None = None


class Slot:
    """An item's place in a batch: its ``Stored``, or the failure that kept it out."""

    __slots__ = ("_batch", "_batches", "_index")

    def __init__(self, batches: Batches, batch: _Batch, index: int) -> None:
        self._batches, self._batch, self._index = batches, batch, index

    def result(self) -> Stored:
        done = self._batch.done or self._batches.submit(self._batch)
        outcome = done.result()[self._index]
        if isinstance(outcome, Stored):
            return outcome
        raise outcome


class Batches:
    """Items to store, given to the pool in the source's order: small ones (at most
    ``BATCH_ITEM_BYTES``) ``items`` to a task, a larger one alone. A batch is submitted
    when full, when a larger item comes, on ``flush``, or when one of its items is asked for."""

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        store: Callable[[list[SourceItem]], Stores],
        items: int = BATCH_ITEMS,
    ) -> None:
        self._pool, self._store, self._items = pool, store, items
        self._open = _Batch()

    def add(self, item: SourceItem) -> Slot:
        large = item.size > BATCH_ITEM_BYTES
        if large:
            self.flush()
        batch = self._open
        slot = Slot(self, batch, len(batch.items))
        batch.items.append(item)
        if large or len(batch.items) >= self._items:
            self.flush()
        return slot

    def flush(self) -> None:
        """Submit the batch being filled, if it holds anything."""
        if self._open.items:
            self.submit(self._open)

    def submit(self, batch: _Batch) -> Future[Stores]:
        if batch is self._open:
            self._open = _Batch()
        if batch.done is None:
            batch.done = self._pool.submit(self._store, batch.items)
        return batch.done


class ReadAhead:
    """A user's entries between the source and the snapshot, in the source's order: an entry is
    due once ``IN_FLIGHT`` entries, or ``IN_FLIGHT_BYTES`` of items given to the pool, follow
    it or stand with it."""

    def __init__(self) -> None:
        self._entries: deque[tuple[Entry, int]] = deque()
        self._bytes = 0  # of items whose content a pool thread reads

    def add(self, entry: Entry) -> None:
        pooled = isinstance(entry, tuple) and not isinstance(entry[1], Stored)
        weight = entry[0].size if isinstance(entry, tuple) and pooled else 0
        self._entries.append((entry, weight))
        self._bytes += weight

    def due(self) -> Iterator[Entry]:
        """The entries to record now, oldest first."""
        while self._entries and (len(self._entries) >= IN_FLIGHT or self._bytes > IN_FLIGHT_BYTES):
            yield self._take()

    def rest(self) -> Iterator[Entry]:
        while self._entries:
            yield self._take()

    def _take(self) -> Entry:
        entry, weight = self._entries.popleft()
        self._bytes -= weight
        return entry


@dataclass(frozen=True)
class Stored:
    """An item ready for the snapshot: ``new_bytes`` it added to the repository, whether its
    file ``changed`` while it was read, and its ``record`` (JSON): made by the thread that read
    it, or the previous point's when it holds the very same item."""

    item: Item
    new_bytes: int = 0
    changed: bool = False
    record: bytes | None = None


def source_text(item: SourceItem) -> str:
    """How a warning names an item: where it lives, for people."""
    if item.kind == "mail":
        name = item.meta.get("file_name") or (
            f"'{item.meta.get('subject', '')}'"
            if item.meta.get("source") == "graph"
            else f"UID {item.meta.get('uid', '')}"
        )
        return f"message {name} in {item.path}"
    if item.kind == "folder":
        return f"folder {item.path}"
    return f"OneDrive/{item.path}"


def _why(error: BaseException) -> str:
    if isinstance(error, KeepstoneError):
        return error.message
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return display(str(error))


def _changed_while_read(stream: Content | Watched, size: int) -> bool:
    """Whether a ``Watched`` stream's source changed while ``size`` bytes were read (always
    False for another stream). Asked of the attribute: ``isinstance`` with a runtime-checkable
    protocol walks the protocol's members, about 5 us an item."""
    changed = getattr(stream, "changed", None)
    if changed is None:
        return False
    try:
        return bool(changed(size))
    except OSError as error:
        raise UnreadableItem(_why(error)) from error


class TimedReader(io.RawIOBase):
    """A stream that counts the time spent reading the source (the bottleneck statistic); an
    error of the source while reading is the item's, not the run's (``UnreadableItem``). It
    keeps a copy of the first ``head_bytes`` read (``head``): an item's metadata from its
    content comes from the read that stores it."""

    def __init__(self, stream: Content, head_bytes: int = 0) -> None:
        self.stream = stream
        self.seconds = 0.0
        self._head: list[bytes] = []
        self._head_wanted = head_bytes

    def head(self) -> bytes:
        return b"".join(self._head)

    def _keep(self, data: bytes | memoryview) -> None:
        taken = data[: self._head_wanted]
        self._head.append(bytes(taken))
        self._head_wanted -= len(taken)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        started = time.perf_counter()
        try:
            data = self.stream.read(size)
        except OSError as error:
            raise UnreadableItem(_why(error)) from error
        self.seconds += time.perf_counter() - started
        if self._head_wanted > 0:
            self._keep(data)
        return data

    def readinto(self, buffer: Any) -> int:
        started = time.perf_counter()
        try:
            count = int(self.stream.readinto(buffer) or 0)  # type: ignore[attr-defined]
        except OSError as error:
            raise UnreadableItem(_why(error)) from error
        self.seconds += time.perf_counter() - started
        if self._head_wanted > 0 and count:
            self._keep(memoryview(buffer)[:count])
        return count


def _parts(chosen: Parts, user: SourceUser) -> list[Part]:
    parts: list[Part] = []
    if chosen.mailbox and user.has_mailbox:
        parts.append("mailbox")
    if chosen.archive and getattr(user, "has_archive", False):
        parts.append("archive")  # only an Office365 user has an In-Place Archive
    if chosen.onedrive and user.has_onedrive:
        parts.append("onedrive")
    return parts


def _carried(before: Item, key: str, item: SourceItem) -> Item:
    """``before``'s content under ``key``, with the item's current path, times, mode and
    metadata (built directly: ``dataclasses.replace`` was a tenth of an incremental)."""
    return Item(
        key, item.user, before.kind, item.path, before.size, item.mtime, item.mode, _meta(item),
        before.chunks,
    )  # fmt: skip


def _meta(item: SourceItem, from_content: Mapping[str, Any] | None = None) -> dict[str, object]:
    if from_content is None:
        return {**item.meta, "change_token": item.change_token}
    return {**item.meta, **from_content, "change_token": item.change_token}
