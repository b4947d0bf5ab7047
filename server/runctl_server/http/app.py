"""The ASGI application. Every error answers JSON in the `{"error": ..., "details": [...]}` form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from runctl_server import __version__
from runctl_server.api.auth import Authenticator
from runctl_server.api.resume_links import ResumeLinks
from runctl_server.engine.engine import Engine
from runctl_server.http import console_api, console_pages
from runctl_server.http.auth import AuthMiddleware
from runctl_server.http.bridge import Services
from runctl_server.http.observing import ObservingMiddleware
from runctl_server.http.openapi import openapi_document
from runctl_server.http.page_headers import PageHeadersMiddleware
from runctl_server.http.routes import executions, hitl, implied, outbound, runner, runs
from runctl_server.http.routing import DEFAULT_MAX_BODY_BYTES, Endpoint, starlette_route
from runctl_server.http.socketio_bridge import SocketBridge
from runctl_server.nodes.registry import builtin_node_types
from runctl_server.observe.metrics import Metrics
from runctl_server.store.probe import Readiness

ROUTE_MODULES = (hitl, runner, executions, outbound, runs, implied)


def all_endpoints() -> list[Endpoint]:
    return [endpoint for module in ROUTE_MODULES for endpoint in module.ENDPOINTS]


def build_http_app(
    is_serving: Callable[[], bool],
    services: Services | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    engine: Engine | None = None,
    authenticator: Authenticator | None = None,
    links: ResumeLinks | None = None,
    readiness: Callable[[], Awaitable[Readiness]] | None = None,
    metrics_text: Callable[[], Awaitable[bytes | None]] | None = None,
    metrics: Metrics | None = None,
    database_up: Callable[[], bool] = lambda: True,
) -> ASGIApp:
    """The HTTP app; `is_serving` reports readiness the same way gRPC health does. Without `services`
    only the health route is served (a bare app for tests of the skeleton). With the `engine` too,
    Socket.IO live updates are served at /socket.io/ (http/socketio_bridge.py). With the `authenticator`,
    every route but /healthz and /openapi.json needs credentials (http/auth.py)."""
    endpoints = all_endpoints() if services is not None else []
    node_types = engine.node_types if engine is not None else builtin_node_types()
    document = openapi_document(endpoints, node_types if endpoints else None)

    async def healthz(_request: Request) -> JSONResponse:
        serving = is_serving()
        return JSONResponse(
            {"status": "SERVING" if serving else "NOT_SERVING", "version": __version__},
            status_code=200 if serving else 503,
        )

    async def readyz(_request: Request) -> JSONResponse:
        if readiness is None:
            serving = is_serving()
            return JSONResponse({"ready": serving, "checks": {}}, status_code=200 if serving else 503)
        answer = await readiness()
        body: dict[str, Any] = {"ready": answer.ready, "checks": answer.checks, "version": __version__}
        return JSONResponse(body, status_code=200 if answer.ready else 503)

    async def metrics_route(_request: Request) -> Response:
        text = await metrics_text() if metrics_text is not None else None
        if text is None:
            return JSONResponse(
                {"error": "metrics are off (RUNCTL_METRICS=off)", "details": []}, status_code=404
            )
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail, "details": []}, status_code=exc.status_code)

    async def internal_error(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal error; see the server log", "details": []}, status_code=500)

    async def openapi(_request: Request) -> JSONResponse:
        return JSONResponse(document)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_route, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    if services is not None:
        routes += [starlette_route(endpoint, services, max_body_bytes) for endpoint in endpoints]
        # The console is not part of the shim's OpenAPI document: its API is runctl.v1 itself.
        routes += [starlette_route(endpoint, services, max_body_bytes) for endpoint in console_api.ENDPOINTS]
        routes += console_pages.routes()
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )
    checked: ASGIApp = app if authenticator is None else AuthMiddleware(app, authenticator, links)
    # Outside authentication, so its HTML error pages carry the headers too.
    checked = PageHeadersMiddleware(checked)
    if engine is not None and services is not None and authenticator is not None:
        checked = SocketBridge(engine, services, authenticator).asgi(checked)
    return ObservingMiddleware(checked, metrics, database_up)
