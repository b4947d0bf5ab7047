"""Domain errors. Engine and store raise these; api/ and http/ map them to status codes in one place each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

# Every reason a client may see in google.rpc.ErrorInfo: the names of runctl.v1.ErrorReason
# (proto/runctl/v1/error.proto) without their "ERROR_REASON_" prefix. Spelled out here so that the
# engine needs no generated code and mypy rejects a raise with a reason outside the contract;
# tests/unit/test_error_reasons.py keeps this list equal to the enum.
Reason = Literal[
    "INTERNAL",
    "EXECUTION_NOT_FOUND",
    "WORKFLOW_NOT_FOUND",
    "WORKFLOW_VERSION_NOT_FOUND",
    "BATCH_NOT_FOUND",
    "PAUSE_POINT_NOT_FOUND",
    "NODE_NOT_FOUND",
    "TASK_NOT_FOUND",
    "WORKFLOW_PATH_NOT_FOUND",
    "API_KEY_NOT_FOUND",
    "FIELD_REQUIRED",
    "FIELD_INVALID",
    "PAGE_TOKEN_INVALID",
    "WORKFLOW_DEFINITION_INVALID",
    "WORKFLOW_PATH_INVALID",
    "PAYLOAD_TOO_LARGE",
    "FORM_VALUES_INVALID",
    "BAD_FOR_EACH_CONTEXT",
    "EXECUTION_ENDED",
    "EXECUTION_NOT_PAUSED",
    "EXECUTION_ALREADY_PAUSED",
    "EXECUTION_NOT_MANUALLY_PAUSED",
    "EXECUTION_QUEUED",
    "NOTHING_TO_SKIP",
    "WORKFLOW_ACTIVE",
    "WORKFLOW_PAUSED",
    "WORKFLOW_CANCELLED",
    "WORKFLOW_HAS_UNFINISHED_RUNS",
    "BATCH_ENDED",
    "PAUSE_POINT_NOT_RESUMABLE",
    "TASK_NOT_LEASED",
    "NO_WORKFLOW_FOLDERS",
    "VERSION_MISMATCH",
    "WATCHER_TOO_SLOW",
    "API_KEY_REQUIRED",
    "API_KEY_INVALID",
    "LOOPBACK_ONLY",
    "CREDENTIALS_REFUSED",
    "SECRET_REQUIRED",
    "BAD_SECRET",
    "NO_WEBHOOK_SECRET",
    "RESUME_LINK_INVALID",
    "RESUME_LINK_MISMATCH",
    "RESUME_LINK_SPENT",
    "SHUTTING_DOWN",
    "REPLICA_UNREACHABLE",
    "EXECUTION_NOT_CLAIMED",
    "METHOD_NOT_IMPLEMENTED",
    "UNDECODABLE_REQUEST",
    "DATABASE_UNAVAILABLE",
    "CONSOLE_METHOD_NOT_FOUND",
]
REASONS: frozenset[str] = frozenset(get_args(Reason))


def known_reason(text: str, fallback: Reason) -> Reason:
    """`text` if it is a reason of the contract (say one sent by another replica), else `fallback`."""
    for reason in get_args(Reason):
        if reason == text:
            return reason  # type: ignore[no-any-return]
    return fallback


def describe(value: Any) -> str:
    """A value's JSON kind, as an error message names it: people see JSON, not Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: a dotted path to it and what is wrong."""

    field: str
    description: str


class RunctlError(Exception):
    """Base of every error a client may see; the class says the status code (INTERNAL for this base).
    Every raise names its `reason` (no class default): the one ErrorInfo reason the client reads."""

    def __init__(self, message: str, *, reason: Reason, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason: Reason = reason
        # Machine-readable facts for the client (ErrorInfo metadata), e.g. where to resume a stream.
        self.metadata = dict(metadata or {})


class NotFound(RunctlError):
    """NOT_FOUND: no such object in the caller's workspace."""


class AlreadyExists(RunctlError):
    """ALREADY_EXISTS."""


class FailedPrecondition(RunctlError):
    """FAILED_PRECONDITION: the object's state does not allow the call."""


class Aborted(RunctlError):
    """ABORTED: a concurrency conflict (say a stale expected version); the caller may re-read and retry."""


class PermissionDenied(RunctlError):
    """PERMISSION_DENIED."""


class Unauthenticated(RunctlError):
    """UNAUTHENTICATED: the credentials do not admit the caller."""


class ResourceExhausted(RunctlError):
    """RESOURCE_EXHAUSTED."""


class Unavailable(RunctlError):
    """UNAVAILABLE: try again (later, or on another replica)."""


class InvalidArgument(RunctlError):
    """INVALID_ARGUMENT: bad input; carries every field violation found, not only the first."""

    def __init__(
        self,
        message: str,
        violations: list[FieldViolation] | None = None,
        *,
        reason: Reason,
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = list(violations or [])

    @classmethod
    def single(cls, field: str, description: str, *, reason: Reason) -> InvalidArgument:
        return cls(f"{field}: {description}", [FieldViolation(field, description)], reason=reason)
