"""Security headers on every HTML answer (the approval page and its error pages; the console's pages
bring their own Content-Security-Policy, http/console_pages.py).

The page has no script and one inline stylesheet, so the policy allows nothing but that stylesheet (by
its hash), form posts back to runctl, and no framing: nobody can frame an approval link and trick a
person into clicking Approve. The link carries a token, so no Referer leaves the page either.
"""

from __future__ import annotations

import base64
import hashlib

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runctl_server.http.approval_page import STYLESHEET


def _style_hash(stylesheet: str) -> str:
    digest = hashlib.sha256(stylesheet.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_style_hash(STYLESHEET)}; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HTML_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class PageHeadersMiddleware:
    """Adds HTML_HEADERS to responses whose content type is text/html; nosniff to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    # A page with a policy of its own (the console's) keeps it.
                    for name, value in HTML_HEADERS.items():
                        if name not in headers:
                            headers[name] = value
                else:
                    headers["X-Content-Type-Options"] = "nosniff"
            await send(message)

        await self._app(scope, receive, send_with_headers)
