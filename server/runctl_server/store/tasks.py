"""Tasks for external workers: the reads, and the changes committed through the writer (text of
store/sql.py); the dispatcher's are each guarded by the state it expects, so two server processes never
both win the same task."""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from runctl_server.store import sql
from runctl_server.store.reads import Reader
from runctl_server.store.records import OpenTask, TaskRecord, record
from runctl_server.store.tables import executions, node_states, tasks
from runctl_server.store.writer import Change

OPEN = ("pending", "leased")


async def task(reader: Reader, task_id: str) -> TaskRecord | None:
    """One task with its run's status and its node's status, state and wake-up."""
    row = await reader.one(
        select(
            tasks.c.id,
            tasks.c.workspace_id,
            tasks.c.execution_id,
            tasks.c.node_key,
            tasks.c.node_id,
            tasks.c.queue,
            tasks.c.type,
            tasks.c.status,
            tasks.c.attempt,
            tasks.c.idempotency_key,
            tasks.c.payload,
            tasks.c.lease_owner,
            tasks.c.lease_expires_at,
            tasks.c.heartbeat_timeout,
            tasks.c.updated_at,
            executions.c.workflow_id,
            executions.c.status.label("run_status"),
            executions.c.trace_logs,
            node_states.c.status.label("node_status"),
            node_states.c.state.label("node_state"),
            node_states.c.wake_at.label("node_wake_at"),
        )
        .select_from(
            tasks.join(executions, executions.c.id == tasks.c.execution_id).outerjoin(
                node_states,
                and_(
                    node_states.c.execution_id == tasks.c.execution_id,
                    node_states.c.node_key == tasks.c.node_key,
                ),
            )
        )
        .where(tasks.c.id == task_id)
    )
    return None if row is None else record(TaskRecord, row)


async def open_tasks(reader: Reader) -> list[OpenTask]:
    """Every pending or leased task, oldest first."""
    rows = await reader.all(
        select(
            tasks.c.id,
            tasks.c.workspace_id,
            tasks.c.queue,
            tasks.c.status,
            tasks.c.lease_owner,
            tasks.c.lease_expires_at,
        )
        .where(tasks.c.status.in_(OPEN))
        .order_by(tasks.c.created_at)
    )
    return [record(OpenTask, row) for row in rows]


async def queue_backlog(
    reader: Reader, workspace_id: str, queue: str, *, now: float, limit: int
) -> list[tuple[str, str]]:
    """Tasks of one queue (id, status) that this process may not know of: pending, or leased with
    the lease run out (created or abandoned by another process), oldest first."""
    rows = await reader.all(
        select(tasks.c.id, tasks.c.status)
        .where(
            tasks.c.workspace_id == workspace_id,
            tasks.c.queue == queue,
            or_(
                tasks.c.status == "pending",
                and_(tasks.c.status == "leased", tasks.c.lease_expires_at <= now),
            ),
        )
        .order_by(tasks.c.created_at)
        .limit(limit)
    )
    return [(str(row["id"]), str(row["status"])) for row in rows]


# -- changes, committed through the writer; each is guarded by the state it expects.


def lease_pending(task_id: str, owner: str, now: float) -> Change:
    """Lease a pending task to `owner` for the task's own heartbeat timeout from `now`."""
    return sql.LEASE_PENDING_TASK, {"id": task_id, "owner": owner, "now": now}


def extend_lease(task_id: str, owner: str, expires: float, now: float) -> Change:
    return sql.EXTEND_LEASE, {"id": task_id, "owner": owner, "expires": expires, "now": now}


def return_unsent(task_id: str, owner: str, now: float) -> Change:
    """Back to pending when the lease never reached the worker (its stream closed while leasing)."""
    return sql.RETURN_TASK, {"id": task_id, "owner": owner, "now": now}


def release_expired(task_id: str, now: float) -> Change:
    """Back to pending after the worker went silent: the next dispatch is a new delivery attempt."""
    return sql.RELEASE_EXPIRED_TASK, {"id": task_id, "now": now}


def finish(task_id: str, owner: str, status: str, now: float) -> Change:
    return sql.FINISH_TASK, {"id": task_id, "owner": owner, "status": status, "now": now}


def cancel_open(task_id: str, now: float) -> Change:
    return sql.CANCEL_OPEN_TASK, {"id": task_id, "now": now}


def insert(
    task_id: str,
    *,
    workspace_id: str,
    execution_id: str,
    node_key: str,
    node_id: str,
    queue: str,
    type: str,
    attempt: int,
    idempotency_key: str,
    payload: str,
    heartbeat_timeout: float,
    created_at: float,
) -> Change:
    """A new task, pending until a worker of its queue leases it; `payload` is JSON text. The
    parameters describe the task to those told of it after the commit."""
    return sql.INSERT_TASK, {
        "id": task_id,
        "workspace_id": workspace_id,
        "execution_id": execution_id,
        "node_key": node_key,
        "node_id": node_id,
        "queue": queue,
        "type": type,
        "attempt": attempt,
        "idempotency_key": idempotency_key,
        "payload": payload,
        "heartbeat_timeout": heartbeat_timeout,
        "created_at": created_at,
    }


def cancel(task_id: str, now: float) -> Change:
    """Cancel the task whatever its state (its node stopped waiting for it)."""
    return sql.SET_TASK_STATUS, {"id": task_id, "status": "cancelled", "updated_at": now}
