"""``locks/`` objects: shared for writers and verify, exclusive for prune and rebuild_index."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from blake3 import blake3

from keepstone.engine import wire
from keepstone.engine.codec import Codec
from keepstone.engine.errors import (
    ObjectNotFound,
    RepositoryCorrupt,
    RepositoryLocked,
    UnsupportedFormat,
)
from keepstone.engine.options import Options
from keepstone.engine.store import ObjectStore

log = structlog.get_logger(__name__)

LOCK_PREFIX = "locks/"


@dataclass(frozen=True)
class LockInfo:
    name: str
    exclusive: bool
    hostname: str
    pid: int
    time: datetime

    def describe(self) -> str:
        kind = "an exclusive" if self.exclusive else "a shared"
        return (
            f"{kind} lock of pid {self.pid} on {self.hostname} (at {wire.format_time(self.time)})"
        )


class Lock:
    """One lock object of this process, refreshed by a thread until released."""

    def __init__(self, store: ObjectStore, codec: Codec, options: Options, exclusive: bool) -> None:
        self._store = store
        self._codec = codec
        self._options = options
        self.exclusive = exclusive
        self._mutex = threading.Lock()
        self._name: str | None = None
        self._refreshed = time.monotonic()
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def acquire(
        cls, store: ObjectStore, codec: Codec, options: Options, *, exclusive: bool
    ) -> Lock:
        """Put this lock, then look at the others: of two racing lockers, one sees the other."""
        lock = cls(store, codec, options, exclusive)
        lock._name = lock._write()
        try:
            lock._check_others()
        except BaseException:
            lock.release()
            raise
        lock._thread = threading.Thread(target=lock._refresh_loop, daemon=True, name="ks-lock")
        lock._thread.start()
        return lock

    def check(self) -> None:
        """Raise if a prune could have run since this lock was taken."""
        with self._mutex:
            if self._lost is None and time.monotonic() - self._refreshed > self._options.lock_stale:
                self._lost = "it could not be refreshed for too long"
            if self._lost is None and self._name and not self._store.exists(self._name):
                self._lost = "another process deleted it as stale"
            if self._lost is not None:
                raise RepositoryLocked(f"this run lost its repository lock: {self._lost}")

    def refresh(self) -> None:
        with self._mutex:
            old, self._name = self._name, self._write()
            self._refreshed = time.monotonic()
            if old is None:
                return
            try:
                self._store.delete(old)
            except ObjectNotFound:
                self._lost = "another process deleted it as stale"

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        with self._mutex:
            name, self._name = self._name, None
        if name is not None:
            with contextlib.suppress(ObjectNotFound):
                self._store.delete(name)

    def _write(self) -> str:
        document = {
            "version": wire.FORMAT_VERSION,
            "exclusive": self.exclusive,
            "hostname": self._options.hostname,
            "pid": self._options.current_pid(),
            "time": wire.format_time(self._options.clock.now()),
            "nonce": self._options.random_bytes(16).hex(),
        }
        data = self._codec.encode(wire.dumps(document))
        name = LOCK_PREFIX + blake3(data).hexdigest()
        self._store.put(name, data)
        return name

    def _check_others(self) -> None:
        for info in read_locks(self._store, self._codec, skip=self._name):
            if isinstance(info, str):
                if self.exclusive:
                    raise RepositoryLocked(f"lock {info} is unreadable; delete it if no one runs")
                continue
            stale = is_stale(info, self._options)
            if self.exclusive and stale:
                log.info("engine.stale_lock_removed", lock=info.describe())
                with contextlib.suppress(ObjectNotFound):
                    self._store.delete(info.name)
            elif not stale and (self.exclusive or info.exclusive):
                raise RepositoryLocked(f"the repository is in use: {info.describe()}")

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._options.lock_refresh):
            try:
                self.refresh()
            except Exception as e:  # the writer finds out at commit, through check()
                log.warning("engine.lock_refresh_failed", error=str(e))


def read_locks(store: ObjectStore, codec: Codec, skip: str | None = None) -> list[LockInfo | str]:
    """Every lock but ``skip``; a lock that cannot be read is given by its name."""
    found: list[LockInfo | str] = []
    for name in store.list(LOCK_PREFIX):
        if name == skip:
            continue
        try:
            found.append(_parse(name, codec.decode(store.get(name), name)))
        except ObjectNotFound:
            continue
        except (RepositoryCorrupt, UnsupportedFormat, ValueError, TypeError) as e:
            log.warning("engine.lock_unreadable", name=name, error=str(e))
            found.append(name)
    return found


def is_stale(info: LockInfo, options: Options) -> bool:
    if options.clock.now() - info.time > timedelta(seconds=options.lock_stale):
        return True
    return info.hostname == options.hostname and not _pid_alive(info.pid)


def _parse(name: str, data: bytes) -> LockInfo:
    document = wire.load_object(data, name)
    return LockInfo(
        name=name,
        exclusive=bool(document.get("exclusive")),
        hostname=str(document.get("hostname")),
        pid=int(document.get("pid", 0)),
        time=wire.parse_time(document.get("time"), name),
    )


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
