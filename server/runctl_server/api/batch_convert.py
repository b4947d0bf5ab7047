"""Batch rows and views to runctl.v1 batch messages."""

from __future__ import annotations

import json

from google.protobuf import duration_pb2

from runctl.v1 import batch_resource_pb2, common_pb2
from runctl_server.api.convert import execution_status, timestamp
from runctl_server.engine.batch_queries import BatchView
from runctl_server.engine.model import now
from runctl_server.store.records import BatchItemRecord


def status_word(status: batch_resource_pb2.BatchStatus.ValueType) -> str:
    """The stored word of a BatchStatus filter; "" for UNSPECIFIED (any status)."""
    if status == batch_resource_pb2.BATCH_STATUS_UNSPECIFIED:
        return ""
    try:
        return batch_resource_pb2.BatchStatus.Name(status).removeprefix("BATCH_STATUS_").lower()
    except ValueError:
        return f"unknown ({status})"  # refused by the engine with a field violation


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(max(seconds, 0.0) * 1e9))
    return duration


def item(row: BatchItemRecord) -> batch_resource_pb2.BatchItem:
    error = json.loads(row.error) if row.error else {}
    return batch_resource_pb2.BatchItem(
        execution_id=row.execution_id,
        workflow_id=row.workflow_id or "",
        workflow_file_name=row.workflow_file_name or "",
        workflow_path=row.workflow_path or "",
        status=execution_status(row.status) if row.status else common_pb2.EXECUTION_STATUS_UNSPECIFIED,
        current_node_id=row.current_node_id or "",
        error=error.get("message", ""),
        start_time=timestamp(row.started_at),
        end_time=timestamp(row.ended_at),
    )


def batch(view: BatchView) -> batch_resource_pb2.Batch:
    row, counts = view.row, view.counts
    ended = row.ended_at
    return batch_resource_pb2.Batch(
        batch_id=row.id,
        status=batch_resource_pb2.BatchStatus.Value(f"BATCH_STATUS_{row.status.upper()}"),
        source_type=batch_resource_pb2.BatchSourceType.Value(f"BATCH_SOURCE_TYPE_{row.source_type.upper()}"),
        folder_path=row.folder_path or "",
        total_workflows=int(row.total),
        completed=counts.completed,
        running=counts.running,
        queued=counts.queued,
        failed=counts.failed,
        stopped=counts.stopped,
        paused=counts.paused,
        concurrency=int(row.concurrency),
        start_time=timestamp(row.created_at),
        end_time=timestamp(ended),
        duration=_duration((ended if ended is not None else now()) - row.created_at),
        executions=[item(item_row) for item_row in view.items],
        request_id=row.request_id or "",
        last_sequence=view.last_sequence,
    )
