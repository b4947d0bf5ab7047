"""Every state change of a run, each with the event that records it. Pure in-memory edits: the
driver commits them (rows and events in one transaction) before anything is published."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runctl_server.engine.model import (
    BREAKPOINT,
    COMPLETED,
    FAILED,
    PAUSED,
    RUNNING,
    SCHEDULED,
    SKIPPED,
    STOPPED,
    WAITING,
    NodeRecord,
    Run,
    new_id,
    now,
)
from runctl_server.nodes.spec import NodeSpec
from runctl_server.store import pause_points, tasks
from runctl_server.store.writer import dumps


def _node_event(run: Run, record: NodeRecord, event_type: str, **extra: Any) -> None:
    payload: dict[str, Any] = {"nodeKey": record.key, "nodeType": record.node_type, "status": record.status}
    if record.stack:
        payload["stack"] = record.stack
    payload.update(extra)
    run.emit(event_type, record.node_id, **payload)
    run.touch(record)


def start_node(run: Run, record: NodeRecord) -> None:
    stamp = now()
    record.status = RUNNING
    record.attempts += 1
    record.scheduled_at = record.scheduled_at or stamp
    record.started_at = stamp
    record.wake_at = None
    if run.current_node_id != record.node_id:
        run.current_node_id = record.node_id
        run.row_dirty = True
    _node_event(run, record, "NODE_STARTED", attempt=record.attempts)


def complete_node(run: Run, record: NodeRecord, output: Any, branches: frozenset[str] | None) -> None:
    record.status = COMPLETED
    record.output = output
    record.branches = sorted(branches) if branches is not None else None
    record.completed_at = now()
    record.error = None
    record.wake_at = None
    _node_event(run, record, "NODE_COMPLETED", output=output, branches=record.branches)


def skip_node(run: Run, record: NodeRecord, reason: str = "no incoming branch was taken") -> None:
    record.status = SKIPPED
    record.wake_at = None
    _node_event(run, record, "NODE_SKIPPED", reason=reason)


def fail_node(run: Run, record: NodeRecord, message: str, code: str) -> None:
    record.status = FAILED
    record.error = {"message": message, "code": code}
    record.failed_at = now()
    record.wake_at = None
    _node_event(run, record, "NODE_FAILED", error=record.error, attempt=record.attempts)


def retry_node(run: Run, record: NodeRecord, message: str, code: str, *, wake_at: float) -> None:
    record.status = SCHEDULED
    record.error = {"message": message, "code": code}
    record.wake_at = wake_at
    _node_event(run, record, "NODE_RETRYING", error=record.error, attempt=record.attempts, retryAt=wake_at)


def stop_node(run: Run, record: NodeRecord) -> None:
    record.status = STOPPED
    record.stopped_at = now()
    record.wake_at = None
    _node_event(run, record, "NODE_STOPPED")


def stop_open_nodes(run: Run) -> None:
    """A run ends: every node still running, waiting or scheduled stops, with its pause point
    cancelled and its worker task withdrawn, so nothing outlives the run."""
    for record in run.nodes.values():
        if record.status not in (RUNNING, WAITING, SCHEDULED):
            continue
        state = record.state or {}
        if state.get("taskId"):
            cancel_task(run, record)
        elif state.get("contextId"):
            resolve_pause(run, record, "cancelled")
        stop_node(run, record)


def log_line(run: Run, record: NodeRecord, line: dict[str, Any]) -> None:
    """Keep a log line on the node and publish it as a NODE_LOG event (history and streams)."""
    record.logs.append(line)
    run.touch(record)
    run.emit(
        "NODE_LOG",
        record.node_id,
        nodeKey=record.key,
        level=line.get("level", "info"),
        message=line.get("message", ""),
        details=line.get("details") or {},
    )


def wait_node(run: Run, record: NodeRecord, *, wake_at: float) -> None:
    """A durable timer: the node waits until `wake_at` (epoch seconds)."""
    record.status = WAITING
    record.wake_at = wake_at
    _node_event(run, record, "NODE_WAITING", until=wake_at)


def resume_from_wait(run: Run, record: NodeRecord) -> None:
    record.status = RUNNING
    record.wake_at = None
    run.touch(record)


def pause_node(run: Run, record: NodeRecord, pause: dict[str, Any], *, workflow_id: str | None) -> str:
    """Register a pause point (a row) where a person or a program must resume the run."""
    context_id = new_id("ctx")
    kind = str(pause.get("kind", "wait"))
    stamp = now()
    expires_at = stamp + float(pause["timeoutSeconds"]) if pause.get("timeoutSeconds") else None
    display = pause.get("display")
    run.statements.append(
        pause_points.insert(
            context_id,
            workspace_id=run.workspace_id,
            execution_id=run.id,
            workflow_id=workflow_id,
            node_key=record.key,
            node_id=record.node_id,
            kind=kind,
            display=dumps(display) if display is not None else None,
            form_fields=dumps(pause.get("formFields") or []),
            stack=dumps(record.stack),
            registered_at=stamp,
            expires_at=expires_at,
            expiry_action=pause.get("onTimeout"),
        )
    )
    record.status = WAITING
    record.state = {**(record.state or {}), "contextId": context_id, "pauseKind": kind}
    record.wake_at = expires_at
    _node_event(run, record, "NODE_WAITING", contextId=context_id, pauseKind=kind)
    run.emit("PAUSE_POINT_CREATED", record.node_id, contextId=context_id, kind=kind, nodeKey=record.key)
    was_paused = run.status == PAUSED
    run.status = PAUSED
    run.current_node_id = record.node_id  # where the run stands: at its pause point
    run.paused_node_id = record.node_id
    run.pause_reason = kind
    run.row_dirty = True
    if not was_paused:
        run.emit("EXECUTION_PAUSED", record.node_id, reason=kind, contextId=context_id)
    return context_id


def pause_at_breakpoint(run: Run, record: NodeRecord, *, workflow_id: str | None) -> str:
    return pause_node(run, record, {"kind": BREAKPOINT}, workflow_id=workflow_id)


def resolve_pause(run: Run, record: NodeRecord, status: str, data: Any = None) -> None:
    """Close the node's pause point as resumed, expired or cancelled."""
    state = dict(record.state or {})
    context_id = state.pop("contextId", None)
    state.pop("pauseKind", None)
    record.state = state or None
    record.wake_at = None
    run.touch(record)
    if context_id is None:
        return
    run.statements.append(
        pause_points.resolve(
            context_id,
            status,
            resolved_at=now(),
            resume_data=dumps(data) if data is not None else None,
        )
    )
    event = {"resumed": "PAUSE_POINT_RESUMED", "expired": "PAUSE_POINT_EXPIRED"}.get(
        status, "PAUSE_POINT_CANCELLED"
    )
    run.emit(event, record.node_id, contextId=context_id, nodeKey=record.key)


def expire_pause(run: Run, record: NodeRecord, node: NodeSpec) -> None:
    resolve_pause(run, record, "expired")
    record.status = RUNNING


def clear_wait(run: Run, record: NodeRecord, data: Any = None) -> None:
    """The thing the node waited for arrived: close its pause point or task reference."""
    if (record.state or {}).get("contextId"):
        resolve_pause(run, record, "resumed", data)
    state = dict(record.state or {})
    state.pop("taskId", None)
    state.pop("childId", None)
    state.pop("child", None)
    record.state = state or None
    record.wake_at = None
    run.touch(record)


def create_task(run: Run, record: NodeRecord, task: dict[str, Any], node: NodeSpec) -> Mapping[str, Any]:
    """Hand the node to external workers of its queue: a tasks row, leased later by a poller. Answers
    the new row's columns (for those told of the task after the commit)."""
    task_id = new_id("task")
    stamp = now()
    change = tasks.insert(
        task_id,
        workspace_id=run.workspace_id,
        execution_id=run.id,
        node_key=record.key,
        node_id=record.node_id,
        queue=str(task.get("queue") or node.queue or node.type),
        type=node.type,
        attempt=record.attempts,
        idempotency_key=f"{run.id}/{record.key}",
        payload=dumps({"config": task.get("config"), "input": task.get("input"), "stack": record.stack}),
        heartbeat_timeout=float(task.get("heartbeatTimeoutSeconds") or 30.0),
        created_at=stamp,
    )
    run.statements.append(change)
    record.state = {**(record.state or {}), "taskId": task_id}
    run.touch(record)
    return change[1]


def cancel_task(run: Run, record: NodeRecord) -> None:
    task_id = (record.state or {}).get("taskId")
    if task_id:
        run.statements.append(tasks.cancel(task_id, now()))
        clear_wait(run, record)


def wait_child(run: Run, record: NodeRecord, child: dict[str, Any]) -> None:
    """The node waits on a sub-workflow run; the spec is kept so recovery can start it again."""
    record.state = {**(record.state or {}), "childId": "pending", "child": child}
    run.touch(record)


def hold_run(run: Run, reason: str, node_id: str | None) -> None:
    """The run is paused by a hold (an operator's, or its workflow's) before `node_id`."""
    if run.status == PAUSED and run.pause_reason == reason:
        return
    run.status = PAUSED
    run.pause_reason = reason
    run.paused_node_id = node_id
    run.row_dirty = True
    run.emit("EXECUTION_PAUSED", node_id, reason=reason)


def start_queued(run: Run) -> None:
    """A queued run gets its turn: it starts now."""
    run.status = RUNNING
    run.started_at = now()
    run.row_dirty = True
    run.emit("EXECUTION_STARTED", input=run.input, name=run.name)


def stop_run(run: Run, reason: str) -> None:
    finish_run(run, STOPPED, reason=reason, was=run.status)


def set_run_status(run: Run, status: str) -> None:
    if run.status == status:
        return
    if run.status == PAUSED and status == RUNNING:
        run.paused_node_id = None
        run.pause_reason = None
        run.emit("EXECUTION_RESUMED")
    run.status = status
    run.row_dirty = True


def finish_run(
    run: Run, status: str, *, error: dict[str, Any] | None = None, output: Any = None, **extra: Any
) -> None:
    run.status = status
    run.error = error
    run.output = output
    run.ended_at = now()
    run.current_node_id = None
    run.paused_node_id = None
    run.pause_reason = None
    run.parked = False
    run.row_dirty = True
    event = {COMPLETED: "EXECUTION_COMPLETED", STOPPED: "EXECUTION_STOPPED"}.get(status, "EXECUTION_FAILED")
    if error is not None:
        run.emit(event, error.get("nodeId"), status=status, error=error, **extra)
    else:
        run.emit(event, status=status, output=output, **extra)
