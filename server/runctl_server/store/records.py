"""Typed records: rows as the store hands them upward (frozen, attribute access, no dict rows)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, cast

RecordT = TypeVar("RecordT")
DerivedT = TypeVar("DerivedT")


def record(cls: type[RecordT], row: Mapping[str, Any]) -> RecordT:
    """The record of a row that holds (at least) every field of `cls`."""
    names = _fields(cls)
    return cls(**{name: row[name] for name in names})


_FIELDS: dict[type[Any], tuple[str, ...]] = {}


def _fields(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(field.name for field in fields(cls))
    return names


@dataclass(frozen=True)
class WorkflowRecord:
    """A workflow (its latest version's name and description unless read at a version)."""

    id: str
    workspace_id: str
    name: str
    description: str
    status: str
    version: int
    secret_hash: str
    request_id: str | None
    created_at: float
    updated_at: float
    paused_at: float | None
    deleted_at: float | None
    previous_secret_hash: str | None
    previous_secret_until: float | None


@dataclass(frozen=True)
class PausePointRecord:
    """A pause point; `display`, `form_fields`, `stack` and `resume_data` are JSON text."""

    context_id: str
    workspace_id: str
    execution_id: str
    workflow_id: str | None
    node_key: str
    node_id: str
    kind: str
    status: str
    display: str | None
    form_fields: str | None
    stack: str | None
    registered_at: float
    expires_at: float | None
    expiry_action: str | None
    resolved_at: float | None
    resume_data: str | None


@dataclass(frozen=True)
class NodeStateRecord:
    """One node run of a run (a loop iteration has a `stack`); JSON columns are JSON text."""

    execution_id: str
    node_key: str
    node_id: str
    node_type: str
    status: str
    attempts: int
    output: str | None
    error: str | None
    branches: str | None
    stack: str | None
    scheduled_at: float | None
    started_at: float | None
    completed_at: float | None
    stopped_at: float | None
    failed_at: float | None
    wake_at: float | None
    logs: str | None
    state: str | None


@dataclass(frozen=True)
class RunRecord:
    """A run (an execution); `document`, `input` and `error` are JSON text."""

    id: str
    workspace_id: str
    workflow_id: str | None
    workflow_version: int | None
    document: str | None
    name: str
    source_path: str | None
    status: str
    input: str
    current_node_id: str | None
    paused_node_id: str | None
    pause_reason: str | None
    trace_logs: bool
    breakpoints_disabled: bool
    error: str | None
    batch_id: str | None
    parent_execution_id: str | None
    parent_node_key: str | None
    request_id: str | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    updated_at: float
    parked: bool
    hold: str | None
    lease_owner: str | None
    lease_epoch: int
    trace_parent: str | None


@dataclass(frozen=True)
class BatchRecord:
    """A batch; `input` is JSON text."""

    id: str
    workspace_id: str
    status: str
    source_type: str
    folder_path: str | None
    concurrency: int
    total: int
    input: str | None
    request_id: str | None
    created_at: float
    ended_at: float | None


@dataclass(frozen=True)
class BatchItemRecord:
    """One run of a batch in source order, with how its run stands (None when the run is gone)."""

    position: int
    execution_id: str
    workflow_id: str | None
    workflow_path: str | None
    workflow_file_name: str | None
    status: str | None
    current_node_id: str | None
    error: str | None
    started_at: float | None
    ended_at: float | None


@dataclass(frozen=True)
class BatchUsage:
    """A batch with how many runs it has and how many of them are still active."""

    id: str
    status: str
    runs: int
    active: int


@dataclass(frozen=True)
class TaskRecord:
    """A task for external workers with what decides whether it is still wanted: its run's status and
    workflow, and its node's status, state (JSON text) and wake-up (the task's deadline)."""

    id: str
    workspace_id: str
    execution_id: str
    node_key: str
    node_id: str
    queue: str
    type: str
    status: str
    attempt: int
    idempotency_key: str
    payload: str
    lease_owner: str | None
    lease_expires_at: float | None
    heartbeat_timeout: float
    updated_at: float
    workflow_id: str | None
    run_status: str
    trace_logs: bool
    node_status: str | None
    node_state: str | None
    node_wake_at: float | None


@dataclass(frozen=True)
class OpenTask:
    """A pending or leased task, as the dispatcher tracks it after a restart."""

    id: str
    workspace_id: str
    queue: str
    status: str
    lease_owner: str | None
    lease_expires_at: float | None


@dataclass(frozen=True)
class RunState:
    """Where a run stands: its status and the hold that keeps it from starting nodes, if any."""

    id: str
    status: str
    hold: str | None


@dataclass(frozen=True)
class DueTimer:
    """A node's wake-up (epoch seconds)."""

    execution_id: str
    node_key: str
    wake_at: float


@dataclass(frozen=True)
class ChildWait:
    """A running node that started a child run; its `state` (JSON text) names the child."""

    execution_id: str
    node_key: str
    attempts: int
    state: str


@dataclass(frozen=True)
class PausedRun:
    """A run that paused, with when it first paused."""

    execution_id: str
    paused_at: float


@dataclass(frozen=True)
class RunOrigin:
    """Where a run came from: its batch, and the workflow file it was started from."""

    id: str
    batch_id: str | None
    source_path: str | None


@dataclass(slots=True)
class LoggedEvent:
    """An event of the log: read back from the table, or committed by this process (the writer's
    EventRecord, which extends this with the payload to append, is numbered at its commit; that is
    why this record is not frozen). Once committed nothing changes it. `payload_json` is the payload
    as committed (JSON text).

    One committed event goes to every watcher of it: what they derive from it (the API's Event
    message) is made once and kept on the event, in `derived`'s cache."""

    type: str
    workspace_id: str
    execution_id: str | None = None
    workflow_id: str | None = None
    batch_id: str | None = None
    node_id: str | None = None
    time: float = 0.0
    sequence: int = 0
    payload_json: str = ""
    # The cache of `derived`: deriving function -> what it made of this event. None until asked,
    # so an event nobody watches costs no dict.
    _derived: dict[Callable[[Any], Any], Any] | None = field(default=None, repr=False, compare=False)

    def derived(self, make: Callable[[LoggedEvent], DerivedT]) -> DerivedT:
        """`make(self)`, made on the first call and shared by every later one (with the same `make`)."""
        cache = self._derived
        if cache is None:
            cache = self._derived = {}
        try:
            return cast(DerivedT, cache[make])
        except KeyError:
            value = cache[make] = make(self)
            return value


def logged_event(row: Mapping[str, Any]) -> LoggedEvent:
    """The record of a row of the events table."""
    return LoggedEvent(
        type=row["type"],
        workspace_id=row["workspace_id"],
        execution_id=row["execution_id"],
        workflow_id=row["workflow_id"],
        batch_id=row["batch_id"],
        node_id=row["node_id"],
        time=float(row["time"]),
        sequence=int(row["sequence"]),
        payload_json=row["payload"] or "{}",
    )


@dataclass(frozen=True)
class NodeCount:
    """How many node runs of a run are in one status, among its top-level nodes or its loop iterations."""

    execution_id: str
    status: str
    top: bool
    n: int


@dataclass(frozen=True)
class BatchRunCount:
    """How many runs of a batch are in one status."""

    batch_id: str
    status: str
    n: int


@dataclass(frozen=True)
class ActiveRunCount:
    """How many active runs are in one status, parked (waiting on nothing in-process) or not."""

    status: str
    parked: bool
    n: int


@dataclass(frozen=True)
class RunSnapshot:
    """A run as one moment of the database saw it: its row and the sequence of its last event, with
    (as asked) its node states, open pause points and workflow version's document, or its node counts."""

    run: RunRecord
    last_sequence: int
    nodes: list[NodeStateRecord] = field(default_factory=list)
    pause_points: list[PausePointRecord] = field(default_factory=list)
    version_document: str | None = None
    node_counts: list[NodeCount] = field(default_factory=list)


@dataclass(frozen=True)
class BatchSnapshot:
    """A batch as one moment of the database saw it: its row, its runs per status, the sequence of its
    last event, and (as asked) its items in source order."""

    batch: BatchRecord
    counts: list[BatchRunCount]
    last_sequence: int
    items: list[BatchItemRecord] = field(default_factory=list)
