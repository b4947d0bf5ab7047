"""How runs, batches, workflows and events look at a terminal (rich tables and lines)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import timestamp_pb2
from google.protobuf.json_format import MessageToDict
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from runctl.cli.validate import Verdict
from runctl.messages import FINISHED_EXECUTION_STATUSES
from runctl.v1 import (
    batch_resource_pb2,
    common_pb2,
    event_pb2,
    execution_pb2,
    pause_point_pb2,
    workflow_pb2,
)

STYLES = {
    "completed": "green",
    "running": "cyan",
    "scheduled": "blue",
    "queued": "blue",
    "waiting": "yellow",
    "paused": "yellow",
    "failed": "red",
    "error": "red",
    "stopped": "magenta",
    "skipped": "dim",
    "idle": "dim",
    "active": "green",
    "cancelled": "magenta",
    "resumed": "green",
    "expired": "red",
}
MAX_NODE_ROWS = 60


def short(enum: Any, value: int, prefix: str) -> str:
    """`EXECUTION_STATUS_RUNNING` -> `running`."""
    try:
        name = str(enum.Name(value))
    except ValueError:
        return str(value)
    return name.removeprefix(prefix).lower()


def styled(word: str) -> Text:
    return Text(word, style=STYLES.get(word, ""))


def execution_status(value: int) -> str:
    return short(common_pb2.ExecutionStatus, value, "EXECUTION_STATUS_")


def node_status(value: int) -> str:
    return short(common_pb2.NodeStatus, value, "NODE_STATUS_")


def batch_status(value: int) -> str:
    return short(batch_resource_pb2.BatchStatus, value, "BATCH_STATUS_")


def workflow_status(value: int) -> str:
    return short(workflow_pb2.WorkflowStatus, value, "WORKFLOW_STATUS_")


def pause_reason(value: int) -> str:
    return short(common_pb2.PauseReason, value, "PAUSE_REASON_")


def when(ts: timestamp_pb2.Timestamp) -> datetime | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


def local_time(ts: timestamp_pb2.Timestamp) -> str:
    moment = when(ts)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def elapsed(start: timestamp_pb2.Timestamp, end: timestamp_pb2.Timestamp | None = None) -> str:
    """The time from `start` to `end` (or to now), like 850ms, 12.3s or 4m05s; empty without a start."""
    begun = when(start)
    if begun is None:
        return ""
    ended = (when(end) if end is not None else None) or datetime.now(UTC)
    seconds = max((ended - begun).total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _integral(value: Any) -> Any:
    """Struct numbers are doubles: show 42.0 as 42."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def preview(value: Any, limit: int = 60) -> str:
    """A one-line, shortened JSON view of a value."""
    text = (
        value if isinstance(value, str) else json.dumps(_integral(value), separators=(",", ":"), default=str)
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def frames(stack: Any) -> str:
    return "".join(f"[{frame.parent_node_id} {frame.index + 1}/{frame.total or '?'}]" for frame in stack)


def node_detail(node: execution_pb2.NodeState) -> Text:
    status = node_status(node.status)
    if node.error.message and status in ("failed", "scheduled", "running"):
        return Text(preview(node.error.message, 80), style="red" if status == "failed" else "yellow")
    if status == "waiting" and node.context_id:
        return Text(f"waits: {node.context_id}", style="yellow")
    if status == "completed" and node.HasField("output"):
        return Text(preview(MessageToDict(node.output)), style="dim")
    return Text("")


def nodes_table(execution: execution_pb2.Execution) -> Table:
    """One row per node run: name, type, state, attempts, time, detail."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NODE", "TYPE", "STATUS", "TRIES", "TIME", "DETAIL"):
        table.add_column(column, no_wrap=column != "DETAIL", overflow="fold")
    nodes = list(execution.nodes)
    hidden = 0
    if len(nodes) > MAX_NODE_ROWS:
        top = [node for node in nodes if not node.stack]
        hidden = len(nodes) - len(top)
        nodes = top
    for node in nodes:
        label = (node.name or node.node_id) + (f" {frames(node.stack)}" if node.stack else "")
        ended = node.end_time if node.HasField("end_time") else None
        took = elapsed(node.start_time, ended) if node.HasField("start_time") else ""
        table.add_row(
            escape(label),
            node.type,
            styled(node_status(node.status)),
            str(node.attempts or ""),
            took,
            node_detail(node),
        )
    if hidden:
        table.add_row(Text(f"… and {hidden} loop iterations", style="dim"), "", "", "", "", "")
    return table


def execution_header(execution: execution_pb2.Execution) -> Text:
    status = execution_status(execution.status)
    header = Text.assemble(
        (execution.id, "bold"),
        "  ",
        (execution.workflow_name or execution.workflow_id or execution.workflow_path or "(inline)", ""),
        "  ",
        (status, STYLES.get(status, "") + " bold"),
    )
    if status == "paused":
        header.append(f" ({pause_reason(execution.pause_reason)})", style="yellow")
    took = elapsed(execution.start_time, execution.end_time if execution.HasField("end_time") else None)
    if took:
        header.append(f"  {took}", style="dim")
    return header


def pause_hints(execution: execution_pb2.Execution) -> list[RenderableType]:
    """What a person can do about each pause point the run waits at."""
    lines: list[RenderableType] = []
    for point in execution.pause_points:
        reason = pause_reason(point.reason)
        where = point.node_id or "the run"
        line = Text.assemble(("paused ", "yellow"), (f"({reason}) at {where}", "yellow bold"))
        if point.response.display_data.title:
            line.append(f": {point.response.display_data.title}", style="yellow")
        lines.append(line)
        if point.reason == common_pb2.PAUSE_REASON_APPROVAL:
            fields = " ".join(f"--set {f.name}=…" for f in point.response.form_fields) or "--set field=value"
            lines.append(Text(f"  runctl approve {point.context_id} {fields}", style="dim"))
        elif point.reason in (common_pb2.PAUSE_REASON_BREAKPOINT, common_pb2.PAUSE_REASON_WAIT):
            lines.append(Text(f"  runctl continue {execution.id}", style="dim"))
            if point.reason == common_pb2.PAUSE_REASON_WAIT:
                lines.append(Text(f"  runctl approve {point.context_id} --set field=value", style="dim"))
        if point.resume_links.ui_url:
            lines.append(Text(f"  {point.resume_links.ui_url}", style="dim"))
    if execution.pause_reason == common_pb2.PAUSE_REASON_MANUAL and not execution.pause_points:
        lines.append(Text("paused by an operator (ResumeExecution lifts it)", style="yellow"))
    return lines


def execution_view(execution: execution_pb2.Execution) -> Group:
    """The whole run: header, node table, error or output, pause hints."""
    parts: list[RenderableType] = [execution_header(execution), nodes_table(execution)]
    if execution.status == common_pb2.EXECUTION_STATUS_ERROR and execution.error.message:
        where = f" at {execution.error.node_id}" if execution.error.node_id else ""
        parts.append(Text(f"error{where}: {execution.error.message}", style="red"))
    output = MessageToDict(execution.output) if execution.HasField("output") else None
    if execution.status == common_pb2.EXECUTION_STATUS_COMPLETED and output is not None:
        parts.append(Text(f"output: {preview(output, 200)}", style="green"))
    if execution.status not in FINISHED_EXECUTION_STATUSES:
        parts.extend(pause_hints(execution))
    return Group(*parts)


def executions_table(executions: Any) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "WORKFLOW", "STATUS", "CREATED", "TIME", "ERROR"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for execution in executions:
        table.add_row(
            execution.id,
            escape(execution.workflow_name or execution.workflow_id or execution.workflow_path),
            styled(execution_status(execution.status)),
            local_time(execution.create_time),
            elapsed(execution.start_time, execution.end_time if execution.HasField("end_time") else None),
            Text(preview(execution.error.message, 60), style="red") if execution.error.message else "",
        )
    return table


def workflows_table(workflows: Any) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "NAME", "VERSION", "STATUS", "UPDATED"):
        table.add_column(column, no_wrap=True)
    for workflow in workflows:
        table.add_row(
            workflow.id,
            escape(workflow.name),
            str(workflow.version),
            styled(workflow_status(workflow.status)),
            local_time(workflow.update_time),
        )
    return table


def workflow_view(workflow: workflow_pb2.Workflow) -> Group:
    """A stored workflow: its header, then its nodes with their types and where they lead."""
    status = workflow_status(workflow.status)
    header = Text.assemble(
        (workflow.id, "bold"),
        f"  {workflow.name}  version {workflow.version}  ",
        (status, STYLES.get(status, "")),
    )
    lines: list[RenderableType] = [header]
    if workflow.description:
        lines.append(Text(workflow.description, style="dim"))
    lines.append(Text(f"updated {local_time(workflow.update_time)}", style="dim"))
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("NODE", "TYPE", "NEXT"):
        table.add_column(column, no_wrap=column != "NEXT", overflow="fold")
    definition = workflow.definition
    for node in definition.nodes:
        targets = [
            edge.target + (f" (when {edge.when})" if edge.when else "")
            for edge in definition.edges
            if edge.source == node.id
        ]
        table.add_row(escape(node.id), escape(node.type), escape(", ".join(targets)))
    lines.append(table)
    return Group(*lines)


def verdict_view(verdict: Verdict) -> Text:
    """A file's validation: valid with its node count, or each problem on a line of its own."""
    if verdict.valid:
        return Text.assemble(("valid ", "green"), (str(verdict.file), "bold"), f" ({verdict.nodes} nodes)")
    count = len(verdict.problems)
    lines = [
        Text.assemble(
            ("invalid ", "red"), (str(verdict.file), "bold"), f": {count} problem{'s' if count > 1 else ''}"
        )
    ]
    lines += [
        Text(f"  - {problem.field}: {problem.description}", style="red") for problem in verdict.problems
    ]
    return Text("\n").join(lines)


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "file": str(verdict.file),
        "valid": verdict.valid,
        "nodes": verdict.nodes,
        "problems": [{"field": p.field, "description": p.description} for p in verdict.problems],
    }


def batches_table(batches: Any) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("ID", "STATUS", "RUNS", "COMPLETED", "FAILED", "STARTED", "TIME"):
        table.add_column(column, no_wrap=True, min_width=len(column))
    # The folder's path can be long: it wraps rather than squeezing the columns before it.
    table.add_column("SOURCE", overflow="fold")
    for batch in batches:
        source = batch.folder_path or short(
            batch_resource_pb2.BatchSourceType, batch.source_type, "BATCH_SOURCE_TYPE_"
        )
        table.add_row(
            batch.batch_id,
            styled(batch_status(batch.status)),
            str(batch.total_workflows),
            str(batch.completed),
            Text(str(batch.failed), style="red" if batch.failed else ""),
            local_time(batch.start_time),
            elapsed(batch.start_time, batch.end_time if batch.HasField("end_time") else None),
            escape(source),
        )
    return table


def batch_items_table(batch: batch_resource_pb2.Batch) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("WORKFLOW", "RUN", "STATUS", "TIME", "ERROR"):
        table.add_column(column, no_wrap=column != "ERROR", overflow="fold")
    for item in batch.executions:
        status = execution_status(item.status)
        table.add_row(
            escape(item.workflow_file_name or item.workflow_path or item.workflow_id),
            item.execution_id,
            styled(status),
            elapsed(item.start_time, item.end_time if item.HasField("end_time") else None),
            Text(preview(item.error, 80), style="red") if item.error else "",
        )
    return table


def batch_counts(batch: batch_resource_pb2.Batch) -> Text:
    return Text.assemble(
        (f"{batch.completed} completed", "green"),
        "  ",
        (f"{batch.failed} failed", "red" if batch.failed else "dim"),
        "  ",
        (f"{batch.running} running", "cyan"),
        "  ",
        (f"{batch.queued} queued", "blue"),
        *((("  ", ""), (f"{batch.stopped} stopped", "magenta")) if batch.stopped else ()),
    )


_EVENT_STYLES = {
    "COMPLETED": "green",
    "FAILED": "red",
    "STOPPED": "magenta",
    "WAITING": "yellow",
    "PAUSED": "yellow",
    "CREATED": "yellow",
    "RETRYING": "yellow",
    "STARTED": "cyan",
    "RESUMED": "green",
    "EXPIRED": "red",
    "CANCELLED": "magenta",
}


def _event_detail(event: event_pb2.Event) -> str:
    """The one thing worth showing about an event: its error, log line, pause point or output."""
    which = event.WhichOneof("attributes")
    if which is None:
        return ""
    attributes = getattr(event, which)
    error = getattr(attributes, "error", None)
    if isinstance(error, (common_pb2.NodeError, common_pb2.ExecutionError)) and error.message:
        return error.message
    if which == "node_log_attributes":
        return event.node_log_attributes.message
    context_id = getattr(attributes, "context_id", "")
    if context_id:
        return str(context_id)
    output = getattr(attributes, "output", None)
    if which in ("node_completed_attributes", "execution_completed_attributes") and output is not None:
        value = MessageToDict(output)
        if value not in (None, {}):
            return preview(value)
    return ""


def event_line(event: event_pb2.Event) -> Text:
    """`12:00:01.234  #42  NODE_COMPLETED  fetch  {"status":200}`."""
    moment = when(event.time)
    clock = moment.astimezone().strftime("%H:%M:%S.%f")[:-3] if moment else ""
    kind = short(event_pb2.EventType, event.type, "EVENT_TYPE_").upper()
    style = next((s for suffix, s in _EVENT_STYLES.items() if kind.endswith(suffix)), "")
    subject = event.node_id + (f" {frames(event.stack)}" if event.stack else "")
    line = Text.assemble((clock, "dim"), "  ", (f"#{event.sequence}", "dim"), "  ", (kind, style))
    if subject:
        line.append(f"  {subject}", style="bold")
    detail = _event_detail(event)
    if detail:
        line.append(f"  {preview(detail, 100)}", style="red" if kind.endswith("FAILED") else "dim")
    return line


def pause_point_line(point: pause_point_pb2.PausePoint) -> Text:
    status = short(pause_point_pb2.ResumeStatus, point.resume_status, "RESUME_STATUS_")
    return Text.assemble(
        (point.context_id, "bold"),
        "  ",
        (status, STYLES.get(status, "")),
        f"  {point.node_id or '-'}",
        (f"  by {point.resolved_by}" if point.resolved_by else "", "dim"),
    )
