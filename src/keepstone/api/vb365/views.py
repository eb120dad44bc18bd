"""Representations of the JSON dialect, one function per resource for every version.

What differs between versions (field names, string vs numeric statistics, which fields exist)
is decided here from the request's :class:`ApiVersion`; handlers never branch on versions.
"""

from __future__ import annotations

import email.utils
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from keepstone import __version__
from keepstone.api.vb365.versions import ApiVersion, LinkBuilder, iso
from keepstone.domain.policy import ScheduleType
from keepstone.domain.scope import stable_user_id
from keepstone.domain.units import human_bytes
from keepstone.services import proxies, restores
from keepstone.services.catalog import disk_space
from keepstone.services.imap_settings import (
    IMAP_TYPE,
    Authentication,
    ImapSecrets,
    ImapSettings,
    from_record,
)
from keepstone.services.licensing import License
from keepstone.services.m365_directory import vendor_id
from keepstone.services.m365_settings import OFFICE365_TYPE, M365Settings
from keepstone.services.m365_settings import from_record as m365_from_record
from keepstone.services.organization_storage import RepositoryShare
from keepstone.services.restores import SessionOrganization
from keepstone.store.codecs import policy_from_record, retention_from_record
from keepstone.store.tables import (
    CopyJob,
    Job,
    JobSession,
    LogItem,
    M365Group,
    M365GroupMember,
    M365Site,
    M365SyncState,
    M365User,
    Organization,
    Proxy,
    ProxyPool,
    RbacItem,
    RbacRole,
    Repository,
    RestoreEvent,
    RestorePoint,
    RestoreSession,
    TaskSession,
)

__all__ = ["LinkBuilder", "iso"]
KEY_NAMESPACE = uuid.UUID("6f1c9a52-58a3-4d7e-9a55-0c6a39f2b3e1")


def _present(body: dict[str, Any], *names: str) -> dict[str, Any]:
    """Drops the named properties when they are None: the spec does not let them be null."""
    return {k: v for k, v in body.items() if not (k in names and v is None)}


def job(row: Job, api: ApiVersion) -> dict[str, Any]:
    link = api.link
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "lastRun": iso(row.last_run),
        "nextRun": iso(row.next_run),
        "isEnabled": row.is_enabled,
        "backupType": row.backup_type,
        "lastStatus": row.last_status or "NotConfigured",
        "schedulePolicy": schedule_policy(row.schedule_policy, api.number),
        "repositoryId": row.repository_id,
    }
    if api.number <= 5:
        body["proxyId"] = row.proxy_id
    if 6 <= api.number <= 7:  # v8 reads the items through the sub-resources only
        body["selectedItems"] = [
            job_item(row.id, i, "selecteditems", api) for i in row.selected_items
        ]
        body["excludedItems"] = [
            job_item(row.id, i, "excludeditems", api) for i in row.excluded_items
        ]
    if api.at_least(7):
        body["lastBackup"] = iso(row.last_backup)
    if api.at_least(8):
        body["organizationId"] = row.organization_id
        body["eTag"] = row.version
    body["_links"] = {
        "self": link("jobs", row.id),
        "organization": link("organizations", row.organization_id),
        "backupRepository": link("backuprepositories", row.repository_id),
        "jobsessions": link("jobs", row.id, "jobsessions"),
        "selectedItems": link("jobs", row.id, "selecteditems"),
        "excludedItems": link("jobs", row.id, "excludeditems"),
    }
    return body


def job_item(job_id: str, record: dict[str, Any], kind: str, api: ApiVersion) -> dict[str, Any]:
    """A selected or excluded item as stored, with its id and link."""
    body = dict(record)
    if "id" in body:
        body["_links"] = {"self": api.link("jobs", job_id, kind, str(body["id"]))}
    return body


def schedule_policy(record: dict[str, Any], version: int = 2) -> dict[str, Any]:
    """``RESTJobSchedulePolicy`` as API ``version`` has it (v6 adds ``scheduleEnabled``, the
    periodic offset and window; v7 whether that window is enabled)."""
    policy = policy_from_record(record)
    body: dict[str, Any] = {
        "type": policy.type.value,
        "dailyType": policy.daily_type.value,
        "dailyTime": policy.daily_time.isoformat(timespec="seconds"),
        "periodicallyEvery": policy.periodically_every.value,
        "backupWindowEnabled": policy.backup_window_enabled,
        "backupWindowSettings": {
            "backupWindow": list(policy.backup_window),
            "minuteOffset": policy.minute_offset,
        },
        "retryEnabled": policy.retry_enabled,
        "retryNumber": policy.retry_number,
        "retryWaitInterval": policy.retry_wait_interval,
    }
    if version >= 6:
        body["scheduleEnabled"] = policy.type is not ScheduleType.MANUAL_ONLY
        body["periodicallyOffsetMinutes"] = policy.periodically_offset
        body["periodicallyWindowSettings"] = {
            "backupWindow": list(policy.periodic_window),
            "minuteOffset": policy.periodic_minute_offset,
        }
    if version >= 7:
        body["periodicallyWindowEnabled"] = policy.periodic_window_enabled
    return body


def organization(
    row: Organization, api: ApiVersion, backups: Any, secrets: ImapSecrets | None = None
) -> dict[str, Any]:
    """``backups``: the organization's first and last backup times, or None if never backed up;
    ``secrets``: an IMAP organization's kept secrets (only whether each is there is shown)."""
    link = api.link
    first, last = backups or (None, None)
    body: dict[str, Any] = {
        # v2 shows Keepstone's own source type; later versions the vendor's enum, in which a
        # directory read on the server's disk, or a mail server the organization runs, is an
        # on-premises organization.
        "type": row.type if api.number == 2 else "OnPremises",
        "id": row.id,
        "name": row.name,
        "description": row.description,
    }
    if row.type == OFFICE365_TYPE:
        return office365_organization(row, api, backups)
    if row.type == IMAP_TYPE:
        body["imapSettings"] = imap_settings_view(from_record(row.settings), secrets)
    else:
        body["localSettings"] = {"path": row.settings.get("path")}
    body["isBackedup"] = backups is not None
    if api.at_least(3):
        body |= {
            "officeName": row.name,
            "region": "Worldwide",
            "isExchangeOnline": False,
            "isSharePointOnline": False,
            "isTeamsOnline": False,
            "isTeamsChatsOnline": False,
            "firstBackuptime": iso(first),
            "lastBackuptime": iso(last),
        }
    body["_links"] = {
        "self": link("organizations", row.id),
        "jobs": link("organizations", row.id, "jobs"),
        "users": link("organizations", row.id, "users"),
    } | _used_repositories_link(row.id, api)
    body["_actions"] = {}
    return body


def _used_repositories_link(organization_id: str, api: ApiVersion) -> dict[str, Any]:
    """Since v3, as the resource it names (v6's spec spells it ``usedRepositories``)."""
    if not api.at_least(3):
        return {}
    return {"usedRepositories": api.link("organizations", organization_id, "usedRepositories")}


def imap_settings_view(settings: ImapSettings, secrets: ImapSecrets | None) -> dict[str, Any]:
    """``imapSettings`` as the body gives it, without a secret: ``hasPassword``,
    ``hasClientSecret`` say whether the vault holds each one."""
    held = secrets or ImapSecrets()
    body: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "security": settings.security.value,
        "verifyCertificate": settings.verify_certificate,
        "allowCleartext": settings.allow_cleartext,
        "authentication": settings.authentication.value,
        "maxConnections": settings.max_connections,
    }
    if settings.ca_certificate:
        body["caCertificate"] = settings.ca_certificate
    if settings.certificate_fingerprint:
        body["certificateFingerprint"] = settings.certificate_fingerprint
    password_users = settings.authentication is Authentication.PASSWORD
    body["users"] = [
        {"name": u.name, "login": u.login}
        | ({"hasPassword": u.name in held.passwords} if password_users else {})
        for u in settings.users
    ]
    if settings.master_user:
        body["masterUser"] = {
            "login": settings.master_user.login,
            "separator": settings.master_user.separator,
            "hasPassword": held.master_password is not None,
        }
    if settings.oauth:
        body["oauth"] = {
            "tokenUrl": settings.oauth.token_url,
            "clientId": settings.oauth.client_id,
            "scope": settings.oauth.scope,
            "hasClientSecret": held.client_secret is not None,
        }
    return body


def organization_user(org_id: str, user: Any, api: ApiVersion) -> dict[str, Any]:
    identifier = stable_user_id(org_id, user.name)
    return {
        "id": identifier,
        "displayName": user.name,
        "name": user.name,
        "type": "User",
        "locationType": "OnPremises",
        "hasMailbox": user.has_mailbox,
        "hasOneDrive": user.has_onedrive,
        "_links": {"self": api.link("organizations", org_id, "users", identifier)},
    }


def audit_item(org_id: str, user_name: str, api: ApiVersion) -> dict[str, Any]:
    """An organization user the audit trail records operations on (an audit item of type User)."""
    identifier = stable_user_id(org_id, user_name)
    user_link = api.link("organizations", org_id, "users", identifier)
    return {
        "id": identifier,
        "type": "User",
        "user": {
            "id": identifier,
            "displayName": user_name,
            "name": user_name,
            "type": "User",
            "locationType": "OnPremises",
            "_links": {"self": user_link},
        },
        "_links": {"user": user_link},
    }


def licensing(licensed: int) -> dict[str, int]:
    return {"licensedUsers": licensed, "newUsers": 0}


def used_repository(share: RepositoryShare, api: ApiVersion) -> dict[str, Any]:
    """One of an organization's used repositories: v3's three properties, v4's space in object
    storage and its cache, v8's ``repositoryId`` and ``protectedObjectsCount``."""
    body: dict[str, Any] = {}
    if api.at_least(8):
        body["repositoryId"] = share.repository_id
    body["usedSpaceBytes"] = share.used_bytes
    if api.at_least(4):
        body |= {
            "localCacheUsedSpaceBytes": share.cached_bytes,
            "objectStorageUsedSpaceBytes": share.used_bytes if share.in_object_storage else 0,
        }
    body |= {"isAvailable": share.available, "details": share.name}
    if api.at_least(8):
        body["protectedObjectsCount"] = None  # the vendor counts them for object storage only
    body["_links"] = {"backupRepository": api.link("backuprepositories", share.repository_id)}
    return body


def licensed_user(user: Any, api: ApiVersion) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "isBackedUp": True,
        "lastBackupDate": iso(user.last_backup),
        "licenseState": "Licensed",
        "organizationId": user.organization_id,
        # the organization as its backups name it: Keepstone's backups carry its own id
        "backedUpOrganizationId": user.organization_id,
        "organizationName": user.organization_name,
        "_links": {
            "self": api.link("licensedusers", user.id),
            "organization": api.link("organizations", user.organization_id),
        },
    }


def proxy(row: Proxy, api: ApiVersion, now: datetime) -> dict[str, Any]:
    """What the proxy last reported of itself (version, load) is read from its row; ``None``
    until it has reported."""
    throttling = "enableNetworkThrottling" if api.at_least(6) else "enableNetworkthrottling"
    body: dict[str, Any] = {
        "id": row.id,
        "hostName": row.host_name,
        "description": row.description,
        "port": row.port,
        throttling: False,
        "throttlingValue": 0,
        "throttlingUnit": "MBs",
        "status": proxies.proxy_status(row, now),
    }
    if api.number <= 7:
        body["threadsNumber"] = row.threads_number
    if api.at_least(6):
        # a Keepstone proxy reaches its sources and buckets directly, never through a proxy
        body |= {"type": proxies.proxy_type(row), "useInternetProxy": False}
    if api.at_least(7):
        body["fqdn"] = row.host_name
    if api.at_least(8):
        body |= _present({"proxyPoolId": row.pool_id}, "proxyPoolId") | {
            "maintenanceModeState": proxies.maintenance_state(row),
            "version": row.version or None,
            "cpuUsagePercent": row.cpu_percent,
            "memoryUsagePercent": row.memory_percent,
            # it runs the jobs' work; scheduling is the server's, not a proxy's
            "role": ["Processor"],
        }
        system = proxies.operating_system(row)
        if system is not None:  # not reported by a remote proxy: left out, not guessed
            body["operatingSystem"] = system
    body["_links"] = {
        "self": api.link("proxies", row.id),
        "repositories": api.link(f"backuprepositories?proxyId={row.id}"),
    }
    if api.at_least(8) and row.pool_id is not None:
        body["_links"]["proxyPool"] = api.link("proxypools", row.pool_id)
    return body


def proxy_pool(row: ProxyPool, api: ApiVersion) -> dict[str, Any]:
    """v8 ``RESTProxyPool``."""
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "_links": {
            "self": api.link("proxypools", row.id),
            "proxies": api.link("proxypools", row.id, "proxies"),
        },
    }


def repository(row: Repository, api: ApiVersion, encrypted: bool = False) -> dict[str, Any]:
    retention = retention_from_record(row.retention)
    space = disk_space(row.path)
    bytes_suffix = "Bytes" if api.at_least(6) else ""
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "path": row.path,
        "proxyId": row.proxy_id,
        "retentionType": retention.retention_type.value,
        "retentionPeriodType": retention.period_type.value,
        "dailyRetentionPeriod": retention.daily_period,
        "monthlyRetentionPeriod": retention.monthly_period,
        "yearlyRetentionPeriod": retention.yearly_period.value,
        "retentionFrequencyType": retention.frequency.value,
        "dailyTime": retention.daily_time.isoformat(timespec="seconds"),
        "dailyType": retention.daily_type.value,
        "isEncrypted": encrypted,
        f"capacity{bytes_suffix}": space.capacity,
        f"freeSpace{bytes_suffix}": space.free,
    }
    if api.at_least(6):
        body |= {
            "isLongTerm": False,
            "encryptionKeyId": encryption_key_id(row.id) if encrypted else None,
        }
    if api.at_least(8):
        body |= _present({"proxyPoolId": row.proxy_pool_id}, "proxyPoolId") | {
            "isOutdated": False,
            "isOutOfSync": False,
            "isIndexed": True,
            "isMigrationLocked": False,
            "isOutOfOrder": False,
        }
    body["_links"] = {
        "self": api.link("backuprepositories", row.id),
        "proxy": api.link("proxies", row.proxy_id),
    }
    if api.at_least(8) and row.proxy_pool_id is not None:
        body["_links"]["proxyPool"] = api.link("proxypools", row.proxy_pool_id)
    return body


def encryption_key_id(repository_id: str) -> str:
    """The key of an encrypted repository: its password, named by an id derived from the repo."""
    return str(uuid.uuid5(KEY_NAMESPACE, repository_id))


def encryption_key(row: Repository, api: ApiVersion) -> dict[str, Any]:
    key_id = encryption_key_id(row.id)
    return {
        "id": key_id,
        "description": f"Password of repository {row.name} (never shown)",
        "_links": {
            "self": api.link("encryptionkeys", key_id),
            "backupRepository": api.link("backuprepositories", row.id),
        },
    }


def job_session(
    row: JobSession, api: ApiVersion, job: Job | None = None, copy: CopyJob | None = None
) -> dict[str, Any]:
    """A session of a backup job, or of ``copy`` (a copy job's run, ``jobType: Copy``)."""
    link = api.link
    body: dict[str, Any] = {
        "id": row.id,
        "creationTime": iso(row.creation_time),
        "endTime": iso(row.end_time),
        "progress": row.progress,
        "status": row.status,
        "retryCount": row.retry_count,
        "details": row.details,
        "statistics": statistics(row.statistics, api),
    }
    if api.at_least(7):
        body |= {
            "mainSessionId": row.id,
            "jobType": "Backup" if copy is None else "Copy",
            "jobWillBeRetried": row.not_before is not None and row.end_time is None,
        }
        owner = copy or job
        if owner is not None:
            body["repositoryId"] = owner.repository_id
    if api.at_least(8):
        body["jobId"] = row.job_id if copy is None else copy.id
        body["eTag"] = etag(row.status, row.progress, row.end_time, row.retry_count, row.details)
    body["_links"] = {
        "self": link("jobsessions", row.id),
        "log": link("jobsessions", row.id, "logitems"),
        "job": link("jobs", row.job_id) if copy is None else link("copyjobs", copy.id),
    }
    return body


def statistics(stats: dict[str, Any], api: ApiVersion) -> dict[str, Any]:
    """v2 writes statistics as human-readable strings (``832.4 KB/s (52 items/s)``); v3 on, as
    whole numbers of bytes and items per second."""
    seconds = float(stats.get("duration_seconds", 0))
    read_bytes, items = int(stats.get("read_bytes", 0)), int(stats.get("read_items", 0))
    written, transferred = (
        int(stats.get("written_bytes", 0)),
        int(stats.get("transferred_bytes", 0)),
    )
    bottleneck = stats.get("bottleneck", "NA")

    def rate(amount: int) -> float:
        return amount / seconds if seconds > 0 else 0.0

    if api.at_least(3):
        return {
            "processingRateBytesPS": round(rate(read_bytes)),
            "processingRateItemsPS": round(rate(items)),
            "readRateBytesPS": round(rate(read_bytes)),
            "writeRateBytesPS": round(rate(written)),
            "transferredDataBytes": transferred,
            "processedObjects": items,
            "bottleneck": bottleneck,
        }
    return {
        "processingRate": f"{human_bytes(rate(read_bytes))}/s ({round(rate(items))} items/s)",
        "readRate": f"{human_bytes(rate(read_bytes))}/s",
        "writeRate": f"{human_bytes(rate(written))}/s",
        "transferredData": human_bytes(transferred),
        "processedObjects": items,
        "bottleneck": bottleneck,
    }


# v8 log items carry a type instead of a "[Status] message" title.
LOG_TYPES = {"Success": "Success", "Warning": "Warning", "Failed": "Error", "Running": "Running"}
LOG_TYPES |= {"Queued": "Running", "Stopped": "Stop"}


def statuses_of_log_type(log_type: str) -> list[str]:
    """The log item statuses shown as ``log_type`` (a filter in the catalog's terms)."""
    return [status for status, shown in LOG_TYPES.items() if shown == log_type]


def log_item(row: LogItem, api: ApiVersion) -> dict[str, Any]:
    body: dict[str, Any] = {"id": row.id, "usn": row.usn}
    if api.at_least(8):
        body |= {"type": LOG_TYPES.get(row.status, "Running"), "message": row.message}
    else:
        body["title"] = f"[{row.status}] {row.message}"
    end = row.end_time if api.number == 2 else row.end_time or row.creation_time
    body |= {
        "creationTime": iso(row.creation_time),
        "endTime": iso(end),
        "_links": {
            "self": api.link("jobsessions", row.session_id, "logitems", row.id),
            "jobSession": api.link("jobsessions", row.session_id),
        },
    }
    return body


def processed_object(row: TaskSession, api: ApiVersion) -> dict[str, Any]:
    """A user a run processed, from its task session (a stopped user did not complete: the
    schema's statuses are Success, Warning and Failed)."""
    return {
        "id": row.object_id,
        "type": "User",
        "status": row.status if row.status in ("Success", "Warning") else "Failed",
        "name": row.name,
        "_links": {"jobSession": api.link("jobsessions", row.session_id)},
    }


def etag(*state: object) -> int:
    """The vendor's ``eTag`` (an int64 "version number assigned if it was modified") of a row
    that keeps no version of its own: a digest of what can change in it, so it changes when
    the row does and stays while it does not."""
    digest = hashlib.blake2b(repr(state).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # a non-negative int64


def restore_point(row: RestorePoint, api: ApiVersion, is_copy: bool = False) -> dict[str, Any]:
    """``is_copy``: a copy job made it (``restore_points.made_by_copies``)."""
    link = api.link
    body: dict[str, Any] = {
        "id": row.id,
        "repositoryId": row.repository_id,
        "jobId": row.job_id,
        "organizationId": row.organization_id,
        "backupTime": iso(row.backup_time),
        "isExchange": row.is_exchange,
        "isSharePoint": False,
        "isOneDrive": row.is_onedrive,
        "isTeams": False,
        "isLongTermCopy": False,
        "isRetrieved": False,
    }
    if api.at_least(7):
        body |= {"isCopy": is_copy, "isDeleted": False}
    if api.at_least(8):
        # a point changes when item-level retention rewrites its snapshot (its id follows)
        changed = etag(row.snapshot_id, row.item_count, row.size)
        body |= {"eTag": changed, "objectsEtag": changed}
    body["_links"] = {
        "self": link("restorepoints", row.id),
        "backupRepository": link("backuprepositories", row.repository_id),
    } | ({"job": link("jobs", row.job_id)} if row.job_id else {})
    return _present(body, "jobId", "organizationId")


def restore_session(row: RestoreSession, api: ApiVersion) -> dict[str, Any]:
    link = api.link
    return {
        "id": row.id,
        "name": f"Restore session {row.creation_time:%Y-%m-%d %H:%M:%S}",
        "organization": row.organization_id,
        "type": row.type,
        "creationTime": iso(row.creation_time),
        "endTime": iso(row.end_time),
        "state": row.state,
        "result": row.result,
        "initiatedBy": row.initiated_by,
        "details": row.details,
        "statistics": row.statistics,
        "_links": {
            "self": link("restoresessions", row.id),
            "organization": link("restoresessions", row.id, "organization"),
            "mailboxes": link("restoresessions", row.id, "organization", "mailboxes"),
            "oneDrives": link("restoresessions", row.id, "organization", "onedrives"),
        },
    }


def restore_session_organization(
    session_id: str, org: SessionOrganization, api: ApiVersion
) -> dict[str, Any]:
    """``RESTBackupOrganization``: the organization a session explores, typed as organizations
    are (v2 Keepstone's own type, later the vendor's enum)."""
    kind = org.type
    if api.number > 2 and org.type:
        kind = "Office365" if org.type == OFFICE365_TYPE else "OnPremises"
    base = ("restoresessions", session_id, "organization")
    return {
        "id": org.id,
        "name": org.name,
        "type": kind or None,
        "_links": {
            "self": api.link(*base),
            "restoreSession": api.link("restoresessions", session_id),
            "mailboxes": api.link(*base, "mailboxes"),
            "oneDrives": api.link(*base, "onedrives"),
        },
    }


def restore_owner(session_id: str, collection: str, owner: Any, api: ApiVersion) -> dict[str, Any]:
    link = api.link
    base = ("restoresessions", session_id, "organization", collection, owner.id)
    children = ("folders", "items") if collection == "mailboxes" else ("folders", "documents")
    return {
        "id": owner.id,
        "name": owner.name,
        "email": f"{owner.name}@local",
        "_links": {"self": link(*base)} | {child: link(*base, child) for child in children},
    }


def restore_folder(
    where: tuple[str, str], owner: Any, newest: dict[str, float], folder: Any, api: ApiVersion
) -> dict[str, Any]:
    """A folder of a mailbox or OneDrive (``where``: the session and ``mailboxes`` or
    ``onedrives``); its times are those of the newest item under it. A mail folder's ``type``
    is the vendor's ``None``, a folder of messages (Keepstone backs up no calendars, contacts
    or tasks); ``_links`` leads to the folder, its parent (a top-level folder has none: how
    clients tell one), its owner and what it holds."""
    session_id, collection = where
    changed = iso(datetime.fromtimestamp(newest.get(folder.path, 0), UTC))
    owner_path = ("restoresessions", session_id, "organization", collection, owner.id)
    body: dict[str, Any] = {
        "id": folder.id,
        "name": folder.name,
        "path": folder.path,
        "parentId": folder.parent_id,
        "mailboxId": owner.id,
        "oneDriveId": owner.id,
        "isFolder": True,
        "createdBy": owner.name,
        "modifiedBy": owner.name,
        "creationTime": changed,
        "modificationTime": changed,
    }
    if collection == "mailboxes":
        body["type"] = "None"
    contents = "items" if collection == "mailboxes" else "documents"
    links = {
        "self": api.link(*owner_path, "folders", folder.id),
        "mailbox" if collection == "mailboxes" else "oneDrive": api.link(*owner_path),
        contents: api.link(*owner_path, f"{contents}?folderId={folder.id}"),
    }
    if folder.parent_id is not None:
        links["parent"] = api.link(*owner_path, "folders", folder.parent_id)
    return body | {"_links": links}


def restore_item(owner: Any, item: Any) -> dict[str, Any]:
    changed = iso(datetime.fromtimestamp(item.mtime, UTC))
    common = {"id": restores.item_id(item.key), "size": item.size, "modificationTime": changed}
    if item.kind == "mail":
        meta = item.meta
        return common | {
            "mailboxId": owner.id,
            "itemClass": "IPM.Note",
            "folder": item.path,
            "subject": meta.get("subject", ""),
            "from": meta.get("from", ""),
            "to": meta.get("to", ""),
            "received": _mail_date(str(meta.get("date", ""))) or changed,
            "flags": meta.get("flags", ""),
        }
    return common | {
        "oneDriveId": owner.id,
        "name": item.path.rsplit("/", 1)[-1],
        "path": item.path,
        "sizeBytes": item.size,
        "isFolder": False,
        "createdBy": owner.name,
        "modifiedBy": owner.name,
        "creationTime": changed,
    }


def _mail_date(header: str) -> str | None:
    """A message's Date header (RFC 5322) as ISO 8601, or None when it is missing or garbled."""
    try:
        return iso(email.utils.parsedate_to_datetime(header))
    except (TypeError, ValueError, IndexError):
        return None


def restore_counts(counts: Any, kind: str) -> dict[str, int]:
    """What a put-back did, under the vendor's names for its kind: Exchange's
    ``RESTItemsRestoreStatistics`` (items created; none merged: Keepstone never merges into an
    existing item) or OneDrive's ``RESTItemRestoreStatistics`` (items skipped because they were
    there unchanged), with Keepstone's own ``restoredItemsCount`` and ``restoredBytes`` in both."""
    body = {
        "restoredItemsCount": counts.restored,
        "skippedItemsCount": counts.skipped,
        "failedItemsCount": counts.failed,
        "restoredBytes": counts.bytes,
    }
    if kind == "mail":
        return body | {"createdItemsCount": counts.restored, "mergedItemsCount": 0}
    return body | {
        "totalItemsCount": counts.restored + counts.skipped + counts.failed,
        "skippedItemsByErrorCount": 0,
        "skippedItemsByNoChangesCount": counts.skipped,
        "failedRestrictionsCount": 0,
    }


def restore_event(session_id: str, event: RestoreEvent, api: ApiVersion) -> dict[str, Any]:
    """One operation of a restore session (a save, a restore), as recorded when it ran."""
    seconds = max(0, int((event.end_time - event.start_time).total_seconds()))
    return {
        "id": event.id,
        "type": event.type,
        "status": event.status,
        "title": f"{event.type} {event.status.lower()}",
        "message": event.message,
        "startTime": iso(event.start_time),
        "endTime": iso(event.end_time),
        "duration": f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}",
        "order": event.seq,
        "itemName": event.item_name,
        "itemType": event.item_type,
        "itemSizeBytes": event.item_size_bytes,
        "source": event.source,
        "target": event.target,
        "_links": {"restoreSession": api.link("restoresessions", session_id)},
    }


def rbac_role(role: RbacRole, api: ApiVersion) -> dict[str, Any]:
    """``RESTRbacRole``, with Keepstone's ``access`` (``Restore`` or ``ReadOnly``)."""
    return {
        "id": role.id,
        "organizationId": role.organization_id,
        "name": role.name,
        "description": role.description,
        "roleType": role.role_type,
        "access": role.access,
        "_links": {
            "self": api.link("rbacroles", role.id),
            "operators": api.link("rbacroles", role.id, "operators"),
            "selectedItems": api.link("rbacroles", role.id, "selectedItems"),
            "excludedItems": api.link("rbacroles", role.id, "excludedItems"),
            "organization": api.link("organizations", role.organization_id),
        },
    }


def rbac_operator(role_id: str, user: Any, api: ApiVersion) -> dict[str, Any]:
    """``RESTRbacUserOperator``: a Keepstone user."""
    return {
        "type": "User",
        "id": user.id,
        "user": {"id": user.id, "displayName": user.name, "name": user.name, "type": "User"},
        "_links": {"self": api.link("rbacroles", role_id, "operators", user.id)},
    }


def rbac_item(item: RbacItem, api: ApiVersion) -> dict[str, Any]:
    """``RESTRbacUserItem``: an organization user in a role's scope."""
    collection = "excludedItems" if item.excluded else "selectedItems"
    return {
        "type": "User",
        "id": item.item_id,
        "user": {
            "id": item.item_id,
            "displayName": item.display_name,
            "name": item.name,
            "type": "User",
        },
        "_links": {"self": api.link("rbacroles", item.role_id, collection, item.item_id)},
    }


def service_instance(installation_id: str) -> dict[str, str]:
    return {"installationId": installation_id, "version": __version__}


def license_body(facts: License, api: ApiVersion) -> dict[str, Any]:
    """The installed licence (``RESTLicense``). Keepstone needs none: it is always valid, for any
    number of users, and never expires (the spec's ``null`` expiration); it is issued to no
    one, so the contact fields are empty. Its id is the installation's."""
    body: dict[str, Any] = {
        "licenseID": facts.installation_id,
        "email": "",
        "status": facts.status,
        "type": facts.type,
        "licensedTo": "Keepstone",
        "totalNumber": facts.total_units,
        "usedNumber": facts.used_units,
        "newNumber": facts.new_units,
        "supportID": "",
    }
    if api.at_least(7):
        return body | {"licenseExpires": None, "gracePeriodExpires": None, "package": ""}
    return body | {"expirationDate": None, "contactPerson": "", "supportExpirationDate": None}


# No Microsoft Entra application is configured: there is no Restore Portal (the nil UUID is what
# the vendor's settings hold until one is).
NO_APPLICATION = "00000000-0000-0000-0000-000000000000"


def restore_portal_settings(api: ApiVersion, base_url: str) -> dict[str, Any]:
    """Keepstone has no self-service restore portal (it needs an Entra ID application); the
    address a portal would use is this server's own."""
    body: dict[str, Any] = {
        "applicationId": NO_APPLICATION,
        "msalAuthorityUri": "",
        "isEnabled": False,
    }
    if api.at_least(7):
        body["restorePortalUri"] = base_url
    return body


def restore_statistics(row: RestoreSession) -> dict[str, Any]:
    """v8's counts of what a restore session put back, over all its restores."""
    stats = row.statistics
    restored, failed, skipped = (int(stats.get(k, 0)) for k in ("restored", "failed", "skipped"))
    return {
        "totalItemsCount": restored + failed + skipped,
        "restoredItemsCount": restored,
        "failedItemsCount": failed,
        "skippedItemsCount": skipped,
        "items": [],
    }


# ---- Office365 organizations and their objects (RESTOffice365ConnectionSettings, RESTUser...) ----


def office365_organization(row: Organization, api: ApiVersion, backups: Any) -> dict[str, Any]:
    """An Office365 organization: its application and tenant, never its secret (whether one is
    kept shows as the certificate's thumbprint, or not at all for a client secret)."""
    settings = m365_from_record(row.settings)
    first, last = backups or (None, None)
    body: dict[str, Any] = {
        "type": "Office365",
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "officeName": settings.initial_domain or settings.tenant,
        "region": settings.region,
        "isExchangeOnline": settings.is_exchange_online,
        "isSharePointOnline": settings.is_sharepoint_online,
        "isTeamsOnline": settings.is_teams_online,
        "isTeamsChatsOnline": settings.is_teams_chats_online,
        "exchangeOnlineSettings": office365_settings(settings),
        "sharePointOnlineSettings": office365_settings(settings)
        | {"sharePointSaveAllWebParts": settings.sharepoint_save_all_web_parts},
        "isBackedup": backups is not None,
        "firstBackuptime": iso(first),
        "lastBackuptime": iso(last),
    }
    if api.at_least(8):
        body["msid"] = settings.tenant_id
    if not api.at_least(7):
        body.pop("description")
    body["_links"] = {
        "self": api.link("organizations", row.id),
        "jobs": api.link("organizations", row.id, "jobs"),
        "users": api.link("organizations", row.id, "users"),
        "groups": api.link("organizations", row.id, "groups"),
        "sites": api.link("organizations", row.id, "sites"),
        "teams": api.link("organizations", row.id, "teams"),
    } | _used_repositories_link(row.id, api)
    body["_actions"] = {}
    return body


def office365_settings(settings: M365Settings) -> dict[str, Any]:
    body: dict[str, Any] = {
        "useApplicationOnlyAuth": True,
        "officeOrganizationName": settings.initial_domain or settings.tenant,
        "applicationId": settings.application_id,
        "useCustomVeeamAADApplication": True,
    }
    if settings.certificate_thumbprint:
        body["applicationCertificateThumbprint"] = settings.certificate_thumbprint
    return body


def _location(location: str) -> str:
    return location if location in ("Cloud", "Hybrid", "OnPremises") else "Cloud"


def m365_user(org_id: str, row: M365User, api: ApiVersion) -> dict[str, Any]:
    identifier = vendor_id(row.graph_id, row.onprem_guid)
    body: dict[str, Any] = {
        "id": identifier,
        "displayName": row.display_name,
        "name": row.mail or row.name,
        "type": row.kind,
        "locationType": _location(row.location),
    }
    if api.at_least(7):
        body["onPremisesSid"] = row.onprem_sid
        body["office"] = row.office
    if api.at_least(8):
        body["msid"] = row.graph_id
        body["assignedLicenses"] = [
            {"skuId": sku, "detectedSkuType": "Other"} for sku in row.licenses
        ]
    body = _present(body, "onPremisesSid", "office")
    user_link = api.link("organizations", org_id, "users", identifier)
    body["_links"] = {
        "self": user_link,
        "organization": api.link("organizations", org_id),
        "onedrives": api.link("organizations", org_id, "users", identifier, "onedrives"),
    }
    return body


def m365_onedrive(org_id: str, row: M365User, api: ApiVersion) -> dict[str, Any]:
    identifier = vendor_id(row.graph_id, row.onprem_guid)
    body: dict[str, Any] = {"id": row.drive_id or row.graph_id, "name": "OneDrive"}
    if row.drive_url:  # the drive's webUrl, when Graph gave one (never a made-up address)
        body["url"] = row.drive_url
    body["_links"] = {"user": api.link("organizations", org_id, "users", identifier)}
    return body


def local_onedrive(org_id: str, user_id: str, api: ApiVersion) -> dict[str, Any]:
    """A Local user's drive (its files on the server's disk), named as the user's OneDrive."""
    # no "url": the drive is a directory on the server, not a web address
    return {
        "id": user_id,
        "name": "OneDrive",
        "_links": {"user": api.link("organizations", org_id, "users", user_id)},
    }


def m365_group(org_id: str, row: M365Group, api: ApiVersion) -> dict[str, Any]:
    identifier = vendor_id(row.graph_id, row.onprem_guid)
    body: dict[str, Any] = {
        "id": identifier,
        "displayName": row.display_name,
        "name": row.name,
        "type": row.kind,
        "locationType": _location(row.location),
    }
    if api.at_least(7):
        body["onPremisesSid"] = row.onprem_sid
    if api.at_least(8):
        body["msid"] = row.graph_id
    body = _present(body, "name", "onPremisesSid")
    body["_links"] = {
        "self": api.link("organizations", org_id, "groups", identifier),
        "members": api.link("organizations", org_id, "groups", identifier, "members"),
    }
    return body


def m365_member(
    org_id: str, group_id: str, row: M365GroupMember, api: ApiVersion
) -> dict[str, Any]:
    body = {
        "groupId": group_id,
        "name": row.name,
        "login": row.login,
        "type": row.kind,
        "isCloud": row.is_cloud,
    }
    return _present(body, "login") | {
        "_links": {"group": api.link("organizations", org_id, "groups", group_id)}
    }


def site_id(row: M365Site) -> str:
    """The site's id in the vendor's API: a UUID, the site collection's when Graph's composite
    id (``host,collection,web``) carries one, else one derived from Graph's id."""
    parts = row.graph_id.split(",")
    for part in parts[1:2]:
        try:
            return str(uuid.UUID(part))
        except ValueError:
            break
    return str(uuid.uuid5(KEY_NAMESPACE, f"site:{row.graph_id}"))


def m365_site(org_id: str, row: M365Site, api: ApiVersion) -> dict[str, Any]:
    identifier = site_id(row)
    body: dict[str, Any] = {
        "id": identifier,
        "url": row.url,  # no parentUrl: getAllSites lists site collections, which have none
        "name": row.name,
        "title": row.title,
        "isCloud": True,
        "isPersonal": row.is_personal,
        "isAvailable": True,
    }
    if api.at_least(8):
        body["msid"] = row.graph_id
    body["_links"] = {"self": api.link("organizations", org_id, "sites", identifier)}
    return body


def m365_team(org_id: str, row: M365Group, api: ApiVersion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.graph_id,
        "displayName": row.display_name,
        "description": row.description,
        "mail": row.mail,
    }
    if api.at_least(8):
        body["msid"] = row.graph_id
    body = _present(body, "description")
    body["_links"] = {"self": api.link("organizations", org_id, "teams", row.graph_id)}
    return body


def sync_state_v7(row: M365SyncState) -> dict[str, Any]:
    """v7's ``RESTOrganizationSyncState``: the last sync's type, status and time. Before any
    sync ``type`` is left out rather than null: the spec lets it be either, and SDKs generated
    from the spec (veeam-365's, by openapi-python-client) cannot read a null enum."""
    body = {
        "type": row.last_type or row.current_type,
        "status": row.last_result or "None",
        "lastSyncTime": iso(row.last_end),
        "error": row.last_error,
    }
    return _present(body, "type")


def sync_state(row: M365SyncState, api: ApiVersion) -> dict[str, Any]:
    """v8's ``RESTOrganizationSyncState``: the last sync and the one queued or running."""
    if not api.at_least(8):
        return sync_state_v7(row)
    body: dict[str, Any] = {"organizationId": row.organization_id, "lastSyncState": None}
    if row.last_result is not None:
        body["lastSyncState"] = {
            "type": row.last_type,
            "result": row.last_result,
            "startTime": iso(row.last_start),
            "endTime": iso(row.last_end),
            "error": row.last_error,
        }
    if row.current_status is not None:
        body["currentSyncState"] = {
            "type": row.current_type,
            "scheduledTime": iso(row.current_scheduled),
            "startTime": iso(row.current_start),
            "status": row.current_status,
        }
    body["_links"] = {"organization": api.link("organizations", row.organization_id)}
    return body
