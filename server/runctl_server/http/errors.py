"""The one place domain errors become HTTP statuses, and the error bodies of each compatibility API."""

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


class PayloadTooLarge(errors.RunctlError):
    """A request body over the HTTP limit: 413, answered by the HTTP faces only."""


# The error bodies of the HTTP faces print the reason word they printed before runctl.v1.ErrorReason
# named every error, so that their users see no change: a few reasons were renamed for gRPC, and the
# errors that then had no reason of their own printed their class's word (say "INVALID_ARGUMENT").
_RENAMED: dict[str, str] = {
    "EXECUTION_NOT_PAUSED": "NOT_PAUSED",
    "EXECUTION_ALREADY_PAUSED": "ALREADY_PAUSED",
    "EXECUTION_NOT_MANUALLY_PAUSED": "NOT_OPERATOR_PAUSED",
    "METHOD_NOT_IMPLEMENTED": "NOT_IMPLEMENTED",
}
_NAMED_SINCE: frozenset[str] = frozenset(
    {
        "INTERNAL",
        "FIELD_REQUIRED",
        "FIELD_INVALID",
        "PAGE_TOKEN_INVALID",
        "PAYLOAD_TOO_LARGE",
        "WORKFLOW_DEFINITION_INVALID",
        "WORKFLOW_PATH_INVALID",
        "WORKFLOW_PATH_NOT_FOUND",
        "API_KEY_NOT_FOUND",
        "API_KEY_REQUIRED",
        "API_KEY_INVALID",
        "LOOPBACK_ONLY",
        "EXECUTION_NOT_CLAIMED",
    }
)
_CLASS_WORDS: list[tuple[type[errors.RunctlError], str]] = [
    (PayloadTooLarge, "PAYLOAD_TOO_LARGE"),
    (errors.InvalidArgument, "INVALID_ARGUMENT"),
    (errors.NotFound, "NOT_FOUND"),
    (errors.FailedPrecondition, "FAILED_PRECONDITION"),
    (errors.Unauthenticated, "UNAUTHENTICATED"),
    (errors.Unavailable, "UNAVAILABLE"),
]


def http_reason(error: errors.RunctlError) -> str:
    """The reason word an HTTP error body shows for `error` (see above)."""
    if error.reason in _RENAMED:
        return _RENAMED[error.reason]
    if error.reason in _NAMED_SINCE:
        return next((word for cls, word in _CLASS_WORDS if isinstance(error, cls)), "RUNCTL_ERROR")
    return error.reason


def details_of(error: errors.RunctlError) -> list[dict[str, Any]]:
    """Field violations (bad input) as `{"field", "description"}`, plus the stable reason."""
    details: list[dict[str, Any]] = [{"reason": http_reason(error)}]
    if isinstance(error, errors.InvalidArgument):
        details.extend({"field": v.field, "description": v.description} for v in error.violations)
    return details


# How a compatibility API spells an error body. The paused executions API documents
# {"error", "details"}; the local runner API answers {"success": false, "message"}; the others document only
# the status, so they get {"error", "details"}.
ErrorBody = Callable[[errors.RunctlError], dict[str, Any]]


def error_with_details(error: errors.RunctlError) -> dict[str, Any]:
    return {"error": error.message, "details": details_of(error)}


def runner_error(error: errors.RunctlError) -> dict[str, Any]:
    return {"success": False, "message": error.message, "error": error.message, "details": details_of(error)}


def error_response(error: errors.RunctlError, body: ErrorBody = error_with_details) -> JSONResponse:
    return JSONResponse(body(error), status_code=http_status(error))
