"""The execution object API's Execution object, shaped from a runctl.v1.Execution (FULL view).
snake_case, as documented.

Where the API's platform has a concept runctl does not, the closest honest value is given:

- `hashid`: a short, reversible spelling of the run id (base62 of its random part), so
  `GET /v1/executions/{hashid}` finds the run too.
- `key`: the stored workflow's id; for a run of an inline document or a file, a slug of its name
  ("Workflow 8" -> "workflow_8", as in the API's example).
- `*_actions_count`: runctl's node states folded into the API's five: `running` counts scheduled,
  running and waiting nodes (started, not finished); `idle` counts idle and skipped ones (never run);
  so the five add up to `actions_count`.
- `stats[node]`: runctl's own node status word (idle, scheduled, running, waiting, completed, failed,
  stopped, skipped) and the API's four timestamps; a node inside for_each bodies appears once per
  iteration reached, keyed `loop[2].node` (outermost loop first).
- `stats["from-to"]`: "open" once the edge was taken (flow went through it), "closed" otherwise:
  in the API's example the edges leaving the start are open and the others, not reached yet, closed.
- `log`: `{}` for a quiet run; `error` (why the run failed) and `nodes` (trace log lines by node)
  when there are any.
- `template.action_types`: the node types the workflow uses besides start and end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import tzinfo
from typing import Any

from google.protobuf import timestamp_pb2

from runctl.v1 import common_pb2, execution_pb2, workflow_pb2
from runctl_server.api.convert import status_word, struct_to_dict
from runctl_server.engine.keys import node_key
from runctl_server.http import timefmt

OBJECT = "execution"
BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Run ids are "exec_" + 20 hex digits (80 random bits): 14 base62 digits hold them.
_RUN_ID = re.compile(r"exec_([0-9a-f]{20})")
_HASHID = re.compile(r"[0-9a-zA-Z]{14}")
HASHID_LENGTH = 14
# The API's end timestamps of a node: NodeState.end_time under the key of the status it ended in.
END_TIMES = {
    "completed_at": common_pb2.NODE_STATUS_COMPLETED,
    "stopped_at": common_pb2.NODE_STATUS_STOPPED,
    "failed_at": common_pb2.NODE_STATUS_FAILED,
}
# runctl node status -> the API's count it adds to.
COUNTED_AS = {
    "idle": "idle",
    "skipped": "idle",
    "scheduled": "running",
    "running": "running",
    "waiting": "running",
    "completed": "completed",
    "failed": "failed",
    "stopped": "stopped",
}
LAYOUT_ONLY_TYPES = ("start", "end")


def hashid(execution_id: str) -> str:
    """The short id of a run: base62 of the 80 random bits of "exec_<20 hex>"; other ids as they are."""
    match = _RUN_ID.fullmatch(execution_id)
    if match is None:
        return execution_id
    number = int(match.group(1), 16)
    digits = []
    for _ in range(HASHID_LENGTH):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def execution_id_of(identifier: str) -> str:
    """The run id a path segment names: a hashid is turned back into its id, anything else is kept."""
    if _HASHID.fullmatch(identifier) is None:
        return identifier
    number = 0
    for char in identifier:
        number = number * 62 + BASE62.index(char)
    if number >= 1 << 80:
        return identifier
    return f"exec_{number:020x}"


def slug(name: str) -> str:
    """ "Workflow 8" -> "workflow_8"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _whole(number: float) -> int | float:
    return int(number) if float(number).is_integer() else number


def _time(message: Any, field: str, where: tzinfo) -> str | None:
    if not message.HasField(field):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    return timefmt.iso_in(timefmt.from_timestamp(stamp), where)


def _node_status(status: common_pb2.NodeStatus.ValueType) -> str:
    return common_pb2.NodeStatus.Name(status).removeprefix("NODE_STATUS_").lower()


def _key_of(node: execution_pb2.NodeState) -> str:
    frames = [{"parentNodeId": f.parent_node_id, "index": f.index} for f in node.stack]
    return node_key(node.node_id, frames)


def counts(execution: execution_pb2.Execution) -> dict[str, int]:
    """The API's per-state action counts from runctl's node counts."""
    folded = dict.fromkeys(("completed", "failed", "idle", "running", "stopped"), 0)
    node_counts = execution.node_counts
    for status, into in COUNTED_AS.items():
        folded[into] += int(getattr(node_counts, status))
    return {
        "actions_count": int(node_counts.total),
        "completed_actions_count": folded["completed"],
        "failed_actions_count": folded["failed"],
        "idle_actions_count": folded["idle"],
        "running_actions_count": folded["running"],
        "stopped_actions_count": folded["stopped"],
    }


def stats(execution: execution_pb2.Execution, where: tzinfo) -> dict[str, dict[str, Any]]:
    """Each node run by key, each edge by "from-to"; a node is followed by the edges leaving it."""
    leaving: dict[str, list[execution_pb2.EdgeState]] = {}
    for edge in execution.edges:
        leaving.setdefault(edge.from_node_id, []).append(edge)
    result: dict[str, dict[str, Any]] = {}
    for node in execution.nodes:
        entry: dict[str, Any] = {"status": _node_status(node.status)}
        entry["scheduled_at"] = _time(node, "schedule_time", where)
        end = _time(node, "end_time", where)
        entry.update({key: end if node.status == status else None for key, status in END_TIMES.items()})
        result[_key_of(node)] = entry
        if node.stack:
            continue
        for edge in leaving.pop(node.node_id, []):
            result.setdefault(f"{edge.from_node_id}-{edge.to_node_id}", _edge(edge))
    for edges in leaving.values():  # edges whose source has no node state (not expected)
        for edge in edges:
            result.setdefault(f"{edge.from_node_id}-{edge.to_node_id}", _edge(edge))
    return result


def _edge(edge: execution_pb2.EdgeState) -> dict[str, Any]:
    return {"status": "open" if edge.status == execution_pb2.EDGE_STATUS_TAKEN else "closed"}


def _types(nodes: Iterable[workflow_pb2.Node]) -> list[str]:
    found: list[str] = []
    for node in nodes:
        if node.type not in LAYOUT_ONLY_TYPES and node.type not in found:
            found.append(node.type)
        if node.HasField("body"):
            found.extend(t for t in _types(node.body.nodes) if t not in found)
    return found


def template(definition: workflow_pb2.WorkflowDefinition) -> dict[str, Any]:
    """The workflow's layout: top-level nodes and edges, canvas size, positions, node types used."""
    return {
        "nodes": [{"id": n.id, "type": n.type, "name": n.name or n.id} for n in definition.nodes],
        "edges": [{"from": e.source, "to": e.target, "when": e.when or None} for e in definition.edges],
        "width": int(definition.width),
        "height": int(definition.height),
        "positions": {
            node_id: {"x": _whole(position.x), "y": _whole(position.y)}
            for node_id, position in definition.positions.items()
        },
        "action_types": _types(definition.nodes),
    }


def log(execution: execution_pb2.Execution, where: tzinfo) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if execution.HasField("error"):
        error = execution.error
        result["error"] = {"message": error.message, "node_id": error.node_id or None, "code": error.code}
    lines: dict[str, list[dict[str, Any]]] = {}
    for node in execution.nodes:
        for line in node.logs:
            lines.setdefault(_key_of(node), []).append(
                {
                    "time": _time(line, "time", where),
                    "level": common_pb2.LogLevel.Name(line.level).removeprefix("LOG_LEVEL_").lower(),
                    "message": line.message,
                    "details": struct_to_dict(line.details) if line.HasField("details") else None,
                }
            )
    if lines:
        result["nodes"] = lines
    return result


def execution_object(execution: execution_pb2.Execution, where: tzinfo) -> dict[str, Any]:
    """The execution object API's Execution object; timestamps in `where`, plus UTC and a human string."""
    created = timefmt.from_timestamp(execution.create_time)
    body: dict[str, Any] = {
        "hashid": hashid(execution.id),
        **counts(execution),
        "created_at": timefmt.iso_in(created, where),
        "created_at_string": timefmt.human(created, where),
        "created_at_utc": timefmt.iso_utc(created),
        "execution_data": struct_to_dict(execution.data) if execution.HasField("data") else None,
        "id": execution.id,
        "key": execution.workflow_id or slug(execution.workflow_name) or execution.id,
        "log": log(execution, where),
        "name": execution.workflow_name,
        "object": OBJECT,
        "status": status_word(execution.status),
        "stats": stats(execution, where),
        "template": template(execution.definition),
    }
    return dict(sorted(body.items()))  # the API lists its fields alphabetically
