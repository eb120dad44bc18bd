"""Every router of the Enterprise Manager dialect, in the order the application mounts them."""

from __future__ import annotations

from fastapi import APIRouter

from keepstone.api.em import protection_reports, routes, task_sessions

ROUTERS: tuple[APIRouter, ...] = (
    routes.router,
    task_sessions.router,
    protection_reports.router,
)
