"""Errors raised by the runctl client: a gRPC status with its google.rpc details, read once.

Every error is a `grpc.RpcError` with `code()` and `details()`, as grpc's own errors are, so code that
already catches `grpc.RpcError` keeps working; it also says which field of the request was wrong
(`field_violations`, from a google.rpc.BadRequest) and the stable reason (`reason`, from ErrorInfo).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "RpcFailure",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "from_rpc_error",
]

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request (google.rpc.BadRequest.FieldViolation)."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}" if self.field else self.description


class RpcFailure(grpc.RpcError):
    """A call that ended with a non-OK status.

    `code()` and `details()` answer as on grpc's own errors; `reason` is the ErrorInfo reason (such as
    "EXECUTION_NOT_PAUSED"), `field_violations` the BadRequest violations, `target` the server address
    and `method` the full RPC name.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: Iterable[FieldViolation] = (),
        target: str = "",
        method: str = "",
        attempts: int = 1,
        trailers: Sequence[Any] = (),
    ) -> None:
        super().__init__(message)
        self._code = code
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.field_violations = list(field_violations)
        self.target = target
        self.method = method
        self.attempts = attempts
        self.trailers = tuple(trailers)

    def code(self) -> grpc.StatusCode:
        """The gRPC status code."""
        return self._code

    def details(self) -> str:
        """The status message, as `grpc.RpcError.details()`."""
        return self.message

    def trailing_metadata(self) -> tuple[Any, ...]:
        """The call's trailers, as on grpc's own errors (`grpc_status.rpc_status.from_call` reads
        the google.rpc.Status from them)."""
        return self.trailers

    @property
    def code_name(self) -> str:
        """The status code's name, e.g. "NOT_FOUND"."""
        return str(self._code.name)

    def __str__(self) -> str:
        return f"{self.code_name}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code_name}, {self.message!r}, reason={self.reason!r})"


class InvalidArgumentError(RpcFailure):
    """INVALID_ARGUMENT: the request is malformed; see `field_violations`."""


class NotFoundError(RpcFailure):
    """NOT_FOUND: no such workflow, run, batch or pause point (or it belongs to another workspace)."""


class AlreadyExistsError(RpcFailure):
    """ALREADY_EXISTS: e.g. a workflow id that is taken."""


class FailedPreconditionError(RpcFailure):
    """FAILED_PRECONDITION: the object's state does not allow the call (see `reason`)."""


class AbortedError(RpcFailure):
    """ABORTED: a concurrency conflict; re-read and retry."""


class UnauthenticatedError(RpcFailure):
    """UNAUTHENTICATED: a missing or wrong API key or webhook secret."""


class PermissionDeniedError(RpcFailure):
    """PERMISSION_DENIED: the key may not do this."""


class ResourceExhaustedError(RpcFailure):
    """RESOURCE_EXHAUSTED: a limit was hit."""


class DeadlineExceededError(RpcFailure):
    """DEADLINE_EXCEEDED: no answer within the call's timeout."""


class UnimplementedError(RpcFailure):
    """UNIMPLEMENTED: this server does not implement the method (yet)."""


class UnavailableError(RpcFailure):
    """UNAVAILABLE: the server could not be reached, even after the retries the client made."""


_BY_CODE: dict[grpc.StatusCode, type[RpcFailure]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}


def _call_code(error: grpc.RpcError) -> grpc.StatusCode:
    code = getattr(error, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _call_details(error: grpc.RpcError) -> str:
    details = getattr(error, "details", None)
    value = details() if callable(details) else None
    return value if isinstance(value, str) else str(error)


def _trailers(error: grpc.RpcError) -> tuple[Any, ...]:
    """The trailing metadata of a failed call, (key, value) pairs as grpc gives them (empty when it
    has none or cannot say)."""
    trailing = getattr(error, "trailing_metadata", None)
    try:
        pairs = trailing() if callable(trailing) else None
    except Exception:  # a call object that cannot say: no trailers
        return ()
    return tuple(pairs or ())


def _status_details(trailers: Sequence[Any]) -> Any:
    """The google.rpc.Status in the trailers of a failed call, or None."""
    for key, value in trailers:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:  # malformed trailer: keep the plain message
                return None
            return status
    return None


def from_rpc_error(
    error: grpc.RpcError, *, target: str = "", method: str = "", attempts: int = 1
) -> RpcFailure:
    """Turn any grpc error (sync or aio) into the matching RpcFailure subclass, details unpacked."""
    if isinstance(error, RpcFailure):
        return error
    code = _call_code(error)
    message = _call_details(error)
    reason = ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    trailers = _trailers(error)
    status = _status_details(trailers)
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = str(info.reason)
                metadata = {str(k): str(v) for k, v in info.metadata.items()}
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations.extend(
                    FieldViolation(str(v.field), str(v.description)) for v in bad_request.field_violations
                )
    error_type = _BY_CODE.get(code, RpcFailure)
    return error_type(
        code,
        message,
        reason=reason,
        metadata=metadata,
        field_violations=violations,
        target=target,
        method=method,
        attempts=attempts,
        trailers=trailers,
    )
