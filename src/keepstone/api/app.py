"""The ASGI application: both dialects' routers over one services context."""

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
import swagger_ui_bundle
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from keepstone import __version__, console
from keepstone.api.client_address import Network
from keepstone.api.credential_gate import CredentialGate, has_header
from keepstone.api.deferred import DeferredRoutes, install_all
from keepstone.api.edge import Edge
from keepstone.api.em import deps as em_deps
from keepstone.api.errors import error_response, status_of
from keepstone.api.headers import page_policy
from keepstone.api.health import router as health_router
from keepstone.api.metrics import MetricsAccess
from keepstone.api.metrics import router as metrics_router
from keepstone.api.prefix_routing import DirectRoutes
from keepstone.api.prefix_routing import install as route_by_prefix
from keepstone.api.query_names import QueryNames
from keepstone.api.vb365 import (
    accounts,
    actions,
    copy_jobs,
    deps,
    health,
    infrastructure,
    instance,
    jobs,
    notifications,
    object_storage,
    organizations,
    proxy_pools,
    rbac,
    reports,
    restore,
    sessions,
    token,
)
from keepstone.api.vb365 import tasks as vb365_tasks
from keepstone.api.vb365.pages import PageSets
from keepstone.api.vb365.versions import VERSIONS, VersionedRouter
from keepstone.domain.errors import KeepstoneError, RetryLater
from keepstone.services.context import Context
from keepstone.services.login_guard import LoginGuard

SWAGGER_PAGE = "/swagger"
WORKER_THREADS = int(os.environ.get("KEEPSTONE_WORKER_THREADS", "8"))
VB365_ROUTERS: list[tuple[VersionedRouter, str, bool]] = [  # router, tag, behind authentication
    (token.router, "Auth", False),
    (health.router, "Health", False),  # anonymous, as the vendor's
    (instance.router, "ServiceInstance", True),
    (organizations.router, "Organizations", True),
    (jobs.router, "Jobs", True),
    (copy_jobs.router, "CopyJobs", True),
    (sessions.router, "JobSessions", True),
    (infrastructure.router, "Infrastructure", True),
    (proxy_pools.router, "ProxyPool", True),
    (accounts.router, "Account", True),
    (object_storage.router, "ObjectStorageRepository", True),
    (restore.router, "Restore", True),
    (actions.router, "Restore", True),  # v2-v5 /Action bodies over the same handlers
    (rbac.router, "RbacRole", True),
    (vb365_tasks.router, "Tasks", True),
    (notifications.router, "VboEmailSettings", True),
    (reports.router, "Reports", True),
]


class KeepstoneApp(FastAPI):
    """FastAPI, its middleware stack without the three layers FastAPI puts in front of the
    app's own (a generic 500, OpenTelemetry's exception events, its body limit): ``Edge``, the
    outermost layer, answers what escapes in the dialect's format, limits the body, and
    Keepstone configures no OpenTelemetry. Each of those layers wrapped every request's ``send``
    in a closure and its call in a coroutine: about a tenth of a refused request's CPU."""

    def build_middleware_stack(self) -> ASGIApp:
        if any(key in (500, Exception) for key in self.exception_handlers):
            raise TypeError("Edge answers what escapes the app: no handler for 500 or Exception")
        app: ASGIApp = AsyncExitStackMiddleware(self.router)  # as FastAPI's stack has it
        app = ExceptionMiddleware(app, handlers=self.exception_handlers, debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app

    def openapi(self) -> dict[str, Any]:
        install_all(self)  # the document describes every route, deferred or not
        return super().openapi()


class EnterpriseManager(DeferredRoutes):
    """Where the Enterprise Manager dialect's routes go (``api.deferred``), until the first
    request under ``/api``: importing its modules (lxml among them) was 0.07-0.1 s of a
    server's start (docs/benchmarks.md), which a client of the JSON dialect never needs. Its
    direct routes join the app's with its routes."""

    def __init__(self, app: FastAPI, direct: DirectRoutes) -> None:
        super().__init__(app, frozenset({"api"}), self._routers, tags=["Enterprise Manager"])
        self._direct = direct

    def _routers(self) -> tuple[APIRouter, ...]:
        from keepstone.api.em import jobs as em_jobs  # here: see the class
        from keepstone.api.em.resources import ROUTERS

        self._direct.add(em_jobs.DIRECT_ROUTES)  # bound with the routes at the next match
        return ROUTERS


def create_app(
    ctx: Context,
    *,
    trusted_proxies: tuple[Network, ...] = (),
    public: str | None = None,
    metrics_access: MetricsAccess | None = None,
) -> FastAPI:
    """The application. ``trusted_proxies`` are the peers whose ``X-Forwarded-For`` is believed
    (``api.client_address``); ``public`` is the ``--public-url`` links are built on (else the
    address each request arrived on; see ``api.public_url``)."""
    app = KeepstoneApp(
        title="Keepstone",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/swagger/openapi.json",
        lifespan=_lifespan,
        # Keepstone configures no OpenTelemetry provider; FastAPI would still ask on every
        # request whether one was configured since (about 7 us a request).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.ctx = ctx
    app.state.login_guard = LoginGuard(ctx.clock)
    app.state.trusted_proxies = trusted_proxies
    app.state.public_url = public
    app.state.metrics_access = metrics_access or MetricsAccess()
    app.state.page_sets = PageSets()
    templates: list[str] = []
    for number in VERSIONS:
        for versioned, tag, protected in VB365_ROUTERS:
            router = versioned.for_version(number)
            app.include_router(
                router,
                prefix=f"/v{number}",
                tags=[f"v{number} {tag}"],
                dependencies=[Depends(deps.principal)] if protected else [],
            )
            templates += [
                f"/v{number}{route.path}" for route in router.routes if isinstance(route, APIRoute)
            ]
    direct = DirectRoutes(jobs.direct_routes(), app.router)
    enterprise_manager = EnterpriseManager(app, direct)
    app.router.routes.append(enterprise_manager)
    # remote proxies: their credential, not a user's (imported at their first request: a
    # server without remote proxies never needs it)
    app.router.routes.append(DeferredRoutes(app, frozenset({"_proxy"}), _proxy_link))
    console.install(app)  # the web console at /, over the same services
    app.include_router(health_router)  # probes: no credential, no data
    app.include_router(metrics_router)  # its own credential or allow-list (api/metrics.py)
    swagger_policy = _add_swagger(app)
    route_by_prefix(app.router)  # /api never scans the seven /vN copies of the JSON dialect
    _add_error_handlers(app)
    # One layer for every cross-cutting concern (headers, request id and logs, body limit,
    # well-formed input, case-insensitive paths and query names), which also answers, before
    # the app, the hottest routes without FastAPI's per-request machinery (api/direct.py) and a
    # request sent without the credentials its route needs (api/credential_gate.py): see
    # api/edge.py.
    app.add_middleware(
        Edge,
        templates=templates,
        public=public,
        pages={SWAGGER_PAGE: swagger_policy},
        direct=direct,
        gate=_credential_gate(app),
        refusal=domain_error,
        deferred=[enterprise_manager],
        query_names=QueryNames(app.router),  # a conflict among the declared names fails here
    )
    return app


def _proxy_link() -> list[APIRouter]:
    from keepstone.api.proxy_link import router  # here: see create_app

    return [router]


def _credential_gate(app: FastAPI) -> CredentialGate:
    """Each credential check a route may solve first, and the headers it reads."""
    logon = has_header(em_deps.SESSION_HEADER.lower().encode(), b"cookie")
    return CredentialGate(
        {
            deps.principal: has_header(b"authorization"),
            em_deps.caller: logon,
            em_deps.logged_on: logon,
        },
        app.router,
    )


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Handlers are short and hold the GIL; a few worker threads serve them faster than anyio's
    # default 40, which only adds GIL contention and idle database connections.
    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
    yield


def _add_swagger(app: FastAPI) -> str:
    """Serve Swagger UI from local assets; returns the page's Content-Security-Policy."""
    app.mount(
        "/swagger/static",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="swagger-static",
    )
    page = get_swagger_ui_html(
        openapi_url="/swagger/openapi.json",
        title="Keepstone API",
        swagger_js_url="/swagger/static/swagger-ui-bundle.js",
        swagger_css_url="/swagger/static/swagger-ui.css",
        swagger_favicon_url="/swagger/static/favicon-32x32.png",
    ).body

    @app.get(SWAGGER_PAGE, include_in_schema=False)
    def swagger() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/swagger/ui/index", include_in_schema=False)
    def vendor_swagger_path() -> RedirectResponse:
        return RedirectResponse(SWAGGER_PAGE)

    return page_policy(bytes(page).decode())


async def domain_error(request: Request, error: KeepstoneError) -> Response:
    """The answer to a domain error, in the dialect (or the console page) of the request's
    path: the app's exception handler, and the credential gate's refusal."""
    path = request.scope["path"]  # the dialect's prefix: no need to build the whole URL
    if console.owns(path):
        return console.error_page(request, error)
    status = status_of(error)
    em = path.startswith("/api")
    challenge = 'Basic realm="RestSvc"' if em else 'Bearer realm="keepstone"'
    headers = {"WWW-Authenticate": challenge} if status == 401 else None
    if isinstance(error, RetryLater):
        headers = {"Retry-After": str(error.retry_after)}
    return error_response(path, status, error.message, headers, request.headers.get("accept", ""))


def _add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KeepstoneError, domain_error)  # type: ignore[arg-type]

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, error: RequestValidationError) -> Response:
        return error_response(
            request.url.path,
            400,
            describe_validation_error(error.errors()),
            accept=request.headers.get("accept", ""),
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        message = {
            404: f"no resource at {request.url.path}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }
        return error_response(
            request.url.path,
            error.status_code,
            message.get(error.status_code, str(error.detail)),
            dict(error.headers) if error.headers else None,
            request.headers.get("accept", ""),
        )


def describe_validation_error(errors: Any) -> str:
    """One sentence naming the first offending property, e.g. ``schedulePolicy.type: ...``."""
    first = next(iter(errors))
    if first["type"] == "json_invalid":
        return f"request body is not valid JSON: {first.get('ctx', {}).get('error', '')}".rstrip(
            ": "
        )
    location = [str(part) for part in first["loc"]]
    source = location[0] if location else "body"
    path = ".".join(location[1:])
    if first["type"] == "missing" and not path:
        return "a JSON request body is required"
    message = first["msg"].removeprefix("Value error, ")
    where = path or ("request body" if source == "body" else source)
    if source in ("query", "path", "header"):
        where = f"{source} parameter {path}"
    return f"{where}: {message}"
