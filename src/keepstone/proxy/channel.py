"""The channel between a run and the control plane: everything a proxy asks of the catalog.

A proxy claims a run, fetches its work package (what the run needs that lives in the catalog
or the vault: where its repositories are and their passwords, how to reach the organization),
renews its lease with progress, logs, starts and finishes users' task sessions, records the
restore point and ends the attempt — all through a ``RunChannel`` and nothing else, so a run
never touches ``ctx.db``. ``CatalogChannel`` makes today's calls in-process (the built-in
proxy); ``ServerChannel`` (``proxy/remote.py``) makes the same ones over HTTP to
``/_proxy/v1`` (a remote ``keepstone proxy``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from keepstone import __version__
from keepstone.clock import Clock
from keepstone.domain.jobs import SessionStatus
from keepstone.engine import Repository
from keepstone.engine.store import LocalStore, ObjectStore
from keepstone.proxy import load
from keepstone.services import catalog, restore_points, runs, task_sessions, vault
from keepstone.services.context import Context
from keepstone.services.task_sessions import UserTally
from keepstone.store.tables import Organization

if TYPE_CHECKING:  # the S3, Graph and IMAP clients load for the runs that use them
    from keepstone.engine.s3location import S3Location
    from keepstone.sources.graph.access import GraphAccess, GraphUser
    from keepstone.sources.imap.model import ImapAccess


@dataclass(frozen=True)
class RepositoryPlace:
    """Where one repository lives and how to open it: its directory, or its bucket folder with
    the account's credentials, and its password. Secrets stay out of every repr."""

    repository_id: str
    path: str
    s3: S3Location | None = None
    password: str | None = field(default=None, repr=False)

    def open(self) -> Repository:
        return vault.open_store(self.store(), self.path, self.password)

    def store(self) -> ObjectStore:
        if self.s3 is not None:
            from keepstone.engine.s3store import S3Store
            from keepstone.services.object_storage import TUNING  # tests shrink its delays

            return S3Store(self.s3, TUNING())
        local = LocalStore(Path(self.path))
        local.make_private()
        return local


@dataclass(frozen=True)
class GraphWork:
    """An Office365 run's way in: the application's access, the cached users, vendor ids."""

    access: GraphAccess
    users: list[GraphUser]
    vendor_ids: dict[str, str]


@dataclass(frozen=True)
class WorkPackage:
    """What a claimed run needs from the control plane, fetched once per attempt."""

    repositories: dict[str, RepositoryPlace]
    imap: ImapAccess | None = None
    graph: GraphWork | None = None
    unavailable: str = ""  # why this proxy cannot reach the organization ("" = it can)

    def open_repository(self, repository_id: str) -> Repository:
        return self.repositories[repository_id].open()


class RunChannel(Protocol):
    """What a proxy's worker and a run's executor may ask of the control plane."""

    proxy_id: str
    clock: Clock

    def start(self) -> int:
        """The proxy starts: runs it held before it stopped are handed back; how many."""
        ...

    def heartbeat(self, active_runs: int) -> int:
        """The proxy is alive (its load, version, runs now); returns its threads' number."""
        ...

    def claim(self) -> runs.ClaimedRun | None: ...

    def work(self, run: runs.ClaimedRun) -> WorkPackage: ...

    def renew(
        self, run: runs.ClaimedRun, statistics: runs.Statistics, progress: int
    ) -> runs.RunState: ...

    def log(
        self,
        run: runs.ClaimedRun,
        status: SessionStatus,
        message: str,
        subject: tuple[str, str] | None,
    ) -> None: ...

    def start_task(self, run: runs.ClaimedRun, subject: tuple[str, str]) -> str: ...

    def finish_task(
        self,
        run: runs.ClaimedRun,
        task_id: str,
        status: SessionStatus,
        tally: UserTally,
        reason: str,
        outcome: str = "",
    ) -> None:
        """The task ends; ``outcome`` (unless empty) is the success log item about its user,
        written in the same transaction."""
        ...

    def record(
        self, run: runs.ClaimedRun, repository_id: str, facts: restore_points.SnapshotFacts
    ) -> None: ...

    def end(
        self,
        run: runs.ClaimedRun,
        status: SessionStatus,
        message: str,
        statistics: runs.Statistics,
        progress: int,
        *,
        retryable: bool,
    ) -> None: ...


class CatalogChannel:
    """The built-in proxy's channel: the calls it always made, on this server's catalog."""

    def __init__(self, ctx: Context, proxy_id: str) -> None:
        self.ctx = ctx
        self.proxy_id = proxy_id
        self.clock = ctx.clock

    def start(self) -> int:
        return runs.abandon_runs_of(self.ctx, self.proxy_id)

    def heartbeat(self, active_runs: int) -> int:
        load.HOST.sample()  # the host's CPU use since the last heartbeat
        proxy = catalog.heartbeat(
            self.ctx,
            self.proxy_id,
            load=load.HOST.current(),
            version=__version__,
            active_runs=active_runs,
        )
        return proxy.threads_number

    def claim(self) -> runs.ClaimedRun | None:
        return runs.claim_next(self.ctx, self.proxy_id)

    def work(self, run: runs.ClaimedRun) -> WorkPackage:
        return work_package(self.ctx, run)

    def renew(
        self, run: runs.ClaimedRun, statistics: runs.Statistics, progress: int
    ) -> runs.RunState:
        return runs.renew_lease(self.ctx, run, self.proxy_id, statistics, progress)

    def log(
        self,
        run: runs.ClaimedRun,
        status: SessionStatus,
        message: str,
        subject: tuple[str, str] | None,
    ) -> None:
        runs.add_log(self.ctx, run.session_id, status, message, subject)

    def start_task(self, run: runs.ClaimedRun, subject: tuple[str, str]) -> str:
        return task_sessions.start(self.ctx, run.session_id, subject)

    def finish_task(
        self,
        run: runs.ClaimedRun,
        task_id: str,
        status: SessionStatus,
        tally: UserTally,
        reason: str,
        outcome: str = "",
    ) -> None:
        runs.finish_task(self.ctx, task_id, status, tally, reason=reason, outcome=outcome)

    def record(
        self, run: runs.ClaimedRun, repository_id: str, facts: restore_points.SnapshotFacts
    ) -> None:
        restore_points.record(self.ctx, repository_id, facts)

    def end(
        self,
        run: runs.ClaimedRun,
        status: SessionStatus,
        message: str,
        statistics: runs.Statistics,
        progress: int,
        *,
        retryable: bool,
    ) -> None:
        runs.end_attempt(
            self.ctx,
            run,
            self.proxy_id,
            status,
            message,
            statistics,
            progress,
            retryable=retryable,
        )


def work_package(ctx: Context, run: runs.ClaimedRun) -> WorkPackage:
    """The built-in proxy's work package: the run's repositories and the organization's
    access (IMAP's and Graph's token sources live in this process)."""
    package = repositories_of(ctx, run.scope, run.copy)
    if run.organization.type in ("Imap", "Office365") and run.copy is None:
        return with_source_access(ctx, run.organization, package.repositories)
    return package


def repositories_of(ctx: Context, scope: runs.JobScope, copy: runs.CopyScope | None) -> WorkPackage:
    """The repositories a run writes (the scope's) and reads (a copy's source), with their
    stores and passwords."""
    places = {scope.repository_id: place_of(ctx, scope.repository_id, scope.repository_path)}
    if copy is not None:
        source = copy.source_repository_id
        places[source] = place_of(ctx, source, copy.source_repository_path)
    return WorkPackage(places)


def with_source_access(
    ctx: Context, organization: Organization, places: dict[str, RepositoryPlace]
) -> WorkPackage:
    # Imported here: the IMAP and Graph settings load only for their runs.
    if organization.type == "Imap":
        from keepstone.services import imap_settings

        return WorkPackage(places, imap=imap_settings.access_of(ctx, organization))
    from keepstone.services import m365_directory, m365_settings

    graph = GraphWork(
        m365_settings.access_of(ctx, organization),
        m365_settings.graph_users(ctx, organization),
        m365_directory.vendor_user_ids(ctx, organization.id),
    )
    return WorkPackage(places, graph=graph)


def place_of(ctx: Context, repository_id: str, path: str) -> RepositoryPlace:
    """Where a repository lives, with what opens it (read from the catalog and the vault)."""
    password = vault.password_of(ctx, repository_id)
    if not catalog.in_object_storage(ctx, repository_id):
        return RepositoryPlace(repository_id, path, None, password)
    from keepstone.services import object_storage  # it reads its secrets through the vault

    storage = object_storage.storage_of_repository(ctx, repository_id)
    location = None if storage is None else object_storage.location_of(ctx, storage)
    return RepositoryPlace(repository_id, path, location, password)
