"""The local runner API's live updates made from the event log: `execution-update`, `batch-update`,
`node-execution`.

Events carry what changed, not a run's whole short status, so a RunTracker keeps the short status
(a RunStatus) of the runs it has seen, applies each event to it in log order, and answers the
local runner API payload to push. A run met for the first time in the middle of its life (the process started
after it, or the tracker forgot it) is loaded once (a BASIC read of the run). The tracker
is bounded: a paused run costs nothing here once it falls out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from runctl.v1 import batch_resource_pb2, common_pb2, event_pb2
from runctl_server.api import event_convert
from runctl_server.http.runner_shapes import RunStatus, batch_update, execution_status
from runctl_server.store.records import LoggedEvent

EXECUTION_UPDATE = "execution-update"
BATCH_UPDATE = "batch-update"
NODE_EXECUTION = "node-execution"

RUN_EVENTS = {
    "EXECUTION_QUEUED": common_pb2.EXECUTION_STATUS_QUEUED,
    "EXECUTION_STARTED": common_pb2.EXECUTION_STATUS_RUNNING,
    "EXECUTION_PAUSED": common_pb2.EXECUTION_STATUS_PAUSED,
    "EXECUTION_RESUMED": common_pb2.EXECUTION_STATUS_RUNNING,
    "EXECUTION_COMPLETED": common_pb2.EXECUTION_STATUS_COMPLETED,
    "EXECUTION_FAILED": common_pb2.EXECUTION_STATUS_ERROR,
    "EXECUTION_STOPPED": common_pb2.EXECUTION_STATUS_STOPPED,
}
FINISHED = frozenset(
    {
        common_pb2.EXECUTION_STATUS_COMPLETED,
        common_pb2.EXECUTION_STATUS_ERROR,
        common_pb2.EXECUTION_STATUS_STOPPED,
    }
)
# A node's status in `node-execution`; a failed node says "error", as a failed run does in the
# local runner API.
NODE_EVENTS = {
    "NODE_SCHEDULED": "scheduled",
    "NODE_STARTED": "running",
    "NODE_WAITING": "waiting",
    "NODE_COMPLETED": "completed",
    "NODE_FAILED": "error",
    "NODE_SKIPPED": "skipped",
    "NODE_STOPPED": "stopped",
    "NODE_RETRYING": "retrying",
}
BATCH_EVENTS = frozenset({"BATCH_STARTED", "BATCH_UPDATED", "BATCH_COMPLETED", "BATCH_STOPPED"})
LIVE_EVENT_TYPES = frozenset({*RUN_EVENTS, *NODE_EVENTS, *BATCH_EVENTS})
TRACKED_RUNS = 10_000

LoadSummary = Callable[[str], Awaitable[RunStatus | None]]


@dataclass(frozen=True)
class Update:
    """One Socket.IO message to push: its event name, its payload, and the run and batch it concerns
    (which decide the rooms it goes to)."""

    name: str
    data: dict[str, Any]
    execution_id: str = ""
    batch_id: str = ""


def _attributes(event: event_pb2.Event) -> Any:
    """The event's typed attributes (event_convert made them from the stored payload)."""
    which = event.WhichOneof("attributes")
    return getattr(event, which) if which is not None else None


def _error_message(event: event_pb2.Event) -> str:
    error = getattr(_attributes(event), "error", None)
    return str(error.message) if error is not None else ""


class RunTracker:
    """The short status of recently seen runs, kept current by applying their events in order."""

    def __init__(self, load: LoadSummary, capacity: int = TRACKED_RUNS) -> None:
        self._load = load
        self._capacity = capacity
        self._runs: OrderedDict[str, RunStatus] = OrderedDict()

    def __len__(self) -> int:
        return len(self._runs)

    async def _summary(self, logged: LoggedEvent) -> RunStatus:
        execution_id = str(logged.execution_id)
        summary = self._runs.get(execution_id)
        if summary is not None:
            self._runs.move_to_end(execution_id)
            return summary
        if logged.type != "EXECUTION_QUEUED" and logged.type != "EXECUTION_STARTED":
            summary = await self._load(execution_id)
        if summary is None:  # gone (cleared) or new: any event but QUEUED means it runs
            summary = RunStatus(execution_id=execution_id, status=common_pb2.EXECUTION_STATUS_RUNNING)
        summary.batch_id = summary.batch_id or logged.batch_id or ""
        summary.workflow_id = summary.workflow_id or logged.workflow_id or ""
        self._runs[execution_id] = summary
        while len(self._runs) > self._capacity:
            self._runs.popitem(last=False)
        return summary

    async def apply(self, logged: LoggedEvent, event: event_pb2.Event) -> bool:
        """Apply one run or node event (as logged, and as an Event); answers whether the run's short
        status changed."""
        summary = await self._summary(logged)
        kind = logged.type
        if kind == "NODE_STARTED":
            node_id = logged.node_id or ""
            changed = summary.current_node_id != node_id
            summary.current_node_id = node_id
            return changed
        status = RUN_EVENTS.get(kind)
        if status is None:
            return False
        summary.status = status
        if kind == "EXECUTION_PAUSED":
            summary.paused_node_id = logged.node_id or ""
            summary.pause_reason = event.execution_paused_attributes.reason
        else:
            summary.paused_node_id = ""
            summary.pause_reason = common_pb2.PAUSE_REASON_UNSPECIFIED
        if status in FINISHED:
            summary.current_node_id = ""
            summary.error = _error_message(event) if status == common_pb2.EXECUTION_STATUS_ERROR else ""
        return True

    def current(self, execution_id: str) -> RunStatus | None:
        return self._runs.get(execution_id)

    def forget(self, execution_id: str) -> None:
        self._runs.pop(execution_id, None)


def execution_update(summary: RunStatus, sequence: int = 0) -> dict[str, Any]:
    """`execution-update`: the local runner API's status object, plus the run's batch and the event
    sequence."""
    data = execution_status(summary)
    if summary.batch_id:
        data["batchId"] = summary.batch_id
    if sequence:
        data["sequence"] = sequence
    return data


def node_execution(logged: LoggedEvent, event: event_pb2.Event) -> dict[str, Any]:
    """`node-execution`: which node of which run did what."""
    status = NODE_EVENTS[logged.type]
    data: dict[str, Any] = {
        "executionId": logged.execution_id,
        "nodeId": logged.node_id,
        "nodeType": getattr(_attributes(event), "node_type", ""),
        "status": status,
    }
    if logged.batch_id:
        data["batchId"] = logged.batch_id
    if event.stack:
        data["stack"] = [
            {"index": frame.index, "parentNodeId": frame.parent_node_id, "total": frame.total}
            for frame in event.stack
        ]
    if status == "error":
        data["error"] = _error_message(event)
    data["sequence"] = logged.sequence
    return data


def batch_message(event: event_pb2.Event) -> batch_resource_pb2.Batch:
    """A BATCH_* event's batch."""
    batch = getattr(_attributes(event), "batch", None)
    return batch if batch is not None else batch_resource_pb2.Batch()


class LiveUpdates:
    """Turns logged events (in log order) into the Socket.IO messages to push."""

    def __init__(self, load: LoadSummary) -> None:
        self.tracker = RunTracker(load)

    async def updates(self, logged: LoggedEvent) -> list[Update]:
        kind = logged.type
        event = event_convert.shared(logged)
        execution_id = logged.execution_id or ""
        batch_id = logged.batch_id or ""
        if kind in BATCH_EVENTS:
            data = batch_update(batch_message(event))
            return [Update(BATCH_UPDATE, data, batch_id=data["batchId"] or batch_id)]
        if not execution_id or (kind not in RUN_EVENTS and kind not in NODE_EVENTS):
            return []
        out: list[Update] = []
        if kind in NODE_EVENTS:
            out.append(Update(NODE_EXECUTION, node_execution(logged, event), execution_id, batch_id))
        if await self.tracker.apply(logged, event):
            summary = self.tracker.current(execution_id)
            assert summary is not None
            data = execution_update(summary, logged.sequence)
            out.append(Update(EXECUTION_UPDATE, data, execution_id, batch_id or summary.batch_id))
            if summary.status in FINISHED:
                self.tracker.forget(execution_id)
        return out
