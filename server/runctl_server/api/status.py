"""The one place that turns domain errors into gRPC statuses with google.rpc details."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from runctl.v1 import error_pb2
from runctl_server import errors

log = logging.getLogger(__name__)

ERROR_DOMAIN = "runctl"
# ErrorInfo.reason is an ErrorReason value's name without this prefix (see proto/runctl/v1/error.proto).
REASON_PREFIX = "ERROR_REASON_"
UNSPECIFIED = "UNSPECIFIED"
# The reasons the contract lets the server send: every ErrorReason value but UNSPECIFIED.
CONTRACT_REASONS = frozenset(
    value.name.removeprefix(REASON_PREFIX)
    for value in error_pb2.ErrorReason.DESCRIPTOR.values
    if value.number != error_pb2.ERROR_REASON_UNSPECIFIED
)
# Details travel in trailers, which clients and proxies cap: gRPC's own clients start refusing trailers
# past 8 KB. So at most this many violations are sent, and every text that may echo a caller's value
# is cut (in UTF-8 bytes: grpc-message percent-encodes each non-ASCII byte as three characters), so
# that a 20,000-character id is answered with its INVALID_ARGUMENT or NOT_FOUND, not a dropped stream.
# Worst case: a 1 KB message is 3 KB as grpc-message, and the 2 KB status 2.7 KB as base64.
MAX_VIOLATIONS = 50
MAX_MESSAGE = 1024
MAX_TEXT = 200
MAX_STATUS_BYTES = 2048

_CODES: list[tuple[type[errors.RunctlError], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Aborted, grpc.StatusCode.ABORTED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def grpc_code(error: errors.RunctlError) -> grpc.StatusCode:
    for error_type, code in _CODES:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.INTERNAL


def contract_reason(error: errors.RunctlError) -> str:
    """The error's reason, which mypy already holds to the contract's words; one that is not (a
    value that came around the type checker) is logged and sent as UNSPECIFIED, never invented."""
    if error.reason in CONTRACT_REASONS:
        return error.reason
    log.error(
        "error reason %r is not a runctl.v1.ErrorReason; sent as %s: %s", error.reason, UNSPECIFIED, error
    )
    return UNSPECIFIED


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_grpc_status(error: errors.RunctlError) -> grpc.Status:
    """A status whose trailers carry ErrorInfo and, for bad input, a BadRequest with every violation."""
    code = grpc_code(error)
    info = error_details_pb2.ErrorInfo(
        reason=contract_reason(error),
        domain=ERROR_DOMAIN,
        metadata={key: shortened(value, MAX_TEXT) for key, value in error.metadata.items()},
    )
    message = shortened(describe(error), MAX_MESSAGE)
    violations = error.violations[:MAX_VIOLATIONS] if isinstance(error, errors.InvalidArgument) else []
    while True:
        details = [_pack(info)]
        if violations:
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=shortened(v.field, MAX_TEXT), description=shortened(v.description, MAX_TEXT)
                    )
                    for v in violations
                ]
            )
            details.append(_pack(bad_request))
        status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
        if len(violations) <= 1 or status.ByteSize() <= MAX_STATUS_BYTES:
            break
        violations = violations[: len(violations) // 2]
    converted: grpc.Status = rpc_status.to_status(status)
    return converted


def shortened(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8 (never inside a character), saying how much was
    left out."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    kept = encoded[:limit].decode(errors="ignore")
    return f"{kept}... ({len(text) - len(kept)} more characters)"


def describe(error: errors.RunctlError, shown: int = 5) -> str:
    """The message, with the first field violations spelled out for readers of plain status text."""
    if not isinstance(error, errors.InvalidArgument) or not error.violations:
        return error.message
    listed = [f"{v.field}: {v.description}" for v in error.violations[:shown]]
    if listed[0] in error.message:
        return error.message
    more = len(error.violations) - shown
    return f"{error.message}: " + "; ".join(listed) + (f"; and {more} more" if more > 0 else "")


def unimplemented_status(method: str) -> grpc.Status:
    status = status_pb2.Status(
        code=code_pb2.UNIMPLEMENTED,
        message=f"{method} is not implemented by this runctl server yet",
        details=[_pack(error_details_pb2.ErrorInfo(reason="METHOD_NOT_IMPLEMENTED", domain=ERROR_DOMAIN))],
    )
    converted: grpc.Status = rpc_status.to_status(status)
    return converted
