"""A job run's real work: read the organization in scope and write one restore point.

Unchanged items (same change token as in the job's previous restore point, their chunks still in
the repository) are carried over without being read. Files are chunked, hashed, compressed and
stored by a small thread pool (the engine releases the GIL in its hot loops).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from keepstone.domain.jobs import SessionStatus
from keepstone.domain.scope import Parts, ScopeUser, resolve_scope, stable_user_id
from keepstone.domain.units import human_bytes
from keepstone.engine import BackupWriter, Item, Repository, SnapshotInfo
from keepstone.proxy.executor import Outcome, RunContext, no_connector
from keepstone.services import restore_points, vault
from keepstone.sources.local import LocalOrganization, SourceItem

WORKERS = 2
IN_FLIGHT = 16  # items read ahead of the one being recorded: bounds memory


def run_backup(run: RunContext) -> Outcome:
    """The executor of every job run: the organization's type picks the connector."""
    if run.run.organization.type != "Local":
        return no_connector(run)
    return LocalBackup(run).execute()


@dataclass
class Counts:
    messages: int = 0
    files: int = 0
    unchanged: int = 0
    bytes_read: int = 0
    bytes_new: int = 0

    def describe(self) -> str:
        return (
            f"{self.messages} messages, {self.files} files ({self.unchanged} unchanged), "
            f"{human_bytes(self.bytes_read)} read, {human_bytes(self.bytes_new)} new"
        )


class LocalBackup:
    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.claim = run.run
        self.source = LocalOrganization(Path(self.claim.organization.settings["path"]))
        self.total = Counts()
        self.source_seconds = self.target_seconds = 0.0
        self._lock = threading.Lock()

    def execute(self) -> Outcome:
        repo = vault.open_repository(
            self.run.ctx, self.claim.scope.repository_id, self.claim.scope.repository_path
        )
        users = self.source.users()
        org_id = self.claim.organization.id
        scope = resolve_scope(
            self.claim.scope.backup_type,
            self.claim.scope.selected_items,
            self.claim.scope.excluded_items,
            [ScopeUser(u.name, stable_user_id(org_id, u.name)) for u in users],
        )
        parent = self._parent(repo)
        previous = {item.key: item for item in repo.items(parent)} if parent else {}
        writer = repo.writer(self._tags(), parent=parent)
        warnings = 0
        try:
            for user in users:
                parts = scope.get(user.name)
                if parts is None:
                    continue
                self.run.check()
                parts = Parts(
                    parts.mailbox and user.has_mailbox, parts.onedrive and user.has_onedrive
                )
                try:
                    counts = self._backup_user(writer, user.name, parts, previous)
                except OSError as error:
                    warnings += 1
                    self.run.log(
                        SessionStatus.WARNING,
                        f"User {user.name}: cannot be read: {error}",
                        (stable_user_id(org_id, user.name), user.name),
                    )
                    continue
                self.run.log(
                    SessionStatus.SUCCESS,
                    f"User {user.name}: {counts.describe()}",
                    (stable_user_id(org_id, user.name), user.name),
                )
            snapshot_id = writer.commit(self.run.ctx.clock.now())
        except BaseException:
            writer.abort()  # keeps the finished chunks: the next run does not upload them again
            raise
        self._record(repo, snapshot_id)
        status = SessionStatus.WARNING if warnings else SessionStatus.SUCCESS
        return Outcome(
            status,
            f"Backup finished: {len(scope)} users, {self.total.describe()}"
            + (f"; {warnings} users could not be read" if warnings else ""),
        )

    def _backup_user(
        self, writer: BackupWriter, user: str, parts: Parts, previous: dict[str, Item]
    ) -> Counts:
        counts = Counts()
        sources: list[Iterator[SourceItem]] = []
        if parts.mailbox:
            sources.append(self.source.mailbox_items(user))
        if parts.onedrive:
            sources.append(self.source.onedrive_items(user))
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="keepstone-backup") as pool:
            pending: list[tuple[SourceItem, Future[Item] | Item]] = []
            try:
                for source in sources:
                    for item in source:
                        planned = self._plan(pool, writer, item, previous.get(item.key))
                        pending.append((item, planned))
                        if len(pending) >= IN_FLIGHT:
                            self._record_item(writer, *pending.pop(0), counts)
                for entry in pending:
                    self._record_item(writer, *entry, counts)
            except BaseException:
                # A stopped run must end now: the items read ahead are not stored.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return counts

    def _plan(
        self, pool: ThreadPoolExecutor, writer: BackupWriter, item: SourceItem, before: Item | None
    ) -> Future[Item] | Item:
        """An unchanged item is carried over as is; anything else is read and stored."""
        if (
            before is not None
            and before.meta.get("change_token") == item.change_token
            and writer.known(before.chunks)
        ):
            return replace(
                before, path=item.path, mtime=item.mtime, mode=item.mode, meta=_meta(item)
            )
        return pool.submit(self._store, writer, item)

    def _store(self, writer: BackupWriter, item: SourceItem) -> Item:
        started = time.perf_counter()
        with item.open() as stream:
            timed = TimedReader(stream)
            chunks, size, new = writer.add_file(timed)
        with self._lock:  # statistics only; the pool's threads add to them
            self.source_seconds += timed.seconds
            self.target_seconds += time.perf_counter() - started - timed.seconds
        return Item(
            key=item.key,
            user=item.user,
            kind=item.kind,
            path=item.path,
            size=size,
            mtime=item.mtime,
            mode=item.mode,
            meta=_meta(item) | {"new_bytes": new},
            chunks=chunks,
        )

    def _record_item(
        self, writer: BackupWriter, source: SourceItem, planned: Future[Item] | Item, counts: Counts
    ) -> None:
        self.run.check()
        stored = planned.result() if isinstance(planned, Future) else planned
        fresh = isinstance(planned, Future)
        new_bytes = int(stored.meta.pop("new_bytes", 0)) if fresh else 0
        writer.add_item(stored)
        for tally in (counts, self.total):
            tally.messages += source.kind == "mail"
            tally.files += source.kind == "file"
            tally.unchanged += not fresh
            tally.bytes_read += stored.size if fresh else 0
            tally.bytes_new += new_bytes
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
        kinds = {
            kind
            for kind, count in (("mail", self.total.messages), ("file", self.total.files))
            if count
        }
        restore_points.record(
            self.run.ctx, self.claim.scope.repository_id, facts_of(repo, info, kinds)
        )


def facts_of(
    repo: Repository, info: SnapshotInfo, kinds: set[str] | None = None
) -> restore_points.SnapshotFacts:
    """What the catalog keeps of a snapshot; ``kinds`` of its items are read when not given."""
    if kinds is None:
        kinds = {item.kind for item in repo.items(info.id)}
    return restore_points.SnapshotFacts(
        snapshot_id=info.id,
        time=info.time,
        tags=dict(info.tags),
        item_count=info.item_count,
        size=info.size,
        has_mail="mail" in kinds,
        has_files="file" in kinds,
    )


class TimedReader(io.RawIOBase):
    """A stream that counts the time spent reading the source: the bottleneck statistic."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.seconds = 0.0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        started = time.perf_counter()
        data = self.stream.read(size)
        self.seconds += time.perf_counter() - started
        return data

    def readinto(self, buffer: Any) -> int:
        started = time.perf_counter()
        count = self.stream.readinto(buffer)  # type: ignore[attr-defined]
        self.seconds += time.perf_counter() - started
        return int(count or 0)


def _meta(item: SourceItem) -> dict[str, object]:
    return {**item.meta, "change_token": item.change_token}
