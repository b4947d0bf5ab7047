"""Named driver commands, and messages to runs as JSON.

Whatever steers a run runs inside the run's driver. The driver may be in another replica, so a
command is a name plus JSON arguments (never a closure), its answer is JSON, and a message to a run can
be written to the run inbox and read back by whichever replica drives the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runctl_server import errors
from runctl_server.nodes.base import NodeFailure, NodeResult

if TYPE_CHECKING:
    from runctl_server.engine.scheduler import Driven, Message, Scheduler

Command = Callable[["Scheduler", "Driven", dict[str, Any]], Any]

COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    """Register a driver command under `name` (unique)."""

    def register(handler: Command) -> Command:
        if name in COMMANDS and COMMANDS[name] is not handler:
            raise RuntimeError(f"driver command {name!r} is registered twice")
        COMMANDS[name] = handler
        return handler

    return register


# -- errors ----------------------------------------------------------------------------------------

_ERROR_TYPES: dict[str, type[errors.RunctlError]] = {
    cls.__name__: cls
    for cls in (
        errors.RunctlError,
        errors.NotFound,
        errors.AlreadyExists,
        errors.FailedPrecondition,
        errors.Aborted,
        errors.PermissionDenied,
        errors.Unauthenticated,
        errors.ResourceExhausted,
        errors.Unavailable,
        errors.InvalidArgument,
    )
}


def error_to_json(exc: BaseException) -> dict[str, Any]:
    if not isinstance(exc, errors.RunctlError):
        return {"type": "RunctlError", "message": "the run could not be changed", "reason": "INTERNAL"}
    encoded: dict[str, Any] = {
        "type": type(exc).__name__ if type(exc).__name__ in _ERROR_TYPES else "RunctlError",
        "message": exc.message,
        "reason": exc.reason,
        "metadata": exc.metadata,
    }
    if isinstance(exc, errors.InvalidArgument):
        encoded["violations"] = [[v.field, v.description] for v in exc.violations]
    return encoded


def error_from_json(data: dict[str, Any]) -> errors.RunctlError:
    cls = _ERROR_TYPES.get(str(data.get("type")), errors.RunctlError)
    message = str(data.get("message", ""))
    # Replicas of one deployment share the contract; a reason from another version is not forwarded.
    reason = errors.known_reason(str(data.get("reason") or ""), fallback="INTERNAL")
    if cls is errors.InvalidArgument:
        violations = [errors.FieldViolation(str(f), str(d)) for f, d in data.get("violations", [])]
        return errors.InvalidArgument(message, violations, reason=reason)
    return cls(message, reason=reason, metadata=dict(data.get("metadata") or {}))


# -- messages --------------------------------------------------------------------------------------


def message_to_json(message: Message) -> dict[str, Any]:
    encoded: dict[str, Any] = {"kind": message.kind, "node_key": message.node_key, "data": message.data}
    if message.result is not None:
        result = message.result
        if result.suspend is not None:
            raise ValueError("a suspension never leaves its driver")
        encoded["result"] = {
            "output": result.output,
            "branches": sorted(result.branches) if result.branches is not None else None,
        }
    if message.error is not None:
        encoded["error"] = {
            "message": message.error.message,
            "code": message.error.code,
            "retryable": message.error.retryable,
        }
    return encoded


def message_from_json(data: dict[str, Any]) -> Message:
    from runctl_server.engine.scheduler import Message

    result = None
    if isinstance(data.get("result"), dict):
        branches = data["result"].get("branches")
        result = NodeResult(
            output=data["result"].get("output"),
            branches=frozenset(branches) if branches is not None else None,
        )
    error = None
    if isinstance(data.get("error"), dict):
        failure = data["error"]
        error = NodeFailure(
            str(failure.get("message", "")),
            code=str(failure.get("code") or "NODE_FAILED"),
            retryable=bool(failure.get("retryable", True)),
        )
    return Message(
        str(data["kind"]), str(data.get("node_key", "")), result=result, error=error, data=dict(data["data"])
    )


def reply_to_json(result: Any = None, error: BaseException | None = None) -> dict[str, Any]:
    """A handler's answer as stored in the run inbox."""
    if error is not None:
        return {"error": error_to_json(error)}
    return {"result": result}
