"""Every router of the Enterprise Manager dialect, in the order the application mounts them."""

from __future__ import annotations

from fastapi import APIRouter

from keepstone.api.em import routes

ROUTERS: tuple[APIRouter, ...] = (routes.router,)
