"""The v2 representations: what the vendor's v2 server returns for each resource.

Later versions add their own modules beside this one; handlers pick the module by version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keepstone.domain.jobs import SessionStatus
from keepstone.domain.scope import stable_user_id
from keepstone.domain.units import human_bytes
from keepstone.services.catalog import disk_space, proxy_status
from keepstone.store.codecs import policy_from_record, retention_from_record
from keepstone.store.tables import (
    Job,
    JobSession,
    LogItem,
    Organization,
    Proxy,
    Repository,
    RestorePoint,
    RestoreSession,
)

Links = dict[str, dict[str, str]]


class LinkBuilder:
    """Absolute hrefs for one request: ``https://host:port/v2/jobs/<id>``."""

    def __init__(self, base_url: str, version: str) -> None:
        self.root = f"{base_url.rstrip('/')}/{version}"

    def __call__(self, *parts: str) -> dict[str, str]:
        return {"href": "/".join((self.root, *parts))}


def iso(instant: datetime | None) -> str | None:
    """ISO 8601 UTC as the vendor writes it: seven fraction digits when there is a fraction."""
    if instant is None:
        return None
    instant = instant.astimezone(UTC)
    fraction = f".{instant.microsecond:06d}0" if instant.microsecond else ""
    return f"{instant:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def job(row: Job, link: LinkBuilder) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "lastRun": iso(row.last_run),
        "nextRun": iso(row.next_run),
        "isEnabled": row.is_enabled,
        "backupType": row.backup_type,
        "lastStatus": row.last_status or "NotConfigured",
        "schedulePolicy": schedule_policy(row.schedule_policy),
        "proxyId": row.proxy_id,
        "repositoryId": row.repository_id,
        "_links": {
            "self": link("jobs", row.id),
            "organization": link("organizations", row.organization_id),
            "backupRepository": link("backuprepositories", row.repository_id),
            "jobsessions": link("jobs", row.id, "jobsessions"),
            "selectedItems": link("jobs", row.id, "selecteditems"),
            "excludedItems": link("jobs", row.id, "excludeditems"),
        },
    }


def schedule_policy(record: dict[str, Any]) -> dict[str, Any]:
    policy = policy_from_record(record)
    return {
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


def organization(row: Organization, link: LinkBuilder, backed_up: bool) -> dict[str, Any]:
    return {
        "type": row.type,
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "localSettings": {"path": row.settings.get("path")},
        "isBackedup": backed_up,
        "_links": {
            "self": link("organizations", row.id),
            "jobs": link("organizations", row.id, "jobs"),
            "users": link("organizations", row.id, "users"),
        },
        "_actions": {},
    }


def organization_user(org_id: str, user: Any, link: LinkBuilder) -> dict[str, Any]:
    identifier = stable_user_id(org_id, user.name)
    return {
        "id": identifier,
        "displayName": user.name,
        "name": user.name,
        "type": "User",
        "locationType": "OnPremises",
        "hasMailbox": user.has_mailbox,
        "hasOneDrive": user.has_onedrive,
        "_links": {"self": link("organizations", org_id, "users", identifier)},
    }


def proxy(row: Proxy, link: LinkBuilder, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "hostName": row.host_name,
        "description": row.description,
        "port": row.port,
        "threadsNumber": row.threads_number,
        "enableNetworkthrottling": False,
        "throttlingValue": 0,
        "throttlingUnit": "MBs",
        "status": proxy_status(row, now),
        "_links": {
            "self": link("proxies", row.id),
            "repositories": link(f"backuprepositories?proxyId={row.id}"),
        },
    }


def repository(row: Repository, link: LinkBuilder, encrypted: bool = False) -> dict[str, Any]:
    retention = retention_from_record(row.retention)
    space = disk_space(row.path)
    return {
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
        "capacity": space.capacity,
        "freeSpace": space.free,
        "_links": {
            "self": link("backuprepositories", row.id),
            "proxy": link("proxies", row.proxy_id),
        },
    }


def job_session(row: JobSession, link: LinkBuilder) -> dict[str, Any]:
    return {
        "id": row.id,
        "creationTime": iso(row.creation_time),
        "endTime": iso(row.end_time),
        "progress": row.progress,
        "status": row.status,
        "retryCount": row.retry_count,
        "details": row.details,
        "statistics": v2_statistics(row.statistics, SessionStatus(row.status)),
        "_links": {
            "self": link("jobsessions", row.id),
            "log": link("jobsessions", row.id, "logitems"),
            "job": link("jobs", row.job_id),
        },
    }


def v2_statistics(stats: dict[str, Any], status: SessionStatus) -> dict[str, Any]:
    """v2 writes statistics as human-readable strings: ``832.4 KB/s (52 items/s)``."""
    seconds = float(stats.get("duration_seconds", 0))
    read_bytes, items = int(stats.get("read_bytes", 0)), int(stats.get("read_items", 0))

    def rate(amount: int) -> float:
        return amount / seconds if seconds > 0 else 0.0

    return {
        "processingRate": f"{human_bytes(rate(read_bytes))}/s ({round(rate(items))} items/s)",
        "readRate": f"{human_bytes(rate(read_bytes))}/s",
        "writeRate": f"{human_bytes(rate(int(stats.get('written_bytes', 0))))}/s",
        "transferredData": human_bytes(int(stats.get("transferred_bytes", 0))),
        "processedObjects": items,
        "bottleneck": stats.get("bottleneck", "NA"),
    }


def log_item(row: LogItem, link: LinkBuilder) -> dict[str, Any]:
    return {
        "id": row.id,
        "usn": row.usn,
        "title": f"[{row.status}] {row.message}",
        "creationTime": iso(row.creation_time),
        "endTime": iso(row.end_time),
        "_links": {
            "self": link("jobsessions", row.session_id, "logitems", row.id),
            "jobSession": link("jobsessions", row.session_id),
        },
    }


def restore_point(row: RestorePoint, link: LinkBuilder) -> dict[str, Any]:
    return {
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
        "_links": {
            "self": link("restorepoints", row.id),
            "backupRepository": link("backuprepositories", row.repository_id),
        }
        | ({"job": link("jobs", row.job_id)} if row.job_id else {}),
    }


def restore_session(row: RestoreSession, link: LinkBuilder) -> dict[str, Any]:
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
            "mailboxes": link("restoresessions", row.id, "organization", "mailboxes"),
            "oneDrives": link("restoresessions", row.id, "organization", "onedrives"),
        },
    }


def restore_owner(
    session_id: str, collection: str, owner: Any, link: LinkBuilder
) -> dict[str, Any]:
    base = ("restoresessions", session_id, "organization", collection, owner.id)
    children = ("folders", "items") if collection == "mailboxes" else ("folders", "documents")
    return {
        "id": owner.id,
        "name": owner.name,
        "email": f"{owner.name}@local",
        "_links": {"self": link(*base)} | {child: link(*base, child) for child in children},
    }


def restore_folder(folder: Any) -> dict[str, Any]:
    return {"id": folder.id, "name": folder.name, "path": folder.path, "parentId": folder.parent_id}


def restore_item(item: Any, identifier: str) -> dict[str, Any]:
    common = {
        "id": identifier,
        "size": item.size,
        "modificationTime": iso(datetime.fromtimestamp(item.mtime, UTC)),
    }
    if item.kind == "mail":
        meta = item.meta
        return common | {
            "itemClass": "IPM.Note",
            "folder": item.path,
            "subject": meta.get("subject", ""),
            "from": meta.get("from", ""),
            "to": meta.get("to", ""),
            "received": meta.get("date", ""),
            "flags": meta.get("flags", ""),
        }
    return common | {"name": item.path.rsplit("/", 1)[-1], "path": item.path}


def restore_counts(counts: Any) -> dict[str, int]:
    return {
        "restoredItemsCount": counts.restored,
        "skippedItemsCount": counts.skipped,
        "failedItemsCount": counts.failed,
        "restoredBytes": counts.bytes,
    }


def page(
    results: list[dict[str, Any]], offset: int, limit: int, total: int, url: str
) -> dict[str, Any]:
    """The vendor's page envelope, with first/prev/self/next links."""

    def at(start: int) -> dict[str, str]:
        base = url.split("?", 1)[0]
        query = [
            p
            for p in (url.split("?", 1)[1].split("&") if "?" in url else [])
            if p and not p.startswith(("offset=", "limit="))
        ]
        return {"href": f"{base}?{'&'.join([*query, f'offset={start}', f'limit={limit}'])}"}

    links = {"first": at(0), "self": at(offset)}
    if offset > 0:
        links["prev"] = at(max(0, offset - limit))
    if offset + limit < total:
        links["next"] = at(offset + limit)
    return {
        "offset": offset,
        "limit": limit,
        "totalCount": total,
        "results": results,
        "_links": links,
    }
