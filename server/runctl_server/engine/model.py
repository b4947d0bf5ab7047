"""The in-memory picture of a run the scheduler is driving, and the vocabulary of states."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from runctl_server.engine.definition import Definition
from runctl_server.store.writer import Change, EventRecord

# Execution statuses.
QUEUED, RUNNING, PAUSED, COMPLETED, ERROR, STOPPED = (
    "queued",
    "running",
    "paused",
    "completed",
    "error",
    "stopped",
)
ACTIVE_EXECUTION = (QUEUED, RUNNING, PAUSED)
FINISHED_EXECUTION = (COMPLETED, ERROR, STOPPED)

# Node statuses.
IDLE, SCHEDULED, WAITING, FAILED, SKIPPED = "idle", "scheduled", "waiting", "failed", "skipped"
NODE_DONE = (COMPLETED, SKIPPED, FAILED, STOPPED)

# Execution-level pause reasons (the proto PauseReason words).
BREAKPOINT, WAIT, APPROVAL, MANUAL, WORKFLOW_PAUSED = (
    "breakpoint",
    "wait",
    "approval",
    "manual",
    "workflow_paused",
)


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier with a type prefix (exec_..., wf_..., ctx_...)."""
    return f"{prefix}_{secrets.token_hex(10)}"


def now() -> float:
    return time.time()


@dataclass
class NodeRecord:
    """One node, or one loop-body node in one iteration, of one run: a row of node_states."""

    key: str
    node_id: str
    node_type: str
    status: str = IDLE
    attempts: int = 0
    output: Any = None
    error: dict[str, Any] | None = None
    branches: list[str] | None = None
    stack: list[dict[str, Any]] = field(default_factory=list)
    scheduled_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    stopped_at: float | None = None
    failed_at: float | None = None
    wake_at: float | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.status in NODE_DONE


@dataclass
class Run:
    """A run being driven. Only the run's driver task changes it; everything else posts to `inbox`."""

    id: str
    workspace_id: str
    definition: Definition
    input: dict[str, Any]
    name: str
    workflow_id: str | None = None
    workflow_version: int | None = None
    batch_id: str | None = None
    status: str = RUNNING
    trace_logs: bool = False
    breakpoints_disabled: bool = False
    current_node_id: str | None = None
    paused_node_id: str | None = None
    pause_reason: str | None = None
    error: dict[str, Any] | None = None
    created_at: float = field(default_factory=now)
    started_at: float | None = None
    ended_at: float | None = None
    parent_execution_id: str | None = None
    parent_node_key: str | None = None
    # The run's result once completed (the end node's output); kept for a waiting parent.
    output: Any = None
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    # Node keys changed since the last commit, and whether the execution row changed.
    dirty: set[str] = field(default_factory=set)
    row_dirty: bool = False
    # True once the run waits on nothing in-process; committed so recovery can leave it alone.
    parked: bool = False
    # An operator's hold ("manual"): the run starts no new node until released.
    hold: str | None = None
    parked_committed: bool = False
    source_path: str | None = None
    # The W3C traceparent of the call that started the run: every span of the run joins its trace.
    trace_parent: str | None = None
    # The fencing token of this process's lease on the run (replicas): every commit is checked against it.
    lease_epoch: int = 0
    # Statements and events of changes not yet handed to the writer.
    statements: list[Change] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    # Outputs of completed top-level nodes, kept ready for expressions: {"<id>": {"output": ...}}.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in (COMPLETED, ERROR, STOPPED)

    def node(
        self, key: str, node_id: str, node_type: str, stack: list[dict[str, Any]] | None = None
    ) -> NodeRecord:
        record = self.nodes.get(key)
        if record is None:
            record = NodeRecord(key=key, node_id=node_id, node_type=node_type, stack=list(stack or []))
            self.nodes[key] = record
        return record

    def touch(self, record: NodeRecord) -> None:
        self.dirty.add(record.key)

    def emit(self, event_type: str, node_id: str | None = None, **payload: Any) -> None:
        self.events.append(
            EventRecord(
                type=event_type,
                workspace_id=self.workspace_id,
                execution_id=self.id,
                workflow_id=self.workflow_id,
                batch_id=self.batch_id,
                node_id=node_id,
                payload=payload,
            )
        )
