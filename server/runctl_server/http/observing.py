"""The outermost HTTP middleware: every request is counted by route template and status, traced
(a server span parented to the caller's `traceparent`), written to the access log and answered with
its `x-request-id`; while the database is unreachable API routes answer 503."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runctl_server.observe import logs, tracing
from runctl_server.observe.calls import begin_call, request_id_from
from runctl_server.observe.metrics import Metrics

# Always answered, whatever the database does: they report on it.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
DATABASE_DOWN = json.dumps(
    {
        "error": "the server cannot reach its database at the moment; nothing was done: retry later",
        "details": [{"reason": "DATABASE_UNAVAILABLE"}],
    }
).encode()


def _route_of(scope: Scope) -> str:
    """The matched route's template (never the path: ids would make labels unbounded)."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    if scope["path"].startswith("/socket.io"):
        return "/socket.io/"
    return "unmatched"


class ObservingMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics | None, database_up: Callable[[], bool]) -> None:
        self._app = app
        self._metrics = metrics
        self._database_up = database_up

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        info = begin_call(request_id_from(headers.get("x-request-id")))
        started = time.perf_counter()
        status = 500
        request_id_header = (b"x-request-id", info.request_id.encode())

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), request_id_header]}
            await send(message)

        method = scope["method"]
        with tracing.server_span(
            f"{method} {scope['path']}", dict(headers.items()), {"http.request.method": method}
        ) as span:
            try:
                if not self._database_up() and scope["path"] not in PROBE_PATHS:
                    await _unavailable(send_observed)
                else:
                    await self._app(scope, receive, send_observed)
            finally:
                seconds = time.perf_counter() - started
                route = _route_of(scope)
                if span is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        tracing.failed(span, str(status))
                if self._metrics is not None:
                    self._metrics.http_requests.labels(method, route, str(status)).inc()
                    self._metrics.http_seconds.labels(method, route).observe(seconds)
                client = scope.get("client")
                params = scope.get("path_params") or {}
                info.execution_id = params.get("executionId") or params.get("execution_id")
                info.workflow_id = params.get("workflowId") or params.get("workflow_id")
                logs.access(
                    {
                        "http_method": method,
                        "route": route,
                        "path": scope["path"],  # never the query: it may hold a resume link's token
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "peer": f"{client[0]}:{client[1]}" if client else None,
                    },
                    f"{method} {scope['path']} {status} {seconds * 1000:.1f}ms",
                )


async def _unavailable(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": DATABASE_DOWN})
