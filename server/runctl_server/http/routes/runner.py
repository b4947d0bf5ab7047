"""The local runner API: status, active runs, stop, stop all, continue, trace logs and
pause control. The batch routes are in runner_batches.py, the SSE stream in http/sse.py.

Calls whose `executionId` is optional act on the most recent run that qualifies. gRPC has no such
default (an empty id is INVALID_ARGUMENT there), so these routes pick the run with the engine's
`most_recent` (the most recently created run in the statuses each route names) and call the gRPC method
with its id. Errors answer `{"success": false, "message", "error", "details"}`.
"""

from __future__ import annotations

from typing import Any

from runctl.v1 import common_pb2, execution_pb2
from runctl_server.engine.model import ACTIVE_EXECUTION, PAUSED
from runctl_server.errors import InvalidArgument, NotFound
from runctl_server.http import sse
from runctl_server.http.errors import runner_error
from runctl_server.http.routes import runner_batches
from runctl_server.http.routing import Call, Endpoint, Param
from runctl_server.http.runner_shapes import (
    EXECUTION_STATUS_SCHEMA,
    NULLABLE_STRING,
    PAUSE_WORDS,
    STATUS_WORDS,
    RunStatus,
    active_execution,
    execution_status,
)

E = execution_pb2
PAGE_SIZE = 1000
MAX_ACTIVE_LISTED = 10_000  # `totalActive` still counts every one
NO_ACTIVE = "there is no active execution"
NO_PAUSED = "there is no paused execution"
NO_UNFINISHED = "there is no unfinished execution"
ACTIVE_STATUSES = [
    common_pb2.EXECUTION_STATUS_QUEUED,
    common_pb2.EXECUTION_STATUS_RUNNING,
    common_pb2.EXECUTION_STATUS_PAUSED,
]
# The API's pause-control actions; "stop" is StopExecution (None), the others ControlPause.
PAUSE_ACTIONS: dict[str, tuple[execution_pb2.PauseAction.ValueType | None, str]] = {
    "continue": (E.PAUSE_ACTION_CONTINUE, "Execution continued"),
    "stop": (None, "Execution stopped"),
    "skip": (E.PAUSE_ACTION_SKIP, "Paused node skipped"),
    "continueWithoutBreakpoint": (
        E.PAUSE_ACTION_CONTINUE_WITHOUT_BREAKPOINT,
        "Execution continued without breakpoints",
    ),
}

EXECUTION_ID_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {"executionId": {"type": "string", "description": "Default: the most recent one"}},
}


def _outcome(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"success": {"type": "boolean"}, "message": {"type": "string"}, **properties},
        "required": ["success", "message", *required],
    }


def optional_string(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument.single(
            name, f"must be a string, got {type(value).__name__}", reason="FIELD_INVALID"
        )
    return value


async def target(call: Call, execution_id: str, statuses: tuple[str, ...], none: str) -> str:
    """The run a call names, or the local runner API's default: the most recently created run in one of
    `statuses` (any run when empty); NOT_FOUND with the message `none` when there is no such run."""
    if execution_id:
        return execution_id
    row = await call.engine.queries.most_recent(call.workspace_id, statuses)
    if row is None:
        raise NotFound(none, reason="EXECUTION_NOT_FOUND")
    return row.id


async def _status(call: Call, execution_id: str) -> dict[str, Any]:
    request = E.GetExecutionRequest(execution_id=execution_id, view=E.EXECUTION_VIEW_BASIC)
    reply = await call.unary(call.servicers.executions.GetExecution, request)
    return execution_status(RunStatus.of(reply.execution))


async def status_by_path(call: Call) -> dict[str, Any]:
    return await _status(call, call.path["executionId"])


async def status_by_query(call: Call) -> dict[str, Any]:
    execution_id = await target(call, call.query("executionId") or "", (), "there are no executions yet")
    return await _status(call, execution_id)


async def active(call: Call) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    token, total = "", 0
    while len(items) < MAX_ACTIVE_LISTED:
        request = E.ListExecutionsRequest(
            statuses=ACTIVE_STATUSES, page_size=PAGE_SIZE, page_token=token, view=E.EXECUTION_VIEW_BASIC
        )
        reply = await call.unary(call.servicers.executions.ListExecutions, request)
        items.extend(active_execution(RunStatus.of(execution)) for execution in reply.executions)
        total, token = reply.total_size, reply.next_page_token
        if not token:
            break
    return {"totalActive": total, "executions": items[:MAX_ACTIVE_LISTED]}


async def stop(call: Call) -> dict[str, Any]:
    body = await call.json_body()
    execution_id = await target(call, optional_string(body, "executionId"), ACTIVE_EXECUTION, NO_ACTIVE)
    request = E.StopExecutionRequest(execution_id=execution_id)
    reply = await call.unary(call.servicers.executions.StopExecution, request)
    return {
        "success": True,
        "message": "Execution stopped" if reply.was_running else "Queued execution cancelled",
        "executionId": reply.execution_id,
        "wasRunning": reply.was_running,
        "wasQueued": reply.was_queued,
    }


async def stop_all(call: Call) -> dict[str, Any]:
    reply = await call.unary(call.servicers.executions.StopAllExecutions, E.StopAllExecutionsRequest())
    return {
        "success": True,
        "message": "All executions stopped",
        "totalBatches": len(reply.batch_ids),
        "totalStopped": reply.running_stopped + reply.queued_cancelled,
        "runningStopped": reply.running_stopped,
        "queuedCancelled": reply.queued_cancelled,
        "batches": list(reply.batch_ids),
    }


async def continue_run(call: Call) -> dict[str, Any]:
    body = await call.json_body()
    execution_id = await target(call, optional_string(body, "executionId"), (PAUSED,), NO_PAUSED)
    request = E.ControlPauseRequest(execution_id=execution_id, action=E.PAUSE_ACTION_CONTINUE)
    await call.unary(call.servicers.executions.ControlPause, request)
    return {"success": True, "message": "Execution continued"}


async def trace_logs(call: Call) -> dict[str, Any]:
    body = await call.json_body(required=True)
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise InvalidArgument.single("enabled", "is required: true or false", reason="FIELD_REQUIRED")
    execution_id = await target(call, optional_string(body, "executionId"), ACTIVE_EXECUTION, NO_UNFINISHED)
    request = E.SetTraceLogsRequest(execution_id=execution_id, enabled=enabled)
    reply = await call.unary(call.servicers.executions.SetTraceLogs, request)
    return {
        "success": True,
        "message": f"Trace logs {'enabled' if reply.enabled else 'disabled'}",
        "executionId": reply.execution_id,
        "enabled": reply.enabled,
    }


async def pause_control(call: Call) -> dict[str, Any]:
    body = await call.json_body(required=True)
    word = body.get("action")
    if not isinstance(word, str) or word not in PAUSE_ACTIONS:
        allowed = ", ".join(PAUSE_ACTIONS)
        raise InvalidArgument.single(
            "action", f"must be one of {allowed}, got {word!r}", reason="FIELD_INVALID"
        )
    action, message = PAUSE_ACTIONS[word]
    execution_id = await target(call, optional_string(body, "executionId"), (PAUSED,), NO_PAUSED)
    if action is None:
        stop_request = E.StopExecutionRequest(execution_id=execution_id, reason="stopped from its pause")
        await call.unary(call.servicers.executions.StopExecution, stop_request)
    else:
        request = E.ControlPauseRequest(execution_id=execution_id, action=action)
        await call.unary(call.servicers.executions.ControlPause, request)
    return {"success": True, "message": message, "executionId": execution_id, "action": word}


def _runner(method: str, path: str, handler: Any, summary: str, **kwargs: Any) -> Endpoint:
    kwargs.setdefault("error_statuses", (400, 404, 409))
    return Endpoint(method, path, handler, summary, "local runner", error_body=runner_error, **kwargs)


ACTIVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "totalActive": {"type": "integer"},
        "executions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "executionId": {"type": "string"},
                    "status": {"type": "string", "enum": STATUS_WORDS},
                    "currentNodeId": NULLABLE_STRING,
                    "pausedNodeId": {**NULLABLE_STRING, "description": "Only for a paused run"},
                    "pauseReason": {"type": "string", "enum": PAUSE_WORDS, "description": "Only if paused"},
                },
                "required": ["executionId", "status", "currentNodeId"],
            },
        },
    },
    "required": ["totalActive", "executions"],
}

# Order matters: /execution/status must win over /execution/{executionId}.
ENDPOINTS: list[Endpoint] = [
    _runner(
        "GET",
        "/api/workflows/execution/status",
        status_by_query,
        "Get an execution's status, or the most recent execution's",
        query=(Param("executionId", {"type": "string"}, "Default: the most recent execution"),),
        response=EXECUTION_STATUS_SCHEMA,
        error_statuses=(404,),
    ),
    _runner(
        "GET",
        "/api/workflows/executions/active",
        active,
        "List the active (queued, running or paused) executions",
        response=ACTIVE_SCHEMA,
        error_statuses=(),
    ),
    _runner(
        "POST",
        "/api/workflows/execution/stop",
        stop,
        "Stop an execution, or the most recent active one",
        body=EXECUTION_ID_BODY,
        response=_outcome(
            {
                "executionId": {"type": "string"},
                "wasRunning": {"type": "boolean"},
                "wasQueued": {"type": "boolean"},
            },
            ["executionId", "wasRunning", "wasQueued"],
        ),
    ),
    _runner(
        "POST",
        "/api/workflows/execution/stop-all",
        stop_all,
        "Stop every running batch and execution, cancel every queued one",
        response=_outcome(
            {
                "totalBatches": {"type": "integer"},
                "totalStopped": {"type": "integer"},
                "runningStopped": {"type": "integer"},
                "queuedCancelled": {"type": "integer"},
                "batches": {"type": "array", "items": {"type": "string"}},
            },
            ["totalBatches", "totalStopped", "runningStopped", "queuedCancelled", "batches"],
        ),
        error_statuses=(),
    ),
    _runner(
        "POST",
        "/api/workflows/execution/continue",
        continue_run,
        "Continue a paused execution (breakpoint or wait node), or the most recently paused one",
        body=EXECUTION_ID_BODY,
        response=_outcome({}, []),
    ),
    _runner(
        "POST",
        "/api/workflows/execution/trace-logs",
        trace_logs,
        "Turn trace logs on or off for an execution, or the most recent active one",
        body={
            "type": "object",
            "properties": {"enabled": {"type": "boolean"}, "executionId": {"type": "string"}},
            "required": ["enabled"],
        },
        response=_outcome(
            {"executionId": {"type": "string"}, "enabled": {"type": "boolean"}}, ["executionId", "enabled"]
        ),
    ),
    _runner(
        "POST",
        "/api/workflows/execution/pause-control",
        pause_control,
        "Continue, stop, skip, or continue without breakpoints a paused execution",
        body={
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": list(PAUSE_ACTIONS)},
                "executionId": {"type": "string"},
            },
            "required": ["action"],
        },
        response=_outcome(
            {"executionId": {"type": "string"}, "action": {"type": "string", "enum": list(PAUSE_ACTIONS)}},
            ["executionId", "action"],
        ),
    ),
    *runner_batches.ENDPOINTS,
    sse.ENDPOINT,
    _runner(
        "GET",
        "/api/workflows/execution/{executionId}",
        status_by_path,
        "Get an execution's status",
        response=EXECUTION_STATUS_SCHEMA,
        error_statuses=(404,),
    ),
]
