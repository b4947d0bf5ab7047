"""Rows and domain values to runctl.v1 messages. Tables are not messages: this is the one bridge."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from runctl.v1 import common_pb2, execution_pb2, pause_point_pb2, workflow_pb2
from runctl_server.api.resume_links import LinkClaim, ResumeLinks
from runctl_server.engine.queries import ExecutionView, NodeTally
from runctl_server.engine.workflow_control import PausedExecution
from runctl_server.engine.workflows import WorkflowView
from runctl_server.errors import InvalidArgument
from runctl_server.store.records import NodeStateRecord, PausePointRecord

FULL = execution_pb2.EXECUTION_VIEW_FULL
# A node config's `onTimeout`, as PausePoint.expiry_action.
EXPIRY_ACTIONS = {
    "fail": pause_point_pb2.EXPIRY_ACTION_FAIL_NODE,
    "continue": pause_point_pb2.EXPIRY_ACTION_CONTINUE,
    "branch": pause_point_pb2.EXPIRY_ACTION_BRANCH,
}
# The node column that holds NodeState.end_time, by the status the node ended in.
END_COLUMNS = {"completed": "completed_at", "failed": "failed_at", "stopped": "stopped_at"}


# google.protobuf.Timestamp's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_EARLIEST_SECONDS, _LATEST_SECONDS = -62_135_596_800, 253_402_300_799


def timestamp(epoch: float | None) -> timestamp_pb2.Timestamp | None:
    """A stored time as a Timestamp, clamped to the range a Timestamp can hold: a value written under
    older, looser rules must never make a read fail."""
    if epoch is None:
        return None
    if math.isnan(epoch) or epoch < _EARLIEST_SECONDS:
        return timestamp_pb2.Timestamp(seconds=_EARLIEST_SECONDS)
    if epoch > _LATEST_SECONDS:
        return timestamp_pb2.Timestamp(seconds=_LATEST_SECONDS)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(min(round(epoch * 1e9), _LATEST_SECONDS * 1_000_000_000))
    return stamp


def struct(value: Mapping[str, Any] | None) -> struct_pb2.Struct | None:
    if value is None:
        return None
    message = struct_pb2.Struct()
    message.update(value)
    return message


def value(data: Any) -> struct_pb2.Value:
    message = struct_pb2.Value()
    json_format.ParseDict(data, message)
    return message


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _integral(data: Any) -> Any:
    """Struct numbers are doubles; give whole numbers back as ints, as JSON callers expect."""
    if isinstance(data, float) and data.is_integer() and abs(data) < 2**53:
        return int(data)
    if isinstance(data, dict):
        return {key: _integral(item) for key, item in data.items()}
    if isinstance(data, list):
        return [_integral(item) for item in data]
    return data


def _json_of(message: Any, field: str) -> Any:
    """A message as plain JSON data; a number JSON cannot hold (NaN, Infinity) is the caller's
    INVALID_ARGUMENT, not a failure to serialize later."""
    try:
        return _integral(json_format.MessageToDict(message))
    except (ValueError, json_format.Error) as exc:
        raise InvalidArgument.single(
            field,
            f"holds a number JSON cannot carry ({exc}); send finite numbers only",
            reason="FIELD_INVALID",
        ) from None


def struct_to_dict(message: struct_pb2.Struct, field: str = "value") -> dict[str, Any]:
    result: dict[str, Any] = _json_of(message, field)
    return result


def filter_words(values: Iterable[int], enum: Any, field: str) -> tuple[str, ...]:
    """An enum filter's values as the store's words ("paused"), each once, in the order given.

    UNSPECIFIED (or a number the enum does not know) is INVALID_ARGUMENT, as common.proto says of
    every enum filter: an empty list already means any, so such a value can only be a caller's bug.
    """
    prefix = enum.Name(0).removesuffix("UNSPECIFIED")
    words: dict[str, None] = {}
    for index, number in enumerate(values):
        if number == 0 or number not in enum.values():
            name = enum.Name(number) if number in enum.values() else str(number)
            raise InvalidArgument.single(
                f"{field}[{index}]",
                f"{name} is not a value to filter by; leave {field} empty for any",
                reason="FIELD_INVALID",
            )
        words[enum.Name(number).removeprefix(prefix).lower()] = None
    return tuple(words)


def execution_status(word: str) -> common_pb2.ExecutionStatus.ValueType:
    return common_pb2.ExecutionStatus.Value(f"EXECUTION_STATUS_{word.upper()}")


def status_word(status: common_pb2.ExecutionStatus.ValueType) -> str:
    return common_pb2.ExecutionStatus.Name(status).removeprefix("EXECUTION_STATUS_").lower()


def pause_reason(word: str | None) -> common_pb2.PauseReason.ValueType:
    if not word:
        return common_pb2.PAUSE_REASON_UNSPECIFIED
    return common_pb2.PauseReason.Value(f"PAUSE_REASON_{word.upper()}")


def definition_message(document: Mapping[str, Any]) -> workflow_pb2.WorkflowDefinition:
    return json_format.ParseDict(
        dict(document), workflow_pb2.WorkflowDefinition(), ignore_unknown_fields=True
    )


def definition_document(message: workflow_pb2.WorkflowDefinition) -> dict[str, Any]:
    """The workflow document (file format) of a definition message, as the validator expects it."""
    document: dict[str, Any] = _json_of(message, "definition")
    # Proto JSON leaves out zero values; a position at x or y = 0 is still a position.
    for position in document.get("positions", {}).values():
        position.setdefault("x", 0)
        position.setdefault("y", 0)
    return document


def workflow(view: WorkflowView, *, full: bool = True) -> workflow_pb2.Workflow:
    row = view.row
    message = workflow_pb2.Workflow(
        id=row.id,
        name=row.name,
        description=row.description or "",
        version=row.version,
        status=workflow_pb2.WorkflowStatus.Value(f"WORKFLOW_STATUS_{row.status.upper()}"),
        webhook_secret=view.secret or "",
        create_time=timestamp(row.created_at),
        update_time=timestamp(row.updated_at),
        pause_time=timestamp(row.paused_at),
    )
    if full:
        message.definition.CopyFrom(definition_message(view.document))
    return message


def frames(stack: Iterable[Mapping[str, Any]] | None) -> list[common_pb2.ForEachFrame]:
    return [
        common_pb2.ForEachFrame(
            index=int(f["index"]), parent_node_id=str(f["parentNodeId"]), total=int(f["total"])
        )
        for f in stack or []
    ]


def node_state(row: NodeStateRecord, names: Mapping[str, str]) -> execution_pb2.NodeState:
    error = _json(row.error)
    state = _json(row.state) or {}
    message = execution_pb2.NodeState(
        node_id=row.node_id,
        type=row.node_type,
        name=names.get(row.node_id, ""),
        status=common_pb2.NodeStatus.Value(f"NODE_STATUS_{row.status.upper()}"),
        attempts=int(row.attempts),
        schedule_time=timestamp(row.scheduled_at),
        start_time=timestamp(row.started_at),
        end_time=timestamp(getattr(row, END_COLUMNS[row.status])) if row.status in END_COLUMNS else None,
        stack=frames(_json(row.stack)),
        context_id=state.get("contextId", ""),
    )
    if row.status == "scheduled" and row.wake_at is not None:
        message.next_attempt_time.FromNanoseconds(round(row.wake_at * 1e9))
    if row.output is not None:
        message.output.CopyFrom(value(_json(row.output)))
    if error:
        message.error.CopyFrom(
            common_pb2.NodeError(message=error.get("message", ""), code=error.get("code", ""))
        )
    for entry in _json(row.logs) or []:
        message.logs.append(
            execution_pb2.TraceLog(
                time=timestamp(entry.get("time")),
                level=common_pb2.LogLevel.Value(f"LOG_LEVEL_{str(entry.get('level', 'info')).upper()}")
                if str(entry.get("level", "info")).upper() in ("DEBUG", "INFO", "WARNING", "ERROR")
                else common_pb2.LOG_LEVEL_INFO,
                message=str(entry.get("message", "")),
                details=struct(entry.get("details") or {}),
            )
        )
    return message


def _edge_status(source: NodeStateRecord | None, when: str) -> execution_pb2.EdgeStatus.ValueType:
    if source is None or source.status not in ("completed", "skipped", "failed", "stopped"):
        return execution_pb2.EDGE_STATUS_PENDING
    branches = _json(source.branches)
    taken = source.status == "completed" and when in (branches if branches is not None else [""])
    return execution_pb2.EDGE_STATUS_TAKEN if taken else execution_pb2.EDGE_STATUS_NOT_TAKEN


def node_counts(tally: NodeTally) -> execution_pb2.NodeStatusCounts:
    counts = execution_pb2.NodeStatusCounts(idle=tally.unreached)
    for status, n in tally.by_status.items():
        setattr(counts, status, getattr(counts, status) + n)
    counts.total = tally.unreached + sum(tally.by_status.values())
    return counts


def pause_point(row: PausePointRecord, links: ResumeLinks) -> pause_point_pb2.PausePoint:
    display = _json(row.display)
    if not isinstance(display, dict):  # a wait node may display any value: show it as the message
        display = (
            {}
            if display is None
            else {"message": display if isinstance(display, str) else json.dumps(display)}
        )
    api_url, ui_url = links.urls(
        LinkClaim(row.workspace_id, row.execution_id, row.context_id), row.workflow_id or ""
    )
    message = pause_point_pb2.PausePoint(
        context_id=row.context_id,
        execution_id=row.execution_id,
        workflow_id=row.workflow_id or "",
        node_id=row.node_id,
        reason=pause_reason(row.kind),
        resume_status=pause_point_pb2.ResumeStatus.Value(f"RESUME_STATUS_{row.status.upper()}"),
        create_time=timestamp(row.registered_at),
        expire_time=timestamp(row.expires_at),
        resolve_time=timestamp(row.resolved_at),
        resume_links=pause_point_pb2.ResumeLinks(
            api_url=api_url,
            ui_url=ui_url,
            context_id=row.context_id,
            execution_id=row.execution_id,
            workflow_id=row.workflow_id or "",
        ),
        stack=frames(_json(row.stack)),
    )
    if row.kind == "approval" or display:  # else no response: nothing to show a person
        message.response.display_data.title = str(display.get("title", ""))
        message.response.display_data.message = str(display.get("message", ""))
    extra = {key: item for key, item in display.items() if key not in ("title", "message")}
    if extra:
        message.response.display_data.extra.update(extra)
    if row.expires_at is not None:
        message.expiry_action = EXPIRY_ACTIONS.get(
            str(row.expiry_action or "fail"), pause_point_pb2.EXPIRY_ACTION_UNSPECIFIED
        )
    for field in _json(row.form_fields) or []:
        form_field = message.response.form_fields.add(
            name=str(field.get("name", "")),
            label=str(field.get("label", "")),
            description=str(field.get("description", "")),
            required=bool(field.get("required", False)),
            options=[str(option) for option in field.get("options", [])],
            type=pause_point_pb2.FormFieldType.Value(
                f"FORM_FIELD_TYPE_{str(field.get('type', 'text')).upper()}"
            ),
        )
        if "default" in field:
            form_field.default_value.CopyFrom(value(field["default"]))
    resume_data = _json(row.resume_data)
    if resume_data is not None:
        message.resume_data.update(resume_data if isinstance(resume_data, dict) else {"value": resume_data})
    return message


def paused_execution(item: PausedExecution, links: ResumeLinks) -> pause_point_pb2.PausedExecution:
    message = pause_point_pb2.PausedExecution(
        id="pe_" + item.execution_id.removeprefix("exec_"),
        workflow_id=item.workflow_id,
        execution_id=item.execution_id,
        status=pause_point_pb2.ResumeStatus.Value(f"RESUME_STATUS_{item.status.upper()}"),
        total_pause_count=item.total_pause_count,
        resumed_count=item.resumed_count,
        pause_time=timestamp(item.paused_at),
        update_time=timestamp(item.updated_at),
        expire_time=timestamp(item.expires_at),
        pause_points=[pause_point(row, links) for row in item.pause_points],
    )
    if item.metadata is not None:
        message.metadata.update(item.metadata)
    return message


def execution(
    view: ExecutionView, *, full: bool, links: ResumeLinks | None = None
) -> execution_pb2.Execution:
    """A run; `links` builds its pause points' resume links (FULL view only, so required there)."""
    row = view.row
    message = execution_pb2.Execution(
        id=row.id,
        workflow_id=row.workflow_id or "",
        workflow_version=int(row.workflow_version or 0),
        workflow_name=row.name,
        workflow_path=row.source_path or "",
        status=execution_status(row.status),
        input=struct(_json(row.input)),
        current_node_id=row.current_node_id or "",
        paused_node_id=row.paused_node_id or "",
        pause_reason=pause_reason(row.pause_reason),
        trace_logs=bool(row.trace_logs),
        breakpoints_disabled=bool(row.breakpoints_disabled),
        batch_id=row.batch_id or "",
        request_id=row.request_id or "",
        create_time=timestamp(row.created_at),
        start_time=timestamp(row.started_at),
        end_time=timestamp(row.ended_at),
        update_time=timestamp(row.updated_at),
        last_sequence=view.last_sequence,
    )
    error = _json(row.error)
    if error:
        message.error.CopyFrom(
            common_pb2.ExecutionError(
                message=error.get("message", ""), node_id=error.get("nodeId", ""), code=error.get("code", "")
            )
        )
    if view.tally is not None:
        message.node_counts.CopyFrom(node_counts(view.tally))
    if not full:
        return message
    document = view.document
    top_nodes = document.get("nodes", [])
    names = {n["id"]: n.get("name", "") for n in top_nodes}
    by_key = {r.node_key: r for r in view.nodes}
    outputs: dict[str, Any] = {}
    for node in top_nodes:
        node_row = by_key.get(node["id"])
        if node_row is None:
            message.nodes.append(
                execution_pb2.NodeState(
                    node_id=node["id"],
                    type=node["type"],
                    name=node.get("name", ""),
                    status=common_pb2.NODE_STATUS_IDLE,
                )
            )
        else:
            message.nodes.append(node_state(node_row, names))
            if node_row.status == "completed":
                outputs[node["id"]] = {"output": _json(node_row.output)}
    for node_row in view.nodes:
        if node_row.stack is not None:
            message.nodes.append(node_state(node_row, {}))
    for edge in document.get("edges", []):
        message.edges.append(
            execution_pb2.EdgeState(
                from_node_id=edge["from"],
                to_node_id=edge["to"],
                status=_edge_status(by_key.get(edge["from"]), edge.get("when", "")),
            )
        )
    message.data.update({"input": _json(row.input), "nodes": outputs})
    ends = [outputs[n["id"]]["output"] for n in top_nodes if n["type"] == "end" and n["id"] in outputs]
    if row.status == "completed" and ends:
        message.output.CopyFrom(value(ends[0] if len(ends) == 1 else ends))
    message.definition.CopyFrom(definition_message(document))
    if view.pause_points:
        if links is None:
            raise ValueError("a FULL execution with pause points needs the resume links")
        message.pause_points.extend(pause_point(pause_row, links) for pause_row in view.pause_points)
    return message
