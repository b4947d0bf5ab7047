"""The ASGI application. Every error answers JSON in the `{"error": ..., "details": [...]}` form."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from runctl_server import __version__


def build_http_app(is_serving: Callable[[], bool]) -> Starlette:
    """The HTTP app; `is_serving` reports readiness the same way gRPC health does."""

    async def healthz(_request: Request) -> JSONResponse:
        serving = is_serving()
        return JSONResponse(
            {"status": "SERVING" if serving else "NOT_SERVING", "version": __version__},
            status_code=200 if serving else 503,
        )

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail, "details": []}, status_code=exc.status_code)

    async def internal_error(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "internal error; see the server log", "details": []}, status_code=500)

    return Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"])],
        exception_handlers={HTTPException: http_error, Exception: internal_error},
    )
