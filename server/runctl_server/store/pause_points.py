"""Pause points: one by its context id, pages of a workspace's, and the paused runs of a workflow; and
the engine's changes to them (committed through the writer)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, case, exists, func, or_, select
from sqlalchemy.sql import Select

from runctl_server.store import sql
from runctl_server.store.reads import Reader, Row
from runctl_server.store.records import PausedRun, PausePointRecord, RunOrigin, record
from runctl_server.store.tables import executions, node_states, pause_points
from runctl_server.store.writer import Change


def from_rows(rows: Sequence[Row]) -> list[PausePointRecord]:
    """Records of rows read with every column of pause_points (e.g. in a snapshot)."""
    return [record(PausePointRecord, row) for row in rows]


def open_of_run_statement(execution_id: str) -> Select[tuple[object, ...]]:
    """A run's waiting pause points, oldest first."""
    return (
        select(pause_points)
        .where(pause_points.c.execution_id == execution_id, pause_points.c.status == "paused")
        .order_by(pause_points.c.registered_at)
    )


async def by_context(reader: Reader, workspace_id: str, context_id: str) -> PausePointRecord | None:
    row = await reader.one(
        select(pause_points).where(
            pause_points.c.context_id == context_id, pause_points.c.workspace_id == workspace_id
        )
    )
    return None if row is None else record(PausePointRecord, row)


async def with_node_state(
    reader: Reader, workspace_id: str, context_id: str
) -> tuple[PausePointRecord, str | None] | None:
    """The pause point with the state (JSON) of its node, where the resume mark is kept."""
    row = await reader.one(
        select(pause_points, node_states.c.state.label("node_state"))
        .select_from(
            pause_points.outerjoin(
                node_states,
                and_(
                    node_states.c.execution_id == pause_points.c.execution_id,
                    node_states.c.node_key == pause_points.c.node_key,
                ),
            )
        )
        .where(pause_points.c.context_id == context_id, pause_points.c.workspace_id == workspace_id)
    )
    return None if row is None else (record(PausePointRecord, row), row["node_state"])


async def latest_status(reader: Reader, execution_id: str, node_key: str) -> str | None:
    """How the node's newest pause point stands (None: it never paused)."""
    row = await reader.one(
        select(pause_points.c.status)
        .where(pause_points.c.execution_id == execution_id, pause_points.c.node_key == node_key)
        .order_by(pause_points.c.registered_at.desc())
        .limit(1)
    )
    return None if row is None else str(row["status"])


async def page(
    reader: Reader,
    workspace_id: str,
    *,
    limit: int,
    workflow_id: str = "",
    execution_id: str = "",
    kinds: Sequence[str] = (),
    statuses: Sequence[str] = (),
    before: tuple[float, str] | None = None,
) -> list[PausePointRecord]:
    """Newest first, narrowed by every filter given, registered before `before` (time, context id)."""
    statement = select(pause_points).where(pause_points.c.workspace_id == workspace_id)
    if workflow_id:
        statement = statement.where(pause_points.c.workflow_id == workflow_id)
    if execution_id:
        statement = statement.where(pause_points.c.execution_id == execution_id)
    if kinds:
        statement = statement.where(pause_points.c.kind.in_(kinds))
    if statuses:
        statement = statement.where(pause_points.c.status.in_(statuses))
    if before is not None:
        t, context_id = before
        statement = statement.where(
            or_(
                pause_points.c.registered_at < t,
                and_(pause_points.c.registered_at == t, pause_points.c.context_id < context_id),
            )
        )
    rows = await reader.all(
        statement.order_by(pause_points.c.registered_at.desc(), pause_points.c.context_id.desc()).limit(limit)
    )
    return from_rows(rows)


async def of_runs(reader: Reader, execution_ids: Sequence[str]) -> list[PausePointRecord]:
    """Every pause point of the runs. No workspace condition: the ids come from the workspace's own
    page, and one would tempt the planner into walking the workspace's index instead."""
    return from_rows(
        await reader.all(select(pause_points).where(pause_points.c.execution_id.in_(execution_ids)))
    )


async def paused_runs(
    reader: Reader,
    workspace_id: str,
    workflow_id: str,
    *,
    limit: int,
    statuses: Sequence[str] = (),
    after: tuple[float, str] | None = None,
) -> list[PausedRun]:
    """A page of the workflow's runs that paused (execution_id, paused_at: their first pause), most
    recently paused first, after `after` (paused_at, execution id). A run's status here is `paused`
    while any of its pause points waits, else how its latest pause point ended."""
    first = pause_points.alias("p")
    earlier = pause_points.alias("e")
    waiting = pause_points.alias("w")
    latest = pause_points.alias("l")
    run_status = case(
        (
            exists().where(waiting.c.execution_id == first.c.execution_id, waiting.c.status == "paused"),
            "paused",
        ),
        else_=select(latest.c.status)
        .where(latest.c.execution_id == first.c.execution_id)
        .order_by(
            func.coalesce(latest.c.resolved_at, latest.c.registered_at).desc(),
            latest.c.registered_at.desc(),
            latest.c.context_id.desc(),
        )
        .limit(1)
        .scalar_subquery(),
    )
    statement = select(first.c.execution_id, first.c.registered_at.label("paused_at")).where(
        first.c.workflow_id == workflow_id,
        first.c.workspace_id == workspace_id,
        ~exists().where(
            earlier.c.execution_id == first.c.execution_id,
            or_(
                earlier.c.registered_at < first.c.registered_at,
                and_(
                    earlier.c.registered_at == first.c.registered_at,
                    earlier.c.context_id < first.c.context_id,
                ),
            ),
        ),
    )
    if statuses:
        statement = statement.where(run_status.in_(statuses))
    if after is not None:
        t, last_id = after
        statement = statement.where(
            or_(
                first.c.registered_at < t,
                and_(first.c.registered_at == t, first.c.execution_id > last_id),
            )
        )
    rows = await reader.all(
        statement.order_by(first.c.registered_at.desc(), first.c.execution_id.asc()).limit(limit)
    )
    return [record(PausedRun, row) for row in rows]


async def runs_of(reader: Reader, execution_ids: Sequence[str]) -> list[RunOrigin]:
    """The batch and source path of the runs (id, batch_id, source_path)."""
    rows = await reader.all(
        select(executions.c.id, executions.c.batch_id, executions.c.source_path).where(
            executions.c.id.in_(execution_ids)
        )
    )
    return [record(RunOrigin, row) for row in rows]


# -- changes, committed through the writer (prebuilt text of store/sql.py: runs pause on the hot path).
# JSON columns take their text, encoded by the caller.


def insert(
    context_id: str,
    *,
    workspace_id: str,
    execution_id: str,
    workflow_id: str | None,
    node_key: str,
    node_id: str,
    kind: str,
    display: str | None,
    form_fields: str,
    stack: str,
    registered_at: float,
    expires_at: float | None,
    expiry_action: str | None,
) -> Change:
    """A new pause point, waiting ("paused") until it is resolved."""
    return sql.INSERT_PAUSE_POINT, {
        "context_id": context_id,
        "workspace_id": workspace_id,
        "execution_id": execution_id,
        "workflow_id": workflow_id,
        "node_key": node_key,
        "node_id": node_id,
        "kind": kind,
        "status": "paused",
        "display": display,
        "form_fields": form_fields,
        "stack": stack,
        "registered_at": registered_at,
        "expires_at": expires_at,
        "expiry_action": expiry_action,
    }


def resolve(context_id: str, status: str, *, resolved_at: float, resume_data: str | None) -> Change:
    """Close a waiting pause point as resumed, expired or cancelled; one already closed stays as it is."""
    return sql.RESOLVE_PAUSE_POINT, {
        "context_id": context_id,
        "status": status,
        "resolved_at": resolved_at,
        "resume_data": resume_data,
    }
