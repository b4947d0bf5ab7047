"""Runs and their node states: the reads behind run views, lists, recovery and the scrape gauges, and
the engine's hot-path changes to them (committed through the writer)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import and_, case, false, func, or_, select
from sqlalchemy.sql import ColumnElement, Select

from runctl_server.store import sql
from runctl_server.store.reads import Reader, Row
from runctl_server.store.records import ChildWait, DueTimer, NodeStateRecord, RunRecord, RunState, record
from runctl_server.store.tables import events, executions, node_states, workflow_versions
from runctl_server.store.writer import Change

# Runs whose driver is (or should be) alive in some process.
IN_FLIGHT = ("running", "paused")
# Statuses of a run that has not ended; only such a run holds a lease.
ACTIVE = ("queued", "running", "paused")


def run_statement(execution_id: str, workspace_id: str | None = None) -> Select[tuple[object, ...]]:
    """One run's row; limited to a workspace when given."""
    statement = select(executions).where(executions.c.id == execution_id)
    if workspace_id is not None:
        statement = statement.where(executions.c.workspace_id == workspace_id)
    return statement


def nodes_statement(execution_id: str, *, ordered: bool = False) -> Select[tuple[object, ...]]:
    statement = select(node_states).where(node_states.c.execution_id == execution_id)
    return statement.order_by(node_states.c.node_key) if ordered else statement


def version_document_statement(execution_id: str) -> Select[tuple[object, ...]]:
    """The document of the workflow version a run started with."""
    return (
        select(workflow_versions.c.document)
        .join(
            executions,
            and_(
                executions.c.workflow_id == workflow_versions.c.workflow_id,
                executions.c.workflow_version == workflow_versions.c.version,
            ),
        )
        .where(executions.c.id == execution_id)
    )


def last_sequence_statement(execution_id: str) -> Select[tuple[object, ...]]:
    return select(func.max(events.c.sequence).label("last")).where(events.c.execution_id == execution_id)


def tally_statement(execution_ids: Sequence[str]) -> Select[tuple[object, ...]]:
    """Node runs per run, status and level (top 1 = a top-level node, 0 = a loop iteration)."""
    top = case((node_states.c.stack.is_(None), 1), else_=0)
    return (
        select(node_states.c.execution_id, node_states.c.status, top.label("top"), func.count().label("n"))
        .where(node_states.c.execution_id.in_(execution_ids))
        .group_by(node_states.c.execution_id, node_states.c.status, top)
    )


def run_records(rows: Sequence[Row]) -> list[RunRecord]:
    """Records of rows read with every column of executions (e.g. in a snapshot)."""
    return [record(RunRecord, row) for row in rows]


async def run(reader: Reader, execution_id: str, workspace_id: str | None = None) -> RunRecord | None:
    row = await reader.one(run_statement(execution_id, workspace_id))
    return None if row is None else record(RunRecord, row)


def node_records(rows: Sequence[Row]) -> list[NodeStateRecord]:
    """Records of rows read with every column of node_states (e.g. in a snapshot)."""
    return [record(NodeStateRecord, row) for row in rows]


async def node(reader: Reader, execution_id: str, node_key: str) -> NodeStateRecord | None:
    row = await reader.one(
        select(node_states).where(
            node_states.c.execution_id == execution_id, node_states.c.node_key == node_key
        )
    )
    return None if row is None else record(NodeStateRecord, row)


async def run_id_by_request(reader: Reader, workspace_id: str, request_id: str) -> str | None:
    row = await reader.one(
        select(executions.c.id).where(
            executions.c.workspace_id == workspace_id, executions.c.request_id == request_id
        )
    )
    return None if row is None else str(row["id"])


async def tallies(reader: Reader, execution_ids: Sequence[str]) -> list[Row]:
    return await reader.all(tally_statement(execution_ids))


async def last_sequence(reader: Reader, execution_id: str) -> int:
    row = await reader.one(last_sequence_statement(execution_id))
    return int(row["last"] or 0) if row else 0


async def most_recent(reader: Reader, workspace_id: str, statuses: Sequence[str] = ()) -> RunRecord | None:
    """The most recently created run of the workspace in one of `statuses` (any when empty)."""
    statement = select(executions).where(executions.c.workspace_id == workspace_id)
    if statuses:
        statement = statement.where(executions.c.status.in_(statuses))
    row = await reader.one(
        statement.order_by(executions.c.created_at.desc(), executions.c.id.desc()).limit(1)
    )
    return None if row is None else record(RunRecord, row)


async def page(
    reader: Reader,
    workspace_id: str,
    *,
    limit: int,
    workflow_id: str = "",
    batch_id: str = "",
    statuses: Sequence[str] = (),
    created_after: float | None = None,
    created_before: float | None = None,
    before: tuple[float, str] | None = None,
) -> tuple[int, list[RunRecord]]:
    """How many runs match, and the `limit` newest of them created before `before` (time, id)."""
    where = [executions.c.workspace_id == workspace_id]
    if workflow_id:
        where.append(executions.c.workflow_id == workflow_id)
    if batch_id:
        where.append(executions.c.batch_id == batch_id)
    if statuses:
        where.append(executions.c.status.in_(statuses))
    if created_after is not None:
        where.append(executions.c.created_at >= created_after)
    if created_before is not None:
        where.append(executions.c.created_at < created_before)
    counting = reader.all(select(func.count().label("n")).select_from(executions).where(*where))
    if before is not None:
        t, last_id = before
        where.append(
            or_(executions.c.created_at < t, and_(executions.c.created_at == t, executions.c.id < last_id))
        )
    paging = reader.all(
        select(executions)
        .where(*where)
        .order_by(executions.c.created_at.desc(), executions.c.id.desc())
        .limit(limit)
    )
    # The count walks every match (a covering index); the page only its own rows: side by side, a
    # page takes as long as the count alone.
    count, rows = await asyncio.gather(counting, paging)
    return int(count[0]["n"]), run_records(rows)


async def state_of(reader: Reader, execution_id: str, workspace_id: str) -> RunState | None:
    """Where a run of the workspace stands (None: no such run there)."""
    row = await reader.one(
        select(executions.c.id, executions.c.status, executions.c.hold).where(
            executions.c.id == execution_id, executions.c.workspace_id == workspace_id
        )
    )
    return None if row is None else record(RunState, row)


async def children_in(reader: Reader, parent_id: str, statuses: Sequence[str]) -> list[str]:
    rows = await reader.all(
        select(executions.c.id).where(
            executions.c.parent_execution_id == parent_id, executions.c.status.in_(statuses)
        )
    )
    return [str(row["id"]) for row in rows]


async def ids_matching(
    reader: Reader,
    workspace_id: str,
    statuses: Sequence[str],
    *,
    workflow_id: str = "",
    batch_id: str = "",
) -> list[str]:
    """Ids of the workspace's runs in `statuses`, oldest first, optionally of one workflow or batch."""
    statement = select(executions.c.id).where(
        executions.c.workspace_id == workspace_id, executions.c.status.in_(statuses)
    )
    if workflow_id:
        statement = statement.where(executions.c.workflow_id == workflow_id)
    if batch_id:
        statement = statement.where(executions.c.batch_id == batch_id)
    return [str(row["id"]) for row in await reader.all(statement.order_by(executions.c.created_at))]


async def in_flight_ids(reader: Reader, lease_owner: str | None = None) -> list[str]:
    """Runs mid-flight that wait on something in-process (not parked); only one replica's when given."""
    statement = select(executions.c.id).where(
        executions.c.status.in_(IN_FLIGHT), executions.c.parked == false()
    )
    if lease_owner is not None:
        statement = statement.where(executions.c.lease_owner == lease_owner)
    return [str(row["id"]) for row in await reader.all(statement)]


async def awaiting_children(reader: Reader, execution_ids: Sequence[str] | None = None) -> list[ChildWait]:
    """Running nodes of in-flight runs that started a child run (execution_id, node_key, attempts,
    state); only of the given runs when given."""
    statement = (
        select(
            node_states.c.execution_id, node_states.c.node_key, node_states.c.attempts, node_states.c.state
        )
        .join(executions, executions.c.id == node_states.c.execution_id)
        .where(
            executions.c.status.in_(IN_FLIGHT),
            node_states.c.status == "running",
            node_states.c.state.like('%"childId"%'),
        )
    )
    if execution_ids is not None:
        statement = statement.where(executions.c.id.in_(execution_ids))
    return [record(ChildWait, row) for row in await reader.all(statement)]


async def end_outputs(reader: Reader, execution_id: str) -> list[str | None]:
    """The outputs (JSON) of a run's completed end nodes, in node order."""
    rows = await reader.all(
        select(node_states.c.output)
        .where(
            node_states.c.execution_id == execution_id,
            node_states.c.node_type == "end",
            node_states.c.status == "completed",
        )
        .order_by(node_states.c.node_key)
    )
    return [row["output"] for row in rows]


async def due_timers(reader: Reader, until: float, owner: str | None) -> list[DueTimer]:
    """Node wake-ups due by `until` of in-flight runs nobody else drives (execution_id, node_key,
    wake_at)."""
    owned: ColumnElement[bool] = executions.c.lease_owner.is_(None)
    if owner is not None:
        owned = or_(owned, executions.c.lease_owner == owner)
    rows = await reader.all(
        select(node_states.c.execution_id, node_states.c.node_key, node_states.c.wake_at)
        .join(executions, executions.c.id == node_states.c.execution_id)
        .where(
            node_states.c.wake_at.is_not(None),
            node_states.c.wake_at <= until,
            executions.c.status.in_(IN_FLIGHT),
            owned,
        )
    )
    return [record(DueTimer, row) for row in rows]


def active_counts(reader: Reader) -> list[Row]:
    """Active runs by (status, parked), blocking: for the scrape, off the event loop."""
    return reader.all_sync(
        select(executions.c.status, executions.c.parked, func.count().label("n"))
        .where(executions.c.status.in_(("queued", "running", "paused")))
        .group_by(executions.c.status, executions.c.parked)
    )


def due_timer_count(reader: Reader, now: float) -> int:
    """How many node wake-ups are due, blocking: for the scrape."""
    rows = reader.all_sync(
        select(func.count().label("n"))
        .select_from(node_states)
        .where(node_states.c.wake_at.is_not(None), node_states.c.wake_at <= now)
    )
    return int(rows[0]["n"]) if rows else 0


# -- changes, committed through the writer. These run for every step of every run: the statements are
# text written once (store/sql.py) and each call fills one parameter dict, nothing more. JSON columns
# take their text, encoded by the caller (as records hand it back).


def insert_run(
    execution_id: str,
    *,
    workspace_id: str,
    workflow_id: str | None,
    workflow_version: int | None,
    document: str | None,
    name: str,
    source_path: str | None,
    status: str,
    input: str,
    current_node_id: str | None,
    paused_node_id: str | None,
    pause_reason: str | None,
    trace_logs: bool,
    breakpoints_disabled: bool,
    error: str | None,
    batch_id: str | None,
    parent_execution_id: str | None,
    parent_node_key: str | None,
    request_id: str | None,
    created_at: float,
    started_at: float | None,
    ended_at: float | None,
    parked: bool,
    hold: str | None,
    lease_owner: str | None,
    lease_epoch: int,
    trace_parent: str | None,
) -> Change:
    """A new run's row; it was last updated when it was created. The parameters hold every column, so
    they read back as the run's record without a query."""
    return sql.INSERT_EXECUTION, {
        "id": execution_id,
        "workspace_id": workspace_id,
        "workflow_id": workflow_id,
        "workflow_version": workflow_version,
        "document": document,
        "name": name,
        "source_path": source_path,
        "status": status,
        "input": input,
        "current_node_id": current_node_id,
        "paused_node_id": paused_node_id,
        "pause_reason": pause_reason,
        "trace_logs": trace_logs,
        "breakpoints_disabled": breakpoints_disabled,
        "error": error,
        "batch_id": batch_id,
        "parent_execution_id": parent_execution_id,
        "parent_node_key": parent_node_key,
        "request_id": request_id,
        "created_at": created_at,
        "started_at": started_at,
        "ended_at": ended_at,
        "updated_at": created_at,
        "parked": parked,
        "hold": hold,
        "lease_owner": lease_owner,
        "lease_epoch": lease_epoch,
        "trace_parent": trace_parent,
    }


def update_run(
    execution_id: str,
    *,
    status: str,
    current_node_id: str | None,
    paused_node_id: str | None,
    pause_reason: str | None,
    trace_logs: bool,
    breakpoints_disabled: bool,
    error: str | None,
    started_at: float | None,
    ended_at: float | None,
    updated_at: float,
    parked: bool,
    hold: str | None,
) -> Change:
    """A run's state as its driver holds it now (the columns a run changes after its start)."""
    return sql.UPDATE_EXECUTION, {
        "id": execution_id,
        "status": status,
        "active": status in ACTIVE,
        "current_node_id": current_node_id,
        "paused_node_id": paused_node_id,
        "pause_reason": pause_reason,
        "trace_logs": trace_logs,
        "breakpoints_disabled": breakpoints_disabled,
        "error": error,
        "started_at": started_at,
        "ended_at": ended_at,
        "updated_at": updated_at,
        "parked": parked,
        "hold": hold,
    }


def upsert_node(
    execution_id: str,
    node_key: str,
    *,
    node_id: str,
    node_type: str,
    status: str,
    attempts: int,
    output: str | None,
    error: str | None,
    branches: str | None,
    stack: str | None,
    scheduled_at: float | None,
    started_at: float | None,
    completed_at: float | None,
    stopped_at: float | None,
    failed_at: float | None,
    wake_at: float | None,
    logs: str | None,
    state: str | None,
) -> Change:
    """A node's state, inserted on its first change and overwritten on every later one (its id, type
    and stack are kept from the first)."""
    return sql.UPSERT_NODE, {
        "execution_id": execution_id,
        "node_key": node_key,
        "node_id": node_id,
        "node_type": node_type,
        "status": status,
        "attempts": attempts,
        "output": output,
        "error": error,
        "branches": branches,
        "stack": stack,
        "scheduled_at": scheduled_at,
        "started_at": started_at,
        "completed_at": completed_at,
        "stopped_at": stopped_at,
        "failed_at": failed_at,
        "wake_at": wake_at,
        "logs": logs,
        "state": state,
    }
