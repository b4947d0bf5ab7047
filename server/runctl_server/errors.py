"""Domain errors. Engine and store raise these; api/ and http/ map them to status codes in one place each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: a dotted path to it and what is wrong."""

    field: str
    description: str


class RunctlError(Exception):
    """Base of every error a client may see. `reason` is a stable UPPER_SNAKE identifier."""

    reason = "RUNCTL_ERROR"

    def __init__(
        self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        # Machine-readable facts for the client (ErrorInfo metadata), e.g. where to resume a stream.
        self.metadata = dict(metadata or {})
        if reason:
            self.reason = reason


class NotFound(RunctlError):
    reason = "NOT_FOUND"


class AlreadyExists(RunctlError):
    reason = "ALREADY_EXISTS"


class FailedPrecondition(RunctlError):
    reason = "FAILED_PRECONDITION"


class Aborted(RunctlError):
    """A concurrency conflict (say a stale expected version); the caller may re-read and retry."""

    reason = "ABORTED"


class PermissionDenied(RunctlError):
    reason = "PERMISSION_DENIED"


class Unauthenticated(RunctlError):
    reason = "UNAUTHENTICATED"


class ResourceExhausted(RunctlError):
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(RunctlError):
    reason = "UNAVAILABLE"


class InvalidArgument(RunctlError):
    """Bad input; carries every field violation found, not only the first."""

    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        message: str,
        violations: list[FieldViolation] | None = None,
        *,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.violations = list(violations or [])

    @classmethod
    def single(cls, field: str, description: str) -> InvalidArgument:
        return cls(f"{field}: {description}", [FieldViolation(field, description)])
