"""Leader election among the servers of one catalog, and fencing of the leader's writes.

Several ``keepstone serve`` processes may share one PostgreSQL catalog; some work must be done by
one of them at a time: the ``scheduler`` role (dispatching scheduled backup and copy runs, reaping
runs whose proxy vanished, retention, directory syncs). The role's row in ``leader_leases`` names
its ``holder`` (a server id), an ``epoch`` and when the lease ``expires_at``:

- **Election** is one write transaction, so on PostgreSQL it runs under the writers' advisory lock
  (``store/postgres.py``) and on SQLite under ``BEGIN IMMEDIATE``: two servers never decide at
  once. A server takes the role when the row is absent or expired (``epoch + 1``: a new term),
  and renews it while it holds it, every third of the lease, well inside the lease.
- **A leader that cannot renew in time stops leading at once**: :meth:`Leadership.is_leading`
  is true only before its own term's expiry, whatever the catalog would say later.
- **Fencing**: every transaction the leader's work writes calls :meth:`Leadership.fence` inside
  that same transaction; it re-reads the row and raises :class:`NotLeading` (so the transaction
  writes nothing) unless the row still names this holder and epoch and has not expired. A leader
  frozen (``SIGSTOP``) past its lease and thawed finds the row taken by another server with a
  higher epoch, or expired: its late writes are refused. The check and any election are
  serialised by the writers' lock, so no write slips between a takeover and its check.

A server's id is stable across its restarts (``<data-dir>/server-id``), so a server restarting
finds the row naming itself with an epoch it does not know: that is a dead incarnation's term, and
it takes a new one at once rather than waiting for the lease to run out.

On SQLite (one server) the only server simply always wins the election.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from keepstone.services.context import Context
from keepstone.store.tables import LeaderLease

log = structlog.get_logger(__name__)

SCHEDULER = "scheduler"
LEASE_ENV = "KEEPSTONE_LEADER_LEASE_SECONDS"
DEFAULT_LEASE = timedelta(seconds=15)
RENEWALS_PER_LEASE = 3  # renew every third of the lease: two renewals may fail before it ends

# What a leader's work calls inside each transaction it writes (``Leadership.fence``).
Fence = Callable[[Session], None]


class NotLeading(Exception):
    """A leader's write refused: this server does not (or no longer) hold the role."""


def lease_from_env() -> timedelta:
    """``$KEEPSTONE_LEADER_LEASE_SECONDS`` (a test cluster shortens it), else 15 s."""
    chosen = os.environ.get(LEASE_ENV, "")
    try:
        seconds = float(chosen) if chosen else 0.0
    except ValueError:
        seconds = 0.0
    return timedelta(seconds=seconds) if seconds > 0 else DEFAULT_LEASE


@dataclass(frozen=True, slots=True)
class Term:
    """This server's hold on the role, as it last wrote it."""

    epoch: int
    expires_at: datetime


class Leadership:
    """This server's candidacy for one role: :meth:`campaign` elects or renews, :meth:`fence`
    guards the leader's writes."""

    def __init__(
        self,
        ctx: Context,
        server_id: str,
        *,
        role: str = SCHEDULER,
        lease: timedelta | None = None,
    ) -> None:
        self.ctx = ctx
        self.server_id = server_id
        self.role = role
        self.lease = lease or lease_from_env()
        self._term: Term | None = None
        self._campaigned_at: datetime | None = None
        self._lock = threading.Lock()

    @property
    def term(self) -> Term | None:
        with self._lock:
            return self._term

    @property
    def renew_every(self) -> timedelta:
        return self.lease / RENEWALS_PER_LEASE

    def is_leading(self) -> bool:
        """Whether this server's term runs now (by its own clock: no catalog round trip)."""
        term = self.term
        return term is not None and self.ctx.clock.now() < term.expires_at

    def campaign_due(self) -> bool:
        """Whether :meth:`campaign` should run now: a third of a lease since the last one."""
        last = self._campaigned_at
        return last is None or self.ctx.clock.now() - last >= self.renew_every

    def campaign(self) -> bool:
        """One round: take the role when its row is absent or expired, renew it while ours.
        Returns whether this server leads after the round. A round the catalog refuses (it is
        unreachable, say) changes nothing: the term runs out on its own at its expiry."""
        now = self.ctx.clock.now()
        self._campaigned_at = now
        try:
            with self.ctx.db.write() as s:
                term = self._elect_in(s, now)
        except SQLAlchemyError as error:
            log.warning("leader election failed", role=self.role, error=str(error))
            return self.is_leading()
        with self._lock:
            before, self._term = self._term, term
        if term is not None and (before is None or before.epoch != term.epoch):
            log.info("leading", role=self.role, server=self.server_id, epoch=term.epoch)
        elif term is None and before is not None:
            log.warning("no longer leading", role=self.role, server=self.server_id)
        return self.is_leading()

    def _elect_in(self, s: Session, now: datetime) -> Term | None:
        row = _lease_row(s, self.role)
        expires = now + self.lease
        if row is None:
            s.add(LeaderLease(role=self.role, holder=self.server_id, epoch=1, expires_at=expires))
            return Term(1, expires)
        mine = self.term
        ours = row.holder == self.server_id and mine is not None and row.epoch == mine.epoch
        if ours and row.expires_at > now:
            row.expires_at = expires  # a renewal: the same term goes on
            return Term(row.epoch, expires)
        # Expired, or naming this server in a term it does not know (its previous life's).
        if row.expires_at <= now or (row.holder == self.server_id and not ours):
            row.holder, row.epoch, row.expires_at = self.server_id, row.epoch + 1, expires
            return Term(row.epoch, expires)
        return None  # another server's running term

    def fence(self, s: Session) -> None:
        """Inside a transaction of the leader's work: raise :class:`NotLeading` unless the role's
        row still names this server's term and has not expired (the transaction then writes
        nothing)."""
        term = self.term
        now = self.ctx.clock.now()
        row = _lease_row(s, self.role)
        if (
            term is None
            or row is None
            or row.holder != self.server_id
            or row.epoch != term.epoch
            or row.expires_at <= now
        ):
            raise NotLeading(f"server {self.server_id} does not lead '{self.role}'")

    def resign(self) -> None:
        """At a clean stop: end this server's term now, so another server takes over at its
        next round instead of waiting for the lease to run out."""
        term = self.term
        with self._lock:
            self._term = None
        if term is None:
            return
        try:
            with self.ctx.db.write() as s:
                row = _lease_row(s, self.role)
                if row is not None and row.holder == self.server_id and row.epoch == term.epoch:
                    row.expires_at = self.ctx.clock.now()
        except SQLAlchemyError as error:  # the lease simply runs out
            log.warning("could not resign the lead", role=self.role, error=str(error))

    def step_down(self) -> None:
        """Forget the term at once (a fenced write was refused: another server leads)."""
        with self._lock:
            self._term = None


def _lease_row(s: Session, role: str) -> LeaderLease | None:
    # populate_existing: a fresh read even if this session saw the row earlier
    query = select(LeaderLease).where(LeaderLease.role == role)
    return s.scalar(query.execution_options(populate_existing=True))


def current_leader(ctx: Context, role: str = SCHEDULER) -> LeaderLease | None:
    """The role's row as the catalog holds it now (for views and tests)."""
    with ctx.db.read() as s:
        return _lease_row(s, role)
