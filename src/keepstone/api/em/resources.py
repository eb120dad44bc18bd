"""Every router of the Enterprise Manager dialect, in the order the application mounts them."""

from __future__ import annotations

from fastapi import APIRouter

from keepstone.api.em import (
    backup_servers,
    backup_sessions,
    backups,
    discovery,
    empty_collections,
    jobs,
    protection_reports,
    query_service,
    reports,
    repositories,
    restore_points,
    task_sessions,
    tasks,
)

ROUTERS: tuple[APIRouter, ...] = (
    discovery.router,
    jobs.router,
    tasks.router,
    backup_sessions.router,
    repositories.router,
    backup_servers.router,
    backups.router,
    restore_points.router,
    query_service.router,
    reports.router,
    task_sessions.router,
    protection_reports.router,
    empty_collections.router,  # last: a real list of the same path must answer first
)
