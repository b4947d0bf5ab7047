"""HTTP authentication: the same Authenticator as gRPC, applied before any route runs.

A pure ASGI middleware (not BaseHTTPMiddleware) so the workspace it sets reaches streaming responses
(SSE) too. /healthz and /openapi.json stay open; /socket.io/ never reaches here (the Socket.IO bridge
sits in front and authenticates its handshake itself, since browsers send keys in the `auth` object).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from runctl_server.api.auth import Authenticator, is_loopback_host
from runctl_server.api.context import acting_in
from runctl_server.errors import Unauthenticated
from runctl_server.http.errors import error_response

OPEN_PATHS = frozenset({"/healthz", "/openapi.json"})


class AuthMiddleware:
    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self._app = app
        self._authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        client = scope.get("client")
        try:
            workspace_id = await self._authenticator.authenticate(
                Headers(scope=scope).items(), loopback=is_loopback_host(client[0] if client else None)
            )
        except Unauthenticated as exc:
            response = error_response(exc)
            response.headers["www-authenticate"] = 'Bearer realm="runctl"'
            await response(scope, receive, send)
            return
        with acting_in(workspace_id):
            await self._app(scope, receive, send)
