"""The local runner API's batch routes: a batch's status with its runs, the paginated batch history,
stop a batch, clear every finished batch. Times are epoch milliseconds, as the API shows them.

The batch history pages by `limit`/`offset` as the local runner API documents; BatchService.ListBatches pages
by tokens only, so this route calls the engine's batch list (the one ListBatches calls) with the offset,
which the database applies: a large offset costs no walk through the pages before it."""

from __future__ import annotations

from typing import Any

from runctl.v1 import batch_pb2, batch_resource_pb2
from runctl_server.api import batch_convert
from runctl_server.errors import InvalidArgument
from runctl_server.http.errors import runner_error
from runctl_server.http.routing import Call, Endpoint, Param
from runctl_server.http.runner_shapes import (
    BATCH_STATUS_FILTER,
    ITEM_STATUS,
    NULLABLE_STRING,
    SOURCE_TYPE,
    batch_status,
    batch_summary,
)

INT32_MAX = 2**31 - 1
DEFAULT_LIMIT = 20
MAX_LIMIT = 100  # larger limits are clamped; the answer's `limit` says what was applied


async def get_batch(call: Call) -> dict[str, Any]:
    reply = await call.unary(
        call.servicers.batches.GetBatch, batch_pb2.GetBatchRequest(batch_id=call.path["batchId"])
    )
    return batch_status(reply.batch)


async def list_batches(call: Call) -> dict[str, Any]:
    word = call.query("status") or ""
    if word and word not in BATCH_STATUS_FILTER:
        raise InvalidArgument.single(
            "status",
            f"must be one of {', '.join(BATCH_STATUS_FILTER)}, got {word!r}",
            reason="FIELD_INVALID",
        )
    limit = call.int_query("limit", DEFAULT_LIMIT, minimum=1, maximum=INT32_MAX)
    offset = call.int_query("offset", 0, minimum=0, maximum=INT32_MAX)
    status = batch_convert.status_word(
        BATCH_STATUS_FILTER.get(word, batch_resource_pb2.BATCH_STATUS_UNSPECIFIED)
    )
    page = await call.engine.batch_queries.list(
        call.workspace_id, statuses=(status,) if status else (), limit=min(limit, MAX_LIMIT), offset=offset
    )
    return {
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
        "batches": [batch_summary(batch_convert.batch(view)) for view in page.batches],
    }


async def stop_batch(call: Call) -> dict[str, Any]:
    request = batch_pb2.StopBatchRequest(batch_id=call.path["batchId"])
    reply = await call.unary(call.servicers.batches.StopBatch, request)
    return {
        "success": True,
        "message": "Batch stopped",
        "batchId": reply.batch_id,
        "stoppedExecutions": reply.running_stopped + reply.queued_cancelled,
        "runningStopped": reply.running_stopped,
        "queuedCancelled": reply.queued_cancelled,
    }


async def clear_batches(call: Call) -> dict[str, Any]:
    reply = await call.unary(call.servicers.batches.ClearBatches, batch_pb2.ClearBatchesRequest())
    body: dict[str, Any] = {
        "success": True,
        "message": "All batches and executions cleared",
        "batchesDeleted": reply.batches_deleted,
        "executionsDeleted": reply.executions_deleted,
    }
    if reply.skipped_batch_ids:  # still running: kept
        body["message"] = "Finished batches and their executions cleared; running batches were kept"
        body["skippedBatches"] = list(reply.skipped_batch_ids)
    return body


BATCH_WORDS = list(BATCH_STATUS_FILTER)
HEAD: dict[str, Any] = {
    "batchId": {"type": "string"},
    "status": {"type": "string", "enum": BATCH_WORDS},
    "sourceType": {"type": "string", "enum": list(SOURCE_TYPE.values())},
    "folderPath": {"type": "string", "description": "Only when sourceType is folder"},
    "totalWorkflows": {"type": "integer"},
    "completed": {"type": "integer"},
    "failed": {"type": "integer"},
    "startTime": {"type": "integer", "description": "Epoch milliseconds"},
    "endTime": {"type": "integer", "nullable": True, "description": "Epoch milliseconds; null while running"},
}
ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "executionId": {"type": "string"},
        "workflowFileName": {"type": "string", "description": "For file and folder sources"},
        "workflowPath": {"type": "string", "description": "For file and folder sources"},
        "workflowId": {"type": "string", "description": "For stored-workflow sources"},
        "status": {"type": "string", "enum": sorted(set(ITEM_STATUS.values()))},
        "currentNodeId": {**NULLABLE_STRING, "description": "Only while running"},
        "error": {"type": "string", "description": "Only when status is error"},
    },
    "required": ["executionId", "status"],
}
BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **HEAD,
        "running": {"type": "integer"},
        "queued": {"type": "integer"},
        "executions": {"type": "array", "items": ITEM_SCHEMA},
    },
    "required": [
        *("batchId", "status", "sourceType", "totalWorkflows", "completed", "running", "queued", "failed"),
        *("startTime", "endTime", "executions"),
    ],
}
HISTORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "total": {"type": "integer"},
        "limit": {"type": "integer"},
        "offset": {"type": "integer"},
        "batches": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {**HEAD, "duration": {"type": "integer", "description": "Milliseconds"}},
                "required": [
                    *("batchId", "status", "sourceType", "totalWorkflows", "completed", "failed"),
                    *("startTime", "endTime", "duration"),
                ],
            },
        },
    },
    "required": ["total", "limit", "offset", "batches"],
}


def _outcome(counts: tuple[str, ...], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "message": {"type": "string"},
            **(extra or {}),
            **{name: {"type": "integer"} for name in counts},
        },
        "required": ["success", "message", *(extra or {}), *counts],
    }


CLEAR_SCHEMA = _outcome(("batchesDeleted", "executionsDeleted"))
CLEAR_SCHEMA["properties"]["skippedBatches"] = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Batches kept because they are still running; present only when there are some",
}

ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/workflows/execution/batch/{batchId}",
        get_batch,
        "Get a batch's status with its executions",
        "local runner",
        response=BATCH_SCHEMA,
        error_statuses=(404,),
        error_body=runner_error,
    ),
    Endpoint(
        "GET",
        "/api/workflows/executions/batches",
        list_batches,
        "List batches, newest first, with an optional status filter",
        "local runner",
        query=(
            Param("status", {"type": "string", "enum": BATCH_WORDS}, "Only batches in this status"),
            Param("limit", {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT}, "At most 100"),
            Param("offset", {"type": "integer", "minimum": 0, "default": 0}, "Batches to skip"),
        ),
        response=HISTORY_SCHEMA,
        error_statuses=(400,),
        error_body=runner_error,
    ),
    Endpoint(
        "POST",
        "/api/workflows/execution/batch/{batchId}/stop",
        stop_batch,
        "Stop a running batch: stop its running executions, cancel its queued ones",
        "local runner",
        response=_outcome(
            ("stoppedExecutions", "runningStopped", "queuedCancelled"), {"batchId": {"type": "string"}}
        ),
        error_statuses=(404, 409),
        error_body=runner_error,
    ),
    Endpoint(
        "DELETE",
        "/api/workflows/executions/batches/clear",
        clear_batches,
        "Delete every finished batch and its executions (running batches are kept)",
        "local runner",
        response=CLEAR_SCHEMA,
        error_statuses=(),
        error_body=runner_error,
    ),
]
