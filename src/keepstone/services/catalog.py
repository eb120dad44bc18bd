"""Organizations, proxies and repositories: the things jobs refer to."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import Session

from keepstone.domain.errors import Conflict, InvalidInput, NotFound
from keepstone.domain.jobs import check_description, check_name
from keepstone.domain.paths import first_overlap
from keepstone.domain.retention import RetentionPolicy
from keepstone.proxy.load import Load

# The organization types' own services (IMAP, Microsoft 365) are imported where they are used:
# a process that only runs Local jobs (a proxy, a benchmark) does without their clients (about
# 20 MB: msal, requests, httpx, the IMAP and Graph modules).
from keepstone.services import access, proxies, vault
from keepstone.services.auth import Principal
from keepstone.services.context import Context, new_id
from keepstone.services.proxies import PROXY_PORT, PROXY_THREADS
from keepstone.sources.local import LocalOrganization, LocalUser
from keepstone.store.codecs import retention_from_record, retention_to_record
from keepstone.store.paging import page_of
from keepstone.store.tables import (
    CopyJob,
    Job,
    ObjectStorage,
    Organization,
    Proxy,
    Repository,
    RestorePoint,
)

if TYPE_CHECKING:
    from keepstone.proxy.load import Load

T = TypeVar("T")

SUPPORTED_ORGANIZATION_TYPES = ("Local", "Imap", "Office365")
ORGANIZATION_PATH = "localSettings.path"
REPOSITORY_PATH = "path"

# ---- organizations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrganizationEdit:
    name: str | None = None
    description: str | None = None
    type: str | None = None
    local_path: str | None = None
    imap_settings: Any = None  # the body's imapSettings as sent (services.imap_settings parses it)
    # An Office365 organization's properties as sent (exchangeOnlineSettings, isExchangeOnline,
    # region, ...; services.m365_settings parses them); None when none was sent.
    office365: dict[str, Any] | None = None


def create_organization(ctx: Context, spec: OrganizationEdit) -> Organization:
    from keepstone.services import imap_settings, m365_settings

    if spec.type is None:
        raise InvalidInput("type is required", "type")
    if spec.type not in SUPPORTED_ORGANIZATION_TYPES:
        raise InvalidInput(
            f"organization type '{spec.type}' is not supported yet; supported types: "
            + ", ".join(SUPPORTED_ORGANIZATION_TYPES),
            "type",
        )
    _refuse_other_settings(spec.type, spec)
    if spec.type == imap_settings.IMAP_TYPE:
        return _create_imap_organization(ctx, spec)
    if spec.type == m365_settings.OFFICE365_TYPE:
        return _create_office365_organization(ctx, spec)
    if spec.local_path is None:
        raise InvalidInput(
            "localSettings.path is required for a Local organization", "localSettings.path"
        )
    name = check_name(spec.name or "")
    org = Organization(
        id=new_id(),
        name=name,
        type=spec.type,
        description=check_description(spec.description or ""),
        settings={"path": _existing_directory(spec.local_path)},
        created_at=ctx.clock.now(),
    )
    with ctx.db.write() as s:
        _ensure_unique(s, Organization, name, None)
        _refuse_overlap(s, ctx, org.settings["path"], ORGANIZATION_PATH)
        s.add(org)
    return org


def _create_imap_organization(ctx: Context, spec: OrganizationEdit) -> Organization:
    """Parsed, checked (every login tried) and only then stored: the row and its secrets
    together, or neither."""
    from keepstone.services import imap_logins, imap_settings

    if spec.imap_settings is None:
        raise InvalidInput("is required for an Imap organization", imap_settings.PREFIX)
    name = check_name(spec.name or "")
    description = check_description(spec.description or "")
    configured = imap_settings.parse(spec.imap_settings)
    with ctx.db.read() as s:
        _ensure_unique(s, Organization, name, None)  # before minutes of logins, not after
    imap_logins.check_logins(configured, [u.name for u in configured.settings.users])
    org = Organization(
        id=new_id(),
        name=name,
        type=imap_settings.IMAP_TYPE,
        description=description,
        settings=imap_settings.to_record(configured.settings),
        created_at=ctx.clock.now(),
    )
    secret = imap_settings.secrets_name(org.id)
    try:
        with ctx.db.write() as s:
            _ensure_unique(s, Organization, name, None)
            s.add(org)
            s.flush()
            vault.keep_secret(
                ctx,
                secret,
                imap_settings.encode_secrets(configured.secrets),
                imap_settings.PREFIX,
                session=s,
            )
    except BaseException:
        vault.forget_secret(ctx, secret)
        raise
    return org


def _create_office365_organization(ctx: Context, spec: OrganizationEdit) -> Organization:
    """Parsed, checked against the tenant (a token, then ``GET /organization``) and only then
    stored with its secret; the first sync of the organization cache runs before the answer,
    so the organization's users can be listed (and selected by jobs) at once."""
    from keepstone.services import m365_directory, m365_settings

    configured = m365_settings.parse(spec.office365 or {})
    description = check_description(spec.description or "")
    if spec.name is not None:
        check_name(spec.name)
    configured = m365_settings.checked(ctx, configured, _office365_where(spec))
    settings = configured.settings
    name = check_name(spec.name or settings.initial_domain or settings.tenant)
    org = Organization(
        id=new_id(),
        name=name,
        type=m365_settings.OFFICE365_TYPE,
        description=description,
        settings=m365_settings.to_record(settings),
        created_at=ctx.clock.now(),
    )
    # Its sync slot is held before the organization is stored: from the moment the scheduler
    # can see it, it sees the create's sync running and starts none beside it.
    with m365_directory.SYNCS.exclusive(org.id):
        _store_with_secret(
            ctx,
            org,
            m365_settings.secrets_name(org.id),
            m365_settings.encode_secrets(configured.secrets),
        )
        access = m365_settings.access_of(ctx, org)
        m365_directory.sync(ctx, org.id, access, sharepoint=settings.is_sharepoint_online)
    return org


def _office365_where(spec: OrganizationEdit) -> str:
    """The settings object a credential refusal names: the one that carried the credential."""
    from keepstone.services import m365_settings

    sent = spec.office365 or {}
    return next(
        (name for name in m365_settings.SERVICES if sent.get(name) is not None),
        m365_settings.EXCHANGE,
    )


def _store_with_secret(ctx: Context, org: Organization, secret: str, data: bytes) -> None:
    """The row and its secret together, or neither."""
    from keepstone.services import m365_settings

    try:
        with ctx.db.write() as s:
            _ensure_unique(s, Organization, org.name, None)
            s.add(org)
            s.flush()
            vault.keep_secret(ctx, secret, data, m365_settings.EXCHANGE, session=s)
    except BaseException:
        vault.forget_secret(ctx, secret)
        raise


def _edit_office365_organization(
    ctx: Context, current: Organization, edit: OrganizationEdit
) -> Organization:
    """The edit merged into what is kept; changed credentials (or another tenant or
    application) are checked first; then the row and the secret replaced together."""
    from keepstone.services import m365_settings

    if edit.type is not None and edit.type != current.type:
        raise InvalidInput("type of an organization cannot be changed", "type")
    if edit.name is not None:
        check_name(edit.name)
    if edit.description is not None:
        check_description(edit.description)
    kept_secrets = m365_settings.kept_secrets(ctx, current)
    before = m365_settings.Configured(
        m365_settings.from_record(current.settings),
        kept_secrets or m365_settings.M365Secrets(),
        credentials_changed=False,
    )
    after = m365_settings.parse(edit.office365 or {}, before)
    after = m365_settings.checked(ctx, after, _office365_where(edit))
    return _replace_with_secret(
        ctx,
        current.id,
        edit,
        m365_settings.to_record(after.settings),
        m365_settings.encode_secrets(after.secrets),
        m365_settings.EXCHANGE,
    )


def _replace_with_secret(
    ctx: Context,
    org_id: str,
    edit: OrganizationEdit,
    record: dict[str, Any],
    secret_data: bytes,
    prop: str,
) -> Organization:
    """The row's settings and its vault secret replaced together (the old secret put back if
    the row cannot be written)."""
    from keepstone.services import imap_settings

    secret = imap_settings.secrets_name(org_id)  # every type's: organization-<id>
    kept = vault.read_secret(ctx, secret)
    try:
        with ctx.db.write() as s:
            org = get_organization_in(s, org_id)
            _edit_common(s, org, edit)
            org.settings = record
            vault.keep_secret(ctx, secret, secret_data, prop, session=s)
    except BaseException:
        if kept is not None:
            vault.keep_secret(ctx, secret, kept, prop)
        raise
    return org


def _refuse_other_settings(kind: str, edit: OrganizationEdit) -> None:
    """Each type has its own settings: the other type's are a mistake, not something to drop."""
    from keepstone.services import imap_settings, m365_settings

    if kind == imap_settings.IMAP_TYPE and edit.local_path is not None:
        raise InvalidInput("is for Local organizations, not Imap ones", "localSettings")
    if kind != imap_settings.IMAP_TYPE and edit.imap_settings is not None:
        raise InvalidInput(f"is for Imap organizations, not {kind} ones", imap_settings.PREFIX)
    if kind == m365_settings.OFFICE365_TYPE and edit.local_path is not None:
        raise InvalidInput("is for Local organizations, not Office365 ones", "localSettings")
    sent = edit.office365 or {}
    for name in m365_settings.SERVICES:
        if kind != m365_settings.OFFICE365_TYPE and sent.get(name) is not None:
            raise InvalidInput(f"is for Office365 organizations, not {kind} ones", name)


def edit_organization(ctx: Context, org_id: str, edit: OrganizationEdit) -> Organization:
    from keepstone.services import m365_settings

    current = get_organization(ctx, org_id)
    _refuse_other_settings(current.type, edit)
    if edit.imap_settings is not None:
        return _edit_imap_organization(ctx, current, edit)
    if current.type == m365_settings.OFFICE365_TYPE:
        return _edit_office365_organization(ctx, current, edit)
    with ctx.db.write() as s:
        org = get_organization_in(s, org_id)
        _edit_common(s, org, edit)
        if edit.local_path is not None:
            path = _existing_directory(edit.local_path)
            _refuse_overlap(s, ctx, path, ORGANIZATION_PATH)
            org.settings = {**org.settings, "path": path}
    return org


def _edit_common(s: Session, org: Organization, edit: OrganizationEdit) -> None:
    if edit.type is not None and edit.type != org.type:
        raise InvalidInput("type of an organization cannot be changed", "type")
    if edit.name is not None:
        org.name = check_name(edit.name)
        _ensure_unique(s, Organization, org.name, org.id)
    if edit.description is not None:
        org.description = check_description(edit.description)


def _edit_imap_organization(
    ctx: Context, current: Organization, edit: OrganizationEdit
) -> Organization:
    """The edited settings, with the logins they change tried first; then the row and the
    secrets replaced together (the old secrets put back if the row cannot be written)."""
    from keepstone.services import imap_logins, imap_settings

    if edit.type is not None and edit.type != current.type:
        raise InvalidInput("type of an organization cannot be changed", "type")
    if edit.name is not None:
        check_name(edit.name)
    if edit.description is not None:
        check_description(edit.description)
    # Secrets the vault lost (a catalog copied without them) are simply not kept: the edit
    # must give them again, which is how such an organization is repaired.
    kept_secrets = imap_settings.kept_secrets(ctx, current) or imap_settings.ImapSecrets()
    before = imap_settings.Configured(imap_settings.from_record(current.settings), kept_secrets)
    after = imap_settings.parse(edit.imap_settings, before)
    imap_logins.check_logins(after, imap_logins.logins_to_check(before, after))
    return _replace_with_secret(
        ctx,
        current.id,
        edit,
        imap_settings.to_record(after.settings),
        imap_settings.encode_secrets(after.secrets),
        imap_settings.PREFIX,
    )


def delete_organization(ctx: Context, org_id: str) -> None:
    from keepstone.services import imap_settings

    with ctx.db.write() as s:
        org = get_organization_in(s, org_id)
        jobs = s.scalar(select(func.count()).select_from(Job).where(Job.organization_id == org.id))
        if jobs:
            raise Conflict(f"organization '{org.name}' still has {jobs} job(s); delete them first")
        s.delete(org)
    vault.forget_secret(ctx, imap_settings.secrets_name(org_id))


def list_organizations(ctx: Context, caller: Principal | None = None) -> list[Organization]:
    """Every organization; a scoped ``caller``'s own only."""
    query = select(Organization).order_by(Organization.name)
    mine = access.organizations_of(caller)
    if mine is not None:
        query = query.where(Organization.id.in_(mine))
    with ctx.db.read() as s:
        return list(s.scalars(query))


def page_organizations(
    ctx: Context, offset: int = 0, limit: int | None = None, caller: Principal | None = None
) -> list[Organization]:
    """Organizations by name, one window of them read from the catalog; a scoped ``caller``'s
    own only."""
    mine = access.organizations_of(caller)

    def scoped(query: Select[Any]) -> Select[Any]:
        return query if mine is None else query.where(Organization.id.in_(mine))

    with ctx.db.read() as s:
        keys = (Organization.name, Organization.id)
        return page_of(s, Organization, scoped, keys, offset=offset, limit=limit)


def organization_names(ctx: Context, ids: set[str]) -> dict[str, str]:
    """The names of the organizations ``ids`` names, in one statement (a listing's column)."""
    with ctx.db.read() as s:
        found = s.execute(
            select(Organization.id, Organization.name).where(Organization.id.in_(ids))
        )
        return {org_id: name for org_id, name in found}


def get_organization(ctx: Context, org_id: str, caller: Principal | None = None) -> Organization:
    """The organization; for a scoped ``caller`` outside its organizations, a 404."""
    access.require_organization(caller, org_id, f"organization '{org_id}'")
    with ctx.db.read() as s:
        return get_organization_in(s, org_id)


def get_organization_in(s: Session, org_id: str) -> Organization:
    return _get(s, Organization, org_id, "organization")


def organization_users(ctx: Context, org_id: str) -> list[LocalUser]:
    """The users found in the organization's source now (an IMAP organization's: the
    configured list, each with a mailbox and no drive; an Office365 organization's: its cache)."""
    from keepstone.services import imap_settings, m365_directory, m365_settings

    org = get_organization(ctx, org_id)
    if org.type == m365_settings.OFFICE365_TYPE:
        return [
            LocalUser(u.name, u.has_mailbox, u.has_onedrive)
            for u in m365_directory.graph_users(ctx, org.id)
        ]
    if org.type == imap_settings.IMAP_TYPE:
        users = imap_settings.from_record(org.settings).users
        return sorted((LocalUser(u.name, True, False) for u in users), key=lambda u: u.name)
    return LocalOrganization(Path(org.settings["path"])).users()


def page_organization_users(
    ctx: Context, org_id: str, offset: int, limit: int, search: str = ""
) -> list[LocalUser]:
    """A window of the organization's users by name (those whose name contains ``search``): an
    Office365 organization's paged in its catalog cache; a Local or IMAP organization's are its
    source's listing (a directory, the configured list), which no catalog query can page."""
    from keepstone.services import m365_directory, m365_settings

    org = get_organization(ctx, org_id)
    if org.type == m365_settings.OFFICE365_TYPE:
        rows = m365_directory.page_cached_users(ctx, org.id, offset, limit, search)
        return [LocalUser(u.name, u.has_mailbox, u.has_onedrive) for u in rows]
    found = [u for u in organization_users(ctx, org_id) if search.lower() in u.name.lower()]
    return found[offset : offset + limit]


def _existing_directory(path: str) -> str:
    if not os.path.isabs(path):
        raise InvalidInput(
            f"localSettings.path must be an absolute path; got '{path}'", "localSettings.path"
        )
    if not os.path.isdir(path):
        raise InvalidInput(
            f"localSettings.path '{path}' is not an existing directory", "localSettings.path"
        )
    return os.path.normpath(path)


# ---- proxies ----------------------------------------------------------------------------------


def ensure_local_proxy(ctx: Context, server_id: str | None = None) -> Proxy:
    """The built-in proxy of server ``server_id``: one per server of the catalog. The first
    server to start adopts the built-in row no server owns yet (what a single server or an
    admin command made); a later server makes its own. Without ``server_id`` (an admin command,
    which runs no proxy): any built-in proxy, made unowned when there is none."""
    with ctx.db.write() as s:
        local = select(Proxy).where(Proxy.is_local.is_(True)).order_by(Proxy.id)
        if server_id is None:
            proxy = s.scalar(local.limit(1))
        else:
            proxy = s.scalar(select(Proxy).where(Proxy.server_id == server_id))
            if proxy is None:
                proxy = s.scalar(local.where(Proxy.server_id.is_(None)).limit(1))
                if proxy is not None:
                    proxy.server_id = server_id
        if proxy is None:
            proxy = Proxy(
                id=new_id(),
                host_name=socket.gethostname(),
                description="Built-in proxy",
                port=PROXY_PORT,
                threads_number=PROXY_THREADS,
                is_local=True,
                heartbeat_at=None,
                server_id=server_id,
            )
            s.add(proxy)
    return proxy


def heartbeat(
    ctx: Context,
    proxy_id: str,
    *,
    load: Load | None = None,
    version: str = "",
    active_runs: int | None = None,
) -> Proxy:
    """A proxy is alive: the time, and what it reports (its host's load, its version, the runs
    it works now) go to its row; returns the row (its ``threads_number`` is how many runs it may
    work at once)."""
    with ctx.db.write() as s:
        proxy = _get(s, Proxy, proxy_id, "proxy")
        proxy.heartbeat_at = ctx.clock.now()
        if load is not None:
            proxy.cpu_percent, proxy.memory_percent = load.cpu_percent, load.memory_percent
        if version:  # a proxy added by POST /Proxies shows none until it reports one
            proxy.version = version
        if active_runs is not None:
            proxy.active_runs = active_runs
    return proxy


@dataclass(frozen=True, slots=True)
class ProxyEdit:
    description: str | None = None
    threads_number: int | None = None


def edit_proxy(ctx: Context, proxy_id: str, edit: ProxyEdit) -> Proxy:
    with ctx.db.write() as s:
        proxy = _get(s, Proxy, proxy_id, "proxy")
        if edit.description is not None:
            proxy.description = check_description(edit.description)
        if edit.threads_number is not None:
            if not 1 <= edit.threads_number <= 512:
                raise InvalidInput("threadsNumber must be between 1 and 512", "threadsNumber")
            proxy.threads_number = edit.threads_number
    return proxy


def list_proxies(ctx: Context) -> list[Proxy]:
    with ctx.db.read() as s:
        return list(s.scalars(select(Proxy).order_by(Proxy.host_name)))


def get_proxy(ctx: Context, proxy_id: str) -> Proxy:
    with ctx.db.read() as s:
        return _get(s, Proxy, proxy_id, "proxy")


# ---- repositories -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepositoryEdit:
    name: str | None = None
    description: str | None = None
    path: str | None = None
    proxy_id: str | None = None
    retention: dict[str, Any] | None = None  # RetentionPolicy field name -> new value
    proxy_pool_id: str | None = None  # v8: the pool that owns the repository


@dataclass(frozen=True, slots=True)
class DiskSpace:
    capacity: int
    free: int


def create_repository(
    ctx: Context, spec: RepositoryEdit, *, inside_data_dir: bool = False
) -> Repository:
    """A new repository; ``inside_data_dir`` only for the server's own default repository."""
    if spec.path is None:
        raise InvalidInput("path is required", "path")
    name = check_name(spec.name or "")
    retention = _edited_retention(RetentionPolicy(), spec.retention)
    with ctx.db.write() as s:
        if spec.proxy_pool_id is not None:
            proxy_id = proxies.pool_proxy_in(s, spec.proxy_pool_id, spec.proxy_id)
        else:
            proxy_id = spec.proxy_id or _local_proxy_id(s)
        _get(s, Proxy, proxy_id, "proxy", prop="proxyId")
        _ensure_unique(s, Repository, name, None)
        _refuse_overlap(s, ctx, spec.path, REPOSITORY_PATH, data_dir=not inside_data_dir)
        path = _repository_directory(spec.path)
        repo = Repository(
            id=new_id(),
            name=name,
            description=check_description(spec.description or ""),
            path=path,
            proxy_id=proxy_id,
            proxy_pool_id=spec.proxy_pool_id,
            retention=retention_to_record(retention),
        )
        s.add(repo)
    return repo


def edit_repository(ctx: Context, repo_id: str, edit: RepositoryEdit) -> Repository:
    with ctx.db.write() as s:
        repo = get_repository_in(s, repo_id)
        if edit.name is not None:
            repo.name = check_name(edit.name)
            _ensure_unique(s, Repository, repo.name, repo.id)
        if edit.description is not None:
            repo.description = check_description(edit.description)
        if edit.path is not None and os.path.normpath(edit.path) != repo.path:
            raise InvalidInput("path of an existing repository cannot be changed", "path")
        pool_id = edit.proxy_pool_id or repo.proxy_pool_id
        if pool_id is not None and (edit.proxy_pool_id or edit.proxy_id) is not None:
            same_pool = pool_id == repo.proxy_pool_id
            wanted = edit.proxy_id or (repo.proxy_id if same_pool else None)
            repo.proxy_id = proxies.pool_proxy_in(s, pool_id, wanted)
            repo.proxy_pool_id = pool_id  # a pool's repository stays the pool's
        elif edit.proxy_id is not None:
            repo.proxy_id = _get(s, Proxy, edit.proxy_id, "proxy", prop="proxyId").id
        if edit.retention:
            current = retention_from_record(repo.retention)
            repo.retention = retention_to_record(_edited_retention(current, edit.retention))
    return repo


def delete_repository(ctx: Context, repo_id: str) -> None:
    with ctx.db.write() as s:
        repo = get_repository_in(s, repo_id)
        names = list(s.scalars(select(Job.name).where(Job.repository_id == repo.id)))
        names += s.scalars(select(CopyJob.name).where(CopyJob.repository_id == repo.id))
        if names:
            raise Conflict(f"repository '{repo.name}' is in use by job(s) {', '.join(names)}")
        s.delete(repo)
    vault.forget_password(ctx, repo_id)


def list_repositories(ctx: Context) -> list[Repository]:
    with ctx.db.read() as s:
        return list(s.scalars(select(Repository).order_by(Repository.name)))


def get_repository(ctx: Context, repo_id: str) -> Repository:
    with ctx.db.read() as s:
        return get_repository_in(s, repo_id)


def in_object_storage(ctx: Context, repo_id: str) -> bool:
    """Whether the repository keeps its objects in an object storage. Asked before loading
    ``object_storage``: its S3 client (botocore) takes about 0.2 s to import, which a run or a
    restore of a repository on disk never needs."""
    with ctx.db.read() as s:
        found = s.scalar(select(ObjectStorage.id).where(ObjectStorage.repository_id == repo_id))
    return found is not None


def get_job_in(s: Session, job_id: str) -> Job:
    return _get(s, Job, job_id, "job")


def get_repository_in(s: Session, repo_id: str, prop: str | None = None) -> Repository:
    return _get(s, Repository, repo_id, "repository", prop=prop)


def ensure_default_repository(ctx: Context, path: Path) -> Repository:
    with ctx.db.read() as s:
        existing = s.scalar(select(Repository).where(Repository.path == str(path)))
    return existing or create_repository(
        ctx, RepositoryEdit(name="Default Backup Repository", path=str(path)), inside_data_dir=True
    )


def disk_space(path: str) -> DiskSpace:
    """Capacity and free space of the file system holding ``path`` (or its nearest ancestor)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return DiskSpace(usage.total, usage.free)


def _edited_retention(current: RetentionPolicy, changes: dict[str, Any] | None) -> RetentionPolicy:
    return replace(current, **changes) if changes else current


def _repository_directory(path: str) -> str:
    if not os.path.isabs(path):
        raise InvalidInput(f"path must be an absolute path; got '{path}'", "path")
    path = os.path.normpath(path)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as error:
        raise InvalidInput(f"path '{path}' cannot be created: {error.strerror}", "path") from None
    if not os.access(path, os.W_OK):
        raise InvalidInput(f"path '{path}' is not writable by the server", "path")
    return path


def _refuse_overlap(
    s: Session, ctx: Context, path: str, prop: str, *, data_dir: bool = True
) -> None:
    """Refuse a new organization or repository ``path`` that is, contains or lies inside the
    data directory (the catalog and the secrets), a repository, or (for a repository) an
    organization: a source must never back up a repository or the server's own secrets, and
    two repositories must never share files. Compared as real paths (links and ``..`` resolved).
    """
    if not os.path.isabs(path):
        return  # the caller refuses it, naming the property
    places = _occupied_places(s, ctx, data_dir=data_dir, organizations=prop == REPOSITORY_PATH)
    clash = first_overlap(os.path.realpath(path), places)
    if clash is not None:
        raise InvalidInput(f"{prop} '{os.path.normpath(path)}' overlaps {clash}", prop)


def _occupied_places(
    s: Session, ctx: Context, *, data_dir: bool, organizations: bool
) -> dict[str, str]:
    """Description -> real path of every place a new path must stay clear of."""
    places: dict[str, str] = {}
    if data_dir and ctx.data_dir is not None:
        places[f"the server's data directory '{ctx.data_dir}'"] = os.path.realpath(ctx.data_dir)
    for repo in s.scalars(select(Repository)):
        places[f"repository '{repo.name}' at '{repo.path}'"] = os.path.realpath(repo.path)
    if organizations:
        for org in s.scalars(select(Organization)):
            where = org.settings.get("path")  # only organizations on a local path occupy one
            if isinstance(where, str):
                places[f"organization '{org.name}' at '{where}'"] = os.path.realpath(where)
    return places


def _local_proxy_id(s: Session) -> str:
    # the same one on every server of the catalog: several servers have one built-in proxy each
    proxy_id = s.scalar(select(Proxy.id).where(Proxy.is_local.is_(True)).order_by(Proxy.id))
    assert proxy_id is not None, "the local proxy is created at start-up"
    return proxy_id


# ---- shared lookups ---------------------------------------------------------------------------


def _get(s: Session, table: type[T], row_id: str, what: str, prop: str | None = None) -> T:
    row = s.get(table, row_id)
    if row is None:
        message = f"{what} '{row_id}' does not exist"
        # A dangling reference inside a body is bad input (400); a missing URL target is 404.
        raise InvalidInput(message, prop) if prop else NotFound(message)
    return row


def _ensure_unique(
    s: Session, table: type[Organization] | type[Repository], name: str, own_id: str | None
) -> None:
    clash = s.scalar(
        select(table.id).where(func.lower(table.name) == name.lower(), _other_than(table, own_id))
    )
    if clash is not None:
        raise InvalidInput(f"the name '{name}' is already taken", "name")


def _other_than(table: type[Organization] | type[Repository], own_id: str | None) -> Any:
    """A filter excluding the row being edited (none on create: ``id != NULL`` is never true)."""
    return table.id != own_id if own_id is not None else true()


def organization_backups(ctx: Context) -> dict[str, tuple[datetime, datetime]]:
    """The first and last backup time of every organization that has restore points."""
    with ctx.db.read() as s:
        rows = s.execute(
            select(
                RestorePoint.organization_id,
                func.min(RestorePoint.backup_time),
                func.max(RestorePoint.backup_time),
            )
            .where(RestorePoint.organization_id.is_not(None))
            .group_by(RestorePoint.organization_id)
        )
        return {str(org): (first, last) for org, first, last in rows}


def installation_id(ctx: Context) -> str:
    """This installation's id: stable for the life of the catalog (derived from its local
    proxy, which is created once, at the first start)."""
    with ctx.db.read() as s:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, f"keepstone:{_local_proxy_id(s)}"))
