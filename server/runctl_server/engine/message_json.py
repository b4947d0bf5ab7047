"""Messages to runs, and the answers of driver commands, as JSON: a message can be written to the run
inbox and read back by whichever replica drives the run."""

from __future__ import annotations

from typing import Any

from runctl_server import errors
from runctl_server.engine.messages import (
    ChildCompleted,
    ChildFailed,
    Command,
    Message,
    TaskCompleted,
    TaskFailed,
)
from runctl_server.nodes.base import NodeFailure

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
# The inbox format is the one replicas have always exchanged: {"kind", "node_key", "data", "error"}.


def _failure_to_json(failure: NodeFailure) -> dict[str, Any]:
    return {"message": failure.message, "code": failure.code, "retryable": failure.retryable}


def _failure_from_json(data: Any) -> NodeFailure:
    failure = data if isinstance(data, dict) else {}
    return NodeFailure(
        str(failure.get("message", "")),
        code=str(failure.get("code") or "NODE_FAILED"),
        retryable=bool(failure.get("retryable", True)),
    )


def message_to_json(message: Message) -> dict[str, Any]:
    """A message another replica's driver can read back; local-only messages never leave their process."""
    match message:
        case Command(name=name, args=args, traceparent=traceparent):
            data: dict[str, Any] = {"command": name, "args": dict(args)}
            if traceparent is not None:
                data["traceparent"] = traceparent
            return {"kind": "control", "node_key": "", "data": data}
        case TaskCompleted(node_key=node_key, task_id=task_id, output=output):
            return {"kind": "task_done", "node_key": node_key, "data": {"taskId": task_id, "output": output}}
        case TaskFailed(node_key=node_key, task_id=task_id, error=error):
            return {
                "kind": "task_failed",
                "node_key": node_key,
                "data": {"taskId": task_id},
                "error": _failure_to_json(error),
            }
        case ChildCompleted(node_key=node_key, output=output):
            return {"kind": "child_done", "node_key": node_key, "data": {"output": output}}
        case ChildFailed(node_key=node_key, error=error):
            return {
                "kind": "child_failed",
                "node_key": node_key,
                "data": {},
                "error": _failure_to_json(error),
            }
    raise ValueError(f"{type(message).__name__} never leaves its driver's process")


def message_from_json(
    data: dict[str, Any], *, inbox_id: int | None = None, inbox_sender: str = ""
) -> Message:
    """A message read from the run inbox (row `inbox_id`, written by replica `inbox_sender`)."""
    kind = str(data["kind"])
    node_key = str(data.get("node_key", ""))
    body = dict(data.get("data") or {})
    origin: dict[str, Any] = {"inbox_id": inbox_id, "inbox_sender": inbox_sender}
    if kind == "control":
        traceparent = body.get("traceparent")
        return Command(
            name=str(body.get("command")),
            args=dict(body.get("args") or {}),
            traceparent=str(traceparent) if traceparent is not None else None,
            **origin,
        )
    if kind == "task_done":
        return TaskCompleted(
            node_key=node_key, task_id=str(body.get("taskId")), output=body.get("output"), **origin
        )
    if kind == "task_failed":
        error = _failure_from_json(data.get("error"))
        return TaskFailed(node_key=node_key, task_id=str(body.get("taskId")), error=error, **origin)
    if kind == "child_done":
        return ChildCompleted(node_key=node_key, output=body.get("output"), **origin)
    if kind == "child_failed":
        return ChildFailed(node_key=node_key, error=_failure_from_json(data.get("error")), **origin)
    raise ValueError(f"unknown message kind {kind!r} in the run inbox")


def reply_to_json(result: Any = None, error: BaseException | None = None) -> dict[str, Any]:
    """A handler's answer as stored in the run inbox."""
    if error is not None:
        return {"error": error_to_json(error)}
    return {"result": result}
