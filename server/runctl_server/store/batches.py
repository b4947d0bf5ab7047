"""Batches and their items: the reads, and the changes the writer commits (SQL of store/sql.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.sql import Select

from runctl_server.store import sql
from runctl_server.store.reads import Reader, Row
from runctl_server.store.records import BatchItemRecord, BatchRecord, BatchUsage, record
from runctl_server.store.tables import batch_items, batches, events, executions
from runctl_server.store.writer import Change

ACTIVE_RUN = ("queued", "running", "paused")


def batch_statement(batch_id: str, workspace_id: str | None = None) -> Select[tuple[object, ...]]:
    statement = select(batches).where(batches.c.id == batch_id)
    if workspace_id is not None:
        statement = statement.where(batches.c.workspace_id == workspace_id)
    return statement


def counts_statement(batch_id: str) -> Select[tuple[object, ...]]:
    """How many of the batch's runs are in each status (status, n)."""
    return (
        select(executions.c.status, func.count().label("n"))
        .where(executions.c.batch_id == batch_id)
        .group_by(executions.c.status)
    )


def last_sequence_statement(batch_id: str) -> Select[tuple[object, ...]]:
    return select(func.max(events.c.sequence).label("last")).where(events.c.batch_id == batch_id)


def _items(*, outer: bool) -> Select[tuple[object, ...]]:
    """Items with how their runs stand."""
    joined = (
        batch_items.outerjoin(executions, executions.c.id == batch_items.c.execution_id)
        if outer
        else batch_items.join(executions, executions.c.id == batch_items.c.execution_id)
    )
    return select(
        batch_items.c.position,
        batch_items.c.execution_id,
        batch_items.c.workflow_id,
        batch_items.c.workflow_path,
        batch_items.c.workflow_file_name,
        executions.c.status,
        executions.c.current_node_id,
        executions.c.error,
        executions.c.started_at,
        executions.c.ended_at,
    ).select_from(joined)


def items_statement(batch_id: str) -> Select[tuple[object, ...]]:
    return _items(outer=True).where(batch_items.c.batch_id == batch_id).order_by(batch_items.c.position)


def batch_records(rows: Sequence[Row]) -> list[BatchRecord]:
    """Records of rows read with every column of batches (e.g. in a snapshot)."""
    return [record(BatchRecord, row) for row in rows]


def item_records(rows: Sequence[Row]) -> list[BatchItemRecord]:
    """Records of rows read by `items_statement`."""
    return [record(BatchItemRecord, row) for row in rows]


async def batch(reader: Reader, batch_id: str, workspace_id: str | None = None) -> BatchRecord | None:
    row = await reader.one(batch_statement(batch_id, workspace_id))
    return None if row is None else record(BatchRecord, row)


async def id_by_request(reader: Reader, workspace_id: str, request_id: str) -> str | None:
    row = await reader.one(
        select(batches.c.id).where(batches.c.workspace_id == workspace_id, batches.c.request_id == request_id)
    )
    return None if row is None else str(row["id"])


async def counts(reader: Reader, batch_id: str) -> list[Row]:
    return await reader.all(counts_statement(batch_id))


async def counts_of(reader: Reader, batch_ids: Sequence[str]) -> list[Row]:
    """The run counts of several batches in one read (batch_id, status, n)."""
    return await reader.all(
        select(executions.c.batch_id, executions.c.status, func.count().label("n"))
        .where(executions.c.batch_id.in_(batch_ids))
        .group_by(executions.c.batch_id, executions.c.status)
    )


async def item_of_run(reader: Reader, execution_id: str) -> BatchItemRecord | None:
    row = await reader.one(_items(outer=False).where(batch_items.c.execution_id == execution_id))
    return None if row is None else record(BatchItemRecord, row)


async def queued_runs(reader: Reader, batch_id: str, limit: int) -> list[str]:
    """The next runs of a batch to start, in source order."""
    rows = await reader.all(
        select(batch_items.c.execution_id)
        .join(executions, executions.c.id == batch_items.c.execution_id)
        .where(batch_items.c.batch_id == batch_id, executions.c.status == "queued")
        .order_by(batch_items.c.position)
        .limit(limit)
    )
    return [str(row["execution_id"]) for row in rows]


async def running(reader: Reader, workspace_id: str | None = None) -> list[str]:
    """Ids of the running batches, oldest first; only a workspace's when given."""
    statement = select(batches.c.id).where(batches.c.status == "running")
    if workspace_id is not None:
        statement = statement.where(batches.c.workspace_id == workspace_id)
    return [str(row["id"]) for row in await reader.all(statement.order_by(batches.c.created_at))]


async def for_clearing(reader: Reader, workspace_id: str) -> list[BatchUsage]:
    """Every batch of a workspace (id, status) with how many runs it has and how many are active."""
    runs = (
        select(func.count()).where(executions.c.batch_id == batches.c.id).correlate(batches).scalar_subquery()
    )
    active = (
        select(func.count())
        .where(executions.c.batch_id == batches.c.id, executions.c.status.in_(ACTIVE_RUN))
        .correlate(batches)
        .scalar_subquery()
    )
    rows = await reader.all(
        select(batches.c.id, batches.c.status, runs.label("runs"), active.label("active"))
        .where(batches.c.workspace_id == workspace_id)
        .order_by(batches.c.created_at, batches.c.id)
    )
    return [record(BatchUsage, row) for row in rows]


async def orphaned_runs(reader: Reader) -> list[tuple[str, str]]:
    """Queued runs (id, workspace id) created for a batch whose row was never committed (the server
    stopped while starting it)."""
    rows = await reader.all(
        select(executions.c.id, executions.c.workspace_id).where(
            executions.c.status == "queued",
            executions.c.hold == "batch",
            executions.c.batch_id.is_not(None),
            ~exists().where(batches.c.id == executions.c.batch_id),
        )
    )
    return [(str(row["id"]), str(row["workspace_id"])) for row in rows]


def page_statements(
    workspace_id: str,
    *,
    limit: int,
    offset: int = 0,
    statuses: Sequence[str] = (),
    before: tuple[float, str] | None = None,
) -> dict[str, Select[tuple[object, ...]]]:
    """The count of the workspace's batches in `statuses` (`total`) and a page of them newest first
    (`rows`): after `offset`, or created before `before` (time, id); read together in one snapshot."""
    where = [batches.c.workspace_id == workspace_id]
    if statuses:
        where.append(batches.c.status.in_(statuses))
    total = select(func.count().label("n")).select_from(batches).where(*where)
    rows = (
        select(batches).where(*where).order_by(batches.c.created_at.desc(), batches.c.id.desc()).limit(limit)
    )
    if before is None:
        rows = rows.offset(offset)
    else:
        t, last_id = before
        rows = rows.where(
            or_(batches.c.created_at < t, and_(batches.c.created_at == t, batches.c.id < last_id))
        )
    return {"total": total, "rows": rows}


# -- changes, committed through the writer.


def insert(batch: BatchRecord) -> Change:
    """A new batch (it starts running)."""
    return sql.INSERT_BATCH, asdict(batch)


def insert_item(
    batch_id: str,
    position: int,
    execution_id: str,
    *,
    workflow_id: str | None,
    workflow_path: str | None,
    workflow_file_name: str | None,
) -> Change:
    return sql.INSERT_BATCH_ITEM, {
        "batch_id": batch_id,
        "position": position,
        "execution_id": execution_id,
        "workflow_id": workflow_id,
        "workflow_path": workflow_path,
        "workflow_file_name": workflow_file_name,
    }


def end(batch_id: str, status: str, ended_at: float | None) -> Change:
    """End a running batch; guarded by its status, so a stop and a completion never both win."""
    return sql.END_BATCH, {"id": batch_id, "status": status, "ended_at": ended_at}


def clear(batch_id: str) -> list[Change]:
    """Remove an ended batch with its ended runs and their events, remembering how far the log was
    pruned (for watchers); the batch is kept if a run of it is somehow still active."""
    return [
        (sql.MARK_BATCH_EVENTS_PRUNED, {"batch_id": batch_id}),
        (sql.DELETE_BATCH_EVENTS, {"batch_id": batch_id}),
        (sql.DELETE_BATCH_NODE_STATES, {"batch_id": batch_id}),
        (sql.DELETE_BATCH_RUNS, {"batch_id": batch_id}),
        (sql.DELETE_BATCH, {"id": batch_id}),
    ]
