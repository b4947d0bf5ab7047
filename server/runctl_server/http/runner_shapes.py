"""The local runner API's words and objects, made from the proto messages.

Shared by the REST routes (http/routes/runner*.py) and the live updates (Socket.IO, http/live.py), so a
run looks the same whether it is polled or pushed.

The local runner API knows the run statuses idle, running, completed, error and stopped (plus queued for the
runs of a batch). runctl's richer lifecycle maps onto them:

- a QUEUED run is "idle" (it has not started), except inside a batch, whose items say "queued";
- a PAUSED run is "running" with `pausedNodeId` and `pauseReason`: "breakpoint", "wait-pause" (wait and
  approval nodes), "manual-pause" (an operator's PauseExecution) or "workflow-pause" (its workflow is
  paused, the workflow pause API).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf import timestamp_pb2

from runctl.v1 import batch_resource_pb2, common_pb2, execution_pb2

E = execution_pb2

RUN_STATUS = {
    common_pb2.EXECUTION_STATUS_QUEUED: "idle",
    common_pb2.EXECUTION_STATUS_RUNNING: "running",
    common_pb2.EXECUTION_STATUS_PAUSED: "running",
    common_pb2.EXECUTION_STATUS_COMPLETED: "completed",
    common_pb2.EXECUTION_STATUS_ERROR: "error",
    common_pb2.EXECUTION_STATUS_STOPPED: "stopped",
}
ITEM_STATUS = {**RUN_STATUS, common_pb2.EXECUTION_STATUS_QUEUED: "queued"}
PAUSE_REASON = {
    common_pb2.PAUSE_REASON_BREAKPOINT: "breakpoint",
    common_pb2.PAUSE_REASON_WAIT: "wait-pause",
    common_pb2.PAUSE_REASON_APPROVAL: "wait-pause",
    common_pb2.PAUSE_REASON_MANUAL: "manual-pause",
    common_pb2.PAUSE_REASON_WORKFLOW_PAUSED: "workflow-pause",
}
BATCH_STATUS = {
    batch_resource_pb2.BATCH_STATUS_RUNNING: "running",
    batch_resource_pb2.BATCH_STATUS_COMPLETED: "completed",
    batch_resource_pb2.BATCH_STATUS_ERROR: "error",
    batch_resource_pb2.BATCH_STATUS_STOPPED: "stopped",
}
BATCH_STATUS_FILTER = {word: status for status, word in BATCH_STATUS.items()}
SOURCE_TYPE = {
    batch_resource_pb2.BATCH_SOURCE_TYPE_FOLDER: "folder",
    batch_resource_pb2.BATCH_SOURCE_TYPE_FILES: "files",
    batch_resource_pb2.BATCH_SOURCE_TYPE_WORKFLOWS: "workflows",
}

STATUS_WORDS = ["idle", "running", "completed", "error", "stopped"]
PAUSE_WORDS = sorted(set(PAUSE_REASON.values()))
NULLABLE_STRING: dict[str, Any] = {"type": "string", "nullable": True}

EXECUTION_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "executionId": {"type": "string"},
        "status": {"type": "string", "enum": STATUS_WORDS},
        "currentNodeId": NULLABLE_STRING,
        "pausedNodeId": NULLABLE_STRING,
        "pauseReason": {"type": "string", "nullable": True, "enum": [*PAUSE_WORDS, None]},
        "error": {"type": "string", "description": "Error message; present only when status is error"},
    },
    "required": ["executionId", "status", "currentNodeId", "pausedNodeId", "pauseReason"],
}


def _or_none(text: str) -> str | None:
    return text or None


def millis(stamp: timestamp_pb2.Timestamp) -> int:
    return int(stamp.ToMilliseconds())


@dataclass
class RunStatus:
    """A run's short status: what the local runner API's status object and Socket.IO `execution-update` show.
    Made from a BASIC Execution; the live updates (http/live.py) keep it current from events."""

    execution_id: str
    status: common_pb2.ExecutionStatus.ValueType = common_pb2.EXECUTION_STATUS_UNSPECIFIED
    current_node_id: str = ""
    error: str = ""  # the error message when status is ERROR
    paused_node_id: str = ""
    pause_reason: common_pb2.PauseReason.ValueType = common_pb2.PAUSE_REASON_UNSPECIFIED
    batch_id: str = ""
    workflow_id: str = ""

    @classmethod
    def of(cls, execution: execution_pb2.Execution) -> RunStatus:
        return cls(
            execution_id=execution.id,
            status=execution.status,
            current_node_id=execution.current_node_id,
            error=execution.error.message,
            paused_node_id=execution.paused_node_id,
            pause_reason=execution.pause_reason,
            batch_id=execution.batch_id,
            workflow_id=execution.workflow_id,
        )


def execution_status(summary: RunStatus) -> dict[str, Any]:
    """The local runner API's execution status object (GET /api/workflows/execution/{executionId})."""
    paused = summary.status == common_pb2.EXECUTION_STATUS_PAUSED
    body: dict[str, Any] = {
        "executionId": summary.execution_id,
        "status": RUN_STATUS.get(summary.status, "idle"),
        "currentNodeId": _or_none(summary.current_node_id),
        "pausedNodeId": _or_none(summary.paused_node_id) if paused else None,
        "pauseReason": PAUSE_REASON.get(summary.pause_reason) if paused else None,
    }
    if summary.status == common_pb2.EXECUTION_STATUS_ERROR:
        body["error"] = summary.error or "execution failed"
    return body


def active_execution(summary: RunStatus) -> dict[str, Any]:
    """An item of GET /api/workflows/executions/active; a paused run also says where and why."""
    body: dict[str, Any] = {
        "executionId": summary.execution_id,
        "status": RUN_STATUS.get(summary.status, "idle"),
        "currentNodeId": _or_none(summary.current_node_id),
    }
    if summary.status == common_pb2.EXECUTION_STATUS_PAUSED:
        body["pausedNodeId"] = _or_none(summary.paused_node_id)
        body["pauseReason"] = PAUSE_REASON.get(summary.pause_reason)
    return body


def batch_item(item: batch_resource_pb2.BatchItem) -> dict[str, Any]:
    """An item of a batch's `executions`: file sources name the file, stored workflows their id."""
    status = ITEM_STATUS.get(item.status, "queued")
    body: dict[str, Any] = {"executionId": item.execution_id}
    if item.workflow_file_name or item.workflow_path:
        body["workflowFileName"] = item.workflow_file_name
        body["workflowPath"] = item.workflow_path
    if item.workflow_id:
        body["workflowId"] = item.workflow_id
    body["status"] = status
    if status == "running":
        body["currentNodeId"] = _or_none(item.current_node_id)
    if status == "error" and item.error:
        body["error"] = item.error
    return body


def _batch_head(batch: batch_resource_pb2.Batch) -> dict[str, Any]:
    body: dict[str, Any] = {
        "batchId": batch.batch_id,
        "status": BATCH_STATUS.get(batch.status, "running"),
        "sourceType": SOURCE_TYPE.get(batch.source_type, "workflows"),
    }
    if batch.source_type == batch_resource_pb2.BATCH_SOURCE_TYPE_FOLDER:
        body["folderPath"] = batch.folder_path
    body["totalWorkflows"] = batch.total_workflows
    return body


def batch_status(batch: batch_resource_pb2.Batch) -> dict[str, Any]:
    """GET /api/workflows/execution/batch/{batchId}: the batch with its runs."""
    return {
        **_batch_head(batch),
        "completed": batch.completed,
        "running": batch.running,
        "queued": batch.queued,
        "failed": batch.failed,
        "startTime": millis(batch.start_time),
        "endTime": millis(batch.end_time) if batch.HasField("end_time") else None,
        "executions": [batch_item(item) for item in batch.executions],
    }


def batch_summary(batch: batch_resource_pb2.Batch) -> dict[str, Any]:
    """An item of GET /api/workflows/executions/batches; `duration` (ms) is the time elapsed so far
    while the batch runs, `endTime - startTime` once it ended."""
    start = millis(batch.start_time)
    end = millis(batch.end_time) if batch.HasField("end_time") else None
    duration = end - start if end is not None else int(batch.duration.ToMilliseconds())
    return {
        **_batch_head(batch),
        "completed": batch.completed,
        "failed": batch.failed,
        "startTime": start,
        "endTime": end,
        "duration": duration,
    }


def batch_update(batch: batch_resource_pb2.Batch) -> dict[str, Any]:
    """The Socket.IO `batch-update` payload: the counts a progress bar needs."""
    return {
        "batchId": batch.batch_id,
        "status": BATCH_STATUS.get(batch.status, "running"),
        "completed": batch.completed,
        "totalWorkflows": batch.total_workflows,
        "running": batch.running,
        "queued": batch.queued,
        "failed": batch.failed,
    }
