"""The operator console's pages: one HTML shell for every console address, and its built assets.

The shell holds no data (the page's script asks the console API for it with the person's key), so the
shell and the assets are served without credentials; everything the script then reads goes through
authentication like any other call. The assets are built from console/ by `make generate` into
console_assets/ and committed. Their policy lets the page load its own script and stylesheet and talk to
its own origin, and nothing else: no inline script or style, no other site, no framing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

ASSETS_DIR = Path(__file__).resolve().parent / "console_assets"
ASSETS_PREFIX = "/console/assets/"
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
PAGES = (
    "/",
    "/runs/{executionId}",
    "/inbox",
    "/batches",
    "/batches/{batchId}",
    "/workflows",
    "/workflows/{workflowId}",
)
_SHELL_PATH = re.compile(r"^/(?:inbox|batches|workflows)?$|^/(?:runs|batches|workflows)/[^/]+$")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def is_public(path: str) -> bool:
    """A console address that needs no credentials: a page shell or a built asset."""
    return bool(_SHELL_PATH.match(path)) or (
        path.startswith(ASSETS_PREFIX) and "/" not in path.removeprefix(ASSETS_PREFIX)
    )


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def assets() -> dict[str, Asset]:
    """The built assets by file name, read once."""
    found: dict[str, Asset] = {}
    for path in sorted(ASSETS_DIR.iterdir()) if ASSETS_DIR.is_dir() else []:
        if path.suffix in MEDIA_TYPES:
            body = path.read_bytes()
            found[path.name] = Asset(body, MEDIA_TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:16])
    return found


def _asset_url(name: str) -> str:
    asset = assets().get(name)
    return f"{ASSETS_PREFIX}{name}?v={asset.etag if asset else 'missing'}"


def shell() -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n<meta name="referrer" content="no-referrer">\n'
        "<title>runctl console</title>\n"
        f'<link rel="icon" href="{escape(_asset_url("favicon.svg"))}" type="image/svg+xml">\n'
        f'<link rel="stylesheet" href="{escape(_asset_url("console.css"))}">\n'
        f'<script type="module" src="{escape(_asset_url("console.js"))}"></script>\n'
        "</head>\n<body>\n"
        '<a class="skip" href="#main">Skip to content</a>\n'
        '<header class="top"><a class="brand" href="/">runctl</a>\n'
        '<nav aria-label="Console"><ul>'
        '<li><a href="/">Runs</a></li><li><a href="/inbox">Inbox</a></li>'
        '<li><a href="/batches">Batches</a></li><li><a href="/workflows">Workflows</a></li>'
        "</ul></nav>\n"
        '<div id="session"></div></header>\n'
        '<main id="main" tabindex="-1"><p class="loading">Loading&hellip;</p>'
        "<noscript><p>The runctl console needs JavaScript.</p></noscript></main>\n"
        "</body>\n</html>\n"
    )


async def page(_request: Request) -> Response:
    return HTMLResponse(
        shell(), headers={"content-security-policy": CONTENT_SECURITY_POLICY, "cache-control": "no-cache"}
    )


async def asset(request: Request) -> Response:
    found = assets().get(request.path_params["name"])
    if found is None:
        return Response("no such asset\n", status_code=404, media_type="text/plain")
    headers = {"etag": f'"{found.etag}"', "cache-control": "no-cache"}
    if request.headers.get("if-none-match") == headers["etag"]:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


def routes() -> list[Route]:
    pages = [Route(path, page, methods=["GET"]) for path in PAGES]
    return [*pages, Route(ASSETS_PREFIX + "{name}", asset, methods=["GET"])]
