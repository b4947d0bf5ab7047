"""The one place domain errors become HTTP statuses, and the error bodies of each seed document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse

from runctl_server import errors

STATUS: list[tuple[type[errors.RunctlError], int]] = [
    (errors.InvalidArgument, 400),
    (errors.Unauthenticated, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.AlreadyExists, 409),
    (errors.FailedPrecondition, 409),
    (errors.Aborted, 409),
    (errors.ResourceExhausted, 429),
    (errors.Unavailable, 503),
]


def http_status(error: errors.RunctlError) -> int:
    for error_type, status in STATUS:
        if isinstance(error, error_type):
            return status
    return 500


def details_of(error: errors.RunctlError) -> list[dict[str, Any]]:
    """Field violations (bad input) as `{"field", "description"}`, plus the stable reason."""
    details: list[dict[str, Any]] = [{"reason": error.reason}]
    if isinstance(error, errors.InvalidArgument):
        details.extend({"field": v.field, "description": v.description} for v in error.violations)
    return details


# How a seed document spells an error body. Seed 000 documents {"error", "details"}; seed 001 answers
# {"success": false, "message"}; the others document only the status, so they get {"error", "details"}.
ErrorBody = Callable[[errors.RunctlError], dict[str, Any]]


def error_with_details(error: errors.RunctlError) -> dict[str, Any]:
    return {"error": error.message, "details": details_of(error)}


def runner_error(error: errors.RunctlError) -> dict[str, Any]:
    return {"success": False, "message": error.message, "error": error.message, "details": details_of(error)}


def error_response(error: errors.RunctlError, body: ErrorBody = error_with_details) -> JSONResponse:
    return JSONResponse(body(error), status_code=http_status(error))
