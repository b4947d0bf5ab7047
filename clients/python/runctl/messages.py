"""Request builders and conversions shared by the sync and the asyncio client.

Plain functions from Python values (dicts, paths, names) to the runctl.v1 messages, so both clients
send exactly the same requests.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from google.protobuf import duration_pb2, json_format, struct_pb2
from google.protobuf.message import Message

from runctl.v1 import (
    batch_pb2,
    batch_resource_pb2,
    common_pb2,
    event_pb2,
    execution_pb2,
    workflow_pb2,
)

__all__ = [
    "ACTIVE_EXECUTION_STATUSES",
    "FINISHED_BATCH_STATUSES",
    "FINISHED_EXECUTION_STATUSES",
    "EventType",
    "ExecutionStatus",
    "ExecutionView",
    "ForEach",
    "WorkflowFileError",
    "WorkflowSource",
    "load_workflow_file",
    "new_request_id",
    "to_dict",
    "to_struct",
]

ExecutionStatus: TypeAlias = common_pb2.ExecutionStatus.ValueType
ExecutionView: TypeAlias = execution_pb2.ExecutionView.ValueType
EventType: TypeAlias = event_pb2.EventType.ValueType
BatchStatus: TypeAlias = batch_resource_pb2.BatchStatus.ValueType

FINISHED_EXECUTION_STATUSES: frozenset[ExecutionStatus] = frozenset(
    {
        common_pb2.EXECUTION_STATUS_COMPLETED,
        common_pb2.EXECUTION_STATUS_ERROR,
        common_pb2.EXECUTION_STATUS_STOPPED,
    }
)
# The unfinished runs: `list_executions(statuses=ACTIVE_EXECUTION_STATUSES)` lists the active ones.
ACTIVE_EXECUTION_STATUSES: frozenset[ExecutionStatus] = frozenset(
    {
        common_pb2.EXECUTION_STATUS_QUEUED,
        common_pb2.EXECUTION_STATUS_RUNNING,
        common_pb2.EXECUTION_STATUS_PAUSED,
    }
)
FINISHED_BATCH_STATUSES: frozenset[BatchStatus] = frozenset(
    {
        batch_resource_pb2.BATCH_STATUS_COMPLETED,
        batch_resource_pb2.BATCH_STATUS_ERROR,
        batch_resource_pb2.BATCH_STATUS_STOPPED,
    }
)

# A workflow to run or store: a local file (path), a document (dict) or a WorkflowDefinition.
WorkflowSource: TypeAlias = str | os.PathLike[str] | Mapping[str, Any] | workflow_pb2.WorkflowDefinition


class WorkflowFileError(ValueError):
    """A local workflow file that cannot be read or is not a workflow document."""


@dataclass(frozen=True)
class ForEach:
    """One for-each level of a node to resume: the loop node's id and the iteration index."""

    parent_node_id: str
    index: int
    total: int = 0


def new_request_id() -> str:
    """A fresh idempotency key: a retried call with it returns what the first call created."""
    return str(uuid.uuid4())


def to_struct(data: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """A google.protobuf.Struct holding a JSON object."""
    message = struct_pb2.Struct()
    if data:
        message.update(dict(data))
    return message


def to_dict(message: Message) -> dict[str, Any]:
    """The protobuf JSON mapping of a message (lowerCamelCase keys, enum names)."""
    result: dict[str, Any] = json_format.MessageToDict(message)
    return result


def _load_yaml(file: Path, text: str) -> Any:
    """YAML through PyYAML, which only the `runctl[yaml]` extra brings: imported here, when a YAML
    file is read, so JSON-only users need nothing more."""
    try:
        from runctl import yaml_files
    except ModuleNotFoundError as exc:
        if exc.name != "yaml":
            raise
        raise WorkflowFileError(
            f"{file}: reading YAML needs PyYAML: pip install 'runctl[yaml]' (or write the file as JSON)"
        ) from None
    try:
        return yaml_files.parse(text)
    except yaml_files.YAMLError as exc:
        raise WorkflowFileError(f"{file}: invalid YAML: {exc}") from None


def load_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON or YAML workflow document from a local file."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowFileError(f"{file}: no such file") from None
    except IsADirectoryError:
        raise WorkflowFileError(f"{file}: is a folder, not a workflow file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowFileError(f"{file}: cannot read it: {exc}") from None
    if file.suffix.lower() == ".json":
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkflowFileError(
                f"{file}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    else:
        loaded = _load_yaml(file, text)
    if not isinstance(loaded, dict):
        raise WorkflowFileError(f"{file}: a workflow document must be an object with name, nodes and edges")
    return loaded


def parse_definition(
    document: Mapping[str, Any], origin: str = "workflow"
) -> workflow_pb2.WorkflowDefinition:
    """A WorkflowDefinition from a workflow document (its JSON mapping is the file format)."""
    try:
        return json_format.ParseDict(dict(document), workflow_pb2.WorkflowDefinition())
    except json_format.ParseError as exc:
        raise WorkflowFileError(f"{origin}: not a workflow document: {exc}") from None


def load_workflow_file(path: str | os.PathLike[str]) -> workflow_pb2.WorkflowDefinition:
    """Read a local JSON or YAML workflow file into a WorkflowDefinition (raises WorkflowFileError)."""
    return parse_definition(load_document(path), str(path))


def as_definition(source: WorkflowSource) -> workflow_pb2.WorkflowDefinition:
    """A WorkflowDefinition from a local file path, a document dict or a definition message."""
    if isinstance(source, workflow_pb2.WorkflowDefinition):
        return source
    if isinstance(source, Mapping):
        return parse_definition(source)
    return load_workflow_file(source)


def start_execution_request(
    source: WorkflowSource | None,
    *,
    workflow_id: str | None,
    workflow_path: str | None,
    input: Mapping[str, Any] | None,
    request_id: str | None,
    trace_logs: bool,
    disable_breakpoints: bool,
    workflow_version: int,
) -> execution_pb2.StartExecutionRequest:
    """StartExecution from exactly one of a local source, a stored workflow id or a server-side path."""
    given = sum(x is not None for x in (source, workflow_id, workflow_path))
    if given != 1:
        raise ValueError("give exactly one of a workflow source, workflow_id or workflow_path")
    request = execution_pb2.StartExecutionRequest(
        input=to_struct(input),
        request_id=request_id or new_request_id(),
        trace_logs=trace_logs,
        disable_breakpoints=disable_breakpoints,
        workflow_version=workflow_version,
    )
    if workflow_id is not None:
        request.workflow_id = workflow_id
    elif workflow_path is not None:
        request.workflow_path = workflow_path
    else:
        assert source is not None
        request.definition.CopyFrom(as_definition(source))
    return request


def start_batch_request(
    folder: str | None,
    *,
    workflow_paths: Sequence[str] | None,
    workflow_ids: Sequence[str] | None,
    concurrency: int,
    input: Mapping[str, Any] | None,
    request_id: str | None,
    trace_logs: bool,
    disable_breakpoints: bool,
) -> batch_pb2.StartBatchRequest:
    """StartBatch from exactly one of a folder, a list of files or a list of stored workflows."""
    given = sum(x is not None for x in (folder, workflow_paths, workflow_ids))
    if given != 1:
        raise ValueError("give exactly one of folder, workflow_paths or workflow_ids")
    request = batch_pb2.StartBatchRequest(
        input=to_struct(input),
        concurrency=concurrency,
        request_id=request_id or new_request_id(),
        trace_logs=trace_logs,
        disable_breakpoints=disable_breakpoints,
    )
    if folder is not None:
        request.folder_path = folder
    elif workflow_paths is not None:
        request.workflow_paths.paths.extend(workflow_paths)
    else:
        assert workflow_ids is not None
        request.workflow_ids.ids.extend(workflow_ids)
    return request


def resume_node_request(
    execution_id: str,
    node_id: str,
    *,
    secret: str,
    data: Mapping[str, Any] | None,
    for_each: Iterable[ForEach],
    request_id: str | None,
) -> execution_pb2.ResumeNodeRequest:
    """ResumeNode; `for_each` names the loop iteration, outermost loop first."""
    request = execution_pb2.ResumeNodeRequest(
        execution_id=execution_id,
        node_id=node_id,
        secret=secret,
        data=to_struct(data),
        request_id=request_id or new_request_id(),
    )
    frames = [
        common_pb2.ForEachFrame(parent_node_id=f.parent_node_id, index=f.index, total=f.total)
        for f in for_each
    ]
    if frames:
        request.for_each_context.stack.extend(frames)
    return request


def duration(seconds: float | None) -> duration_pb2.Duration | None:
    """A Duration message, or None for "the server's default"."""
    if seconds is None:
        return None
    message = duration_pb2.Duration()
    message.FromNanoseconds(int(seconds * 1e9))
    return message


def rotate_secret_request(
    workflow_id: str, overlap_seconds: float | None = None
) -> workflow_pb2.RotateWebhookSecretRequest:
    """None leaves the overlap to the server's default; 0 retires the old secret at once."""
    return workflow_pb2.RotateWebhookSecretRequest(workflow_id=workflow_id, overlap=duration(overlap_seconds))


def watch_execution_request(
    execution_id: str, after_sequence: int | None, view: ExecutionView, heartbeat_interval: float | None
) -> execution_pb2.WatchExecutionRequest:
    """WatchExecution; `after_sequence` None asks for a snapshot first."""
    request = execution_pb2.WatchExecutionRequest(
        execution_id=execution_id, view=view, heartbeat_interval=duration(heartbeat_interval)
    )
    if after_sequence is not None:
        request.after_sequence = after_sequence
    return request


def watch_batch_request(
    batch_id: str, after_sequence: int | None, include_node_events: bool, heartbeat_interval: float | None
) -> batch_pb2.WatchBatchRequest:
    """WatchBatch; `after_sequence` None asks for a snapshot first."""
    request = batch_pb2.WatchBatchRequest(
        batch_id=batch_id,
        include_node_events=include_node_events,
        heartbeat_interval=duration(heartbeat_interval),
    )
    if after_sequence is not None:
        request.after_sequence = after_sequence
    return request


def stream_events_request(
    after_sequence: int | None,
    *,
    workflow_id: str,
    execution_id: str,
    batch_id: str,
    types: Iterable[EventType],
    heartbeat_interval: float | None,
) -> event_pb2.StreamEventsRequest:
    """StreamEvents; `after_sequence` None follows only events committed from now on."""
    request = event_pb2.StreamEventsRequest(
        workflow_id=workflow_id,
        execution_id=execution_id,
        batch_id=batch_id,
        types=list(types),
        heartbeat_interval=duration(heartbeat_interval),
    )
    if after_sequence is not None:
        request.after_sequence = after_sequence
    return request
