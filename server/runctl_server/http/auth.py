"""HTTP authentication: the same Authenticator as gRPC, applied before any route runs.

A pure ASGI middleware (not BaseHTTPMiddleware) so the workspace it sets reaches streaming responses
(SSE) too. /healthz, /openapi.json and the console's page shells and assets (which hold no data) stay
open; /socket.io/ never reaches here (the Socket.IO bridge
sits in front and authenticates its handshake itself, since browsers send keys in the `auth` object).

A resume link (`/api/resume/...` or `/resume/...` with `?token=`) is its own credential: the token
must be genuine and name the run (and, for the apiUrl, the pause point) in the path. The request then
acts in the token's workspace with the claim set, and the routes (http/routes/hitl.py) let it touch
that one pause point only. Such answers are never cached and never sent on as a Referer.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runctl_server.api.auth import Authenticator, is_loopback_host
from runctl_server.api.context import acting_in, through_link
from runctl_server.api.resume_links import LINK_PARAM, LinkClaim, ResumeLinks
from runctl_server.errors import Unauthenticated
from runctl_server.http import console_pages
from runctl_server.http.approval_page import error_page
from runctl_server.http.errors import error_response

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})
LINK_HEADERS = [(b"cache-control", b"no-store"), (b"referrer-policy", b"no-referrer")]


def link_token(scope: Scope) -> str | None:
    """The token of a request to a resume route that carries one."""
    path: str = scope["path"]
    if not (path.startswith("/api/resume/") or path.startswith("/resume/")):
        return None
    query = scope.get("query_string", b"").decode("latin-1")
    tokens = parse_qs(query, keep_blank_values=True).get(LINK_PARAM)
    return tokens[0] if tokens else None


def _claim_fits_path(claim: LinkClaim, path: str) -> bool:
    parts = path.split("/")
    if parts[1] == "api":  # /api/resume/{workflowId}/{executionId}/{contextId}
        return len(parts) == 6 and parts[4] == claim.execution_id and parts[5] == claim.context_id
    return len(parts) == 4 and parts[3] == claim.execution_id  # /resume/{workflowId}/{executionId}


class AuthMiddleware:
    def __init__(self, app: ASGIApp, authenticator: Authenticator, links: ResumeLinks | None = None) -> None:
        self._app = app
        self._authenticator = authenticator
        self._links = links

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] not in ("http", "websocket") or path in OPEN_PATHS or console_pages.is_public(path):
            await self._app(scope, receive, send)
            return
        token = link_token(scope) if self._links is not None else None
        if token is not None:
            await self._through_link(token, scope, receive, send)
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

    async def _through_link(self, token: str, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._links is not None

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *LINK_HEADERS]}
            await send(message)

        try:
            claim = self._links.verify(token)
            if not _claim_fits_path(claim, scope["path"]):
                raise Unauthenticated(
                    "this resume link is for another run or pause point", reason="RESUME_LINK_MISMATCH"
                )
        except Unauthenticated as exc:
            response: Response = (
                error_response(exc)
                if scope["path"].startswith("/api/")
                else HTMLResponse(error_page(401, exc.message), status_code=401)
            )
            await response(scope, receive, send_private)
            return
        with acting_in(claim.workspace_id), through_link(claim):
            await self._app(scope, receive, send_private)
