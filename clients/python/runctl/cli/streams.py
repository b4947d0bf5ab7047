"""Following a run or a batch by its watch stream (WatchExecution, WatchBatch), not by polling.

A stream starts with a snapshot, then sends the events since; the state shown is the snapshot with
the events applied in order. The client's watch iterators reopen a dropped stream from the last cursor,
so nothing is missed or repeated. Where events do not carry all that is shown (a new pause point's form
and links), a fresh stream is opened for a new snapshot. Once the run or batch has ended, one more
stream gives its final snapshot: what is printed last is the server's whole record, not a patch.
"""

from __future__ import annotations

from collections.abc import Callable

from runctl.client import Client
from runctl.messages import FINISHED_BATCH_STATUSES, FINISHED_EXECUTION_STATUSES
from runctl.v1 import batch_resource_pb2, common_pb2, event_pb2, execution_pb2

Execution = execution_pb2.Execution
Batch = batch_resource_pb2.Batch

# Events after which the run's snapshot is read again: they tell that a pause point exists, not what a
# person needs to act on it (its form fields, its resume links).
_RESNAPSHOT_AFTER = frozenset({"execution_paused_attributes", "pause_point_created_attributes"})
_NODE_ENDED = frozenset(
    {
        "node_completed_attributes",
        "node_failed_attributes",
        "node_skipped_attributes",
        "node_stopped_attributes",
    }
)
_PAUSE_POINT_GONE = frozenset(
    {
        "pause_point_resumed_attributes",
        "pause_point_expired_attributes",
        "pause_point_cancelled_attributes",
    }
)
_BATCH_CHANGED = frozenset(
    {
        "batch_started_attributes",
        "batch_updated_attributes",
        "batch_completed_attributes",
        "batch_stopped_attributes",
    }
)


def _node(execution: Execution, event: event_pb2.Event) -> execution_pb2.NodeState:
    """The node run an event is about (by node id and for-each frames); a new loop iteration is added."""
    for node in execution.nodes:
        if node.node_id == event.node_id and list(node.stack) == list(event.stack):
            return node
    known = next((node for node in execution.nodes if node.node_id == event.node_id), None)
    added = execution.nodes.add(node_id=event.node_id, stack=list(event.stack))
    if known is not None:
        added.type, added.name = known.type, known.name
    return added


def _apply_node_event(execution: Execution, event: event_pb2.Event, kind: str) -> None:
    attributes = getattr(event, kind)
    node = _node(execution, event)
    node.status = attributes.status
    if attributes.node_type:
        node.type = attributes.node_type
    if kind == "node_started_attributes":
        node.attempts = attributes.attempt
        node.start_time.CopyFrom(event.time)
        node.ClearField("end_time")
        node.ClearField("error")
    elif kind == "node_waiting_attributes":
        node.context_id = attributes.context_id
    elif kind == "node_retrying_attributes":
        node.attempts = attributes.attempt
        node.error.CopyFrom(attributes.error)
        node.next_attempt_time.CopyFrom(attributes.retry_time)
    if kind in _NODE_ENDED:
        node.end_time.CopyFrom(event.time)
    if kind == "node_completed_attributes":
        node.output.CopyFrom(attributes.output)
    elif kind == "node_failed_attributes":
        node.attempts = attributes.attempt
        node.error.CopyFrom(attributes.error)


def apply_execution_event(execution: Execution, event: event_pb2.Event) -> bool:
    """Apply one of the run's events to `execution`, in place. True when the run should be read
    again for what the event does not carry (see _RESNAPSHOT_AFTER)."""
    kind = event.WhichOneof("attributes")
    if kind is None:
        return False
    if kind.startswith("node_") and kind != "node_log_attributes":
        _apply_node_event(execution, event, kind)
    elif kind == "execution_queued_attributes":
        execution.status = common_pb2.EXECUTION_STATUS_QUEUED
    elif kind == "execution_started_attributes":
        execution.status = common_pb2.EXECUTION_STATUS_RUNNING
        execution.start_time.CopyFrom(event.time)
    elif kind == "execution_paused_attributes":
        execution.status = common_pb2.EXECUTION_STATUS_PAUSED
        execution.pause_reason = event.execution_paused_attributes.reason
        execution.paused_node_id = event.node_id
    elif kind == "execution_resumed_attributes":
        execution.status = common_pb2.EXECUTION_STATUS_RUNNING
        execution.pause_reason = common_pb2.PAUSE_REASON_UNSPECIFIED
        execution.paused_node_id = ""
    elif kind in ("execution_completed_attributes", "execution_stopped_attributes"):
        attributes = getattr(event, kind)
        execution.status = attributes.status
        execution.output.CopyFrom(attributes.output)
        execution.end_time.CopyFrom(event.time)
    elif kind == "execution_failed_attributes":
        execution.status = event.execution_failed_attributes.status
        execution.error.CopyFrom(event.execution_failed_attributes.error)
        execution.end_time.CopyFrom(event.time)
    elif kind in _PAUSE_POINT_GONE:
        gone = getattr(event, kind).context_id
        kept = [point for point in execution.pause_points if point.context_id != gone]
        del execution.pause_points[:]
        execution.pause_points.extend(kept)
    return kind in _RESNAPSHOT_AFTER


def final_execution(client: Client, execution_id: str) -> Execution:
    """The run as the server has it, from the snapshot that opens a fresh WatchExecution."""
    for message in client.watch_execution(execution_id):
        if message.WhichOneof("kind") == "snapshot":
            return message.snapshot
    raise RuntimeError(f"WatchExecution of {execution_id} ended without a snapshot")


def follow_execution(
    client: Client,
    execution_id: str,
    *,
    until: Callable[[Execution], bool],
    changed: Callable[[Execution], None] = lambda _: None,
) -> Execution:
    """Follow a run on WatchExecution until it ends or `until(state)` holds, calling `changed(state)`
    after every snapshot and batch of events; returns the run's final snapshot."""
    while True:
        state: Execution | None = None
        reread = False
        for message in client.watch_execution(execution_id):
            kind = message.WhichOneof("kind")
            if kind == "snapshot":
                state = Execution()
                state.CopyFrom(message.snapshot)
            elif kind == "events" and state is not None:
                for event in message.events.events:
                    reread = apply_execution_event(state, event) or reread
            else:
                continue
            changed(state)
            if state.status in FINISHED_EXECUTION_STATUSES or until(state):
                return final_execution(client, execution_id)
            if reread:
                break  # a fresh stream, for a fresh snapshot
        else:
            return final_execution(client, execution_id)  # the stream ends with the run


def _apply_batch_event(batch: Batch, event: event_pb2.Event) -> None:
    kind = event.WhichOneof("attributes")
    if kind not in _BATCH_CHANGED:
        return
    # Batch events carry the batch's counts and status without its runs: keep the runs held.
    items = list(batch.executions)
    batch.CopyFrom(getattr(event, kind).batch)
    batch.executions.extend(items)


def final_batch(client: Client, batch_id: str) -> Batch:
    """The batch with its runs as the server has it, from the snapshot that opens a fresh WatchBatch."""
    for message in client.watch_batch(batch_id):
        if message.WhichOneof("kind") == "snapshot":
            return message.snapshot
    raise RuntimeError(f"WatchBatch of {batch_id} ended without a snapshot")


def follow_batch(client: Client, batch_id: str, changed: Callable[[Batch], None] = lambda _: None) -> Batch:
    """Follow a batch on WatchBatch until it ends, calling `changed(state)` as its counts move;
    returns its final snapshot (with its runs)."""
    state: Batch | None = None
    for message in client.watch_batch(batch_id):
        kind = message.WhichOneof("kind")
        if kind == "snapshot":
            state = Batch()
            state.CopyFrom(message.snapshot)
        elif kind == "events" and state is not None:
            for event in message.events.events:
                _apply_batch_event(state, event)
        else:
            continue
        changed(state)
        if state.status in FINISHED_BATCH_STATUSES:
            break
    return final_batch(client, batch_id)
