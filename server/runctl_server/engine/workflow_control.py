"""Workflow pause, resume and cancel (the workflow pause API), and the paused executions of a workflow
(the paused executions API).

A paused workflow is a status row plus a name in WorkflowHolds, which the scheduler consults
before starting any node: in-flight nodes finish, nothing new starts, timers keep counting (a delay
that ends during the pause completes; what follows it waits), and runs started meanwhile stay queued.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from runctl_server.engine.control import RunControl
from runctl_server.engine.model import ACTIVE_EXECUTION, QUEUED, RUNNING, WORKFLOW_PAUSED, now
from runctl_server.engine.paging import decode_token, encode_token, page_size
from runctl_server.engine.workflow_holds import WorkflowHolds
from runctl_server.engine.workflows import Workflows
from runctl_server.errors import FailedPrecondition, InvalidArgument, Reason
from runctl_server.store import pause_points
from runctl_server.store import workflows as stored_workflows
from runctl_server.store.leases import notify_state
from runctl_server.store.reads import Reader
from runctl_server.store.records import PausePointRecord, RunOrigin, RunState
from runctl_server.store.writer import EventRecord, Mutation, Writer

RESUME_STATUSES = ("paused", "resumed", "expired", "cancelled")


@dataclass(frozen=True)
class PausedExecution:
    """One run of the workflow that has paused at least once, with its pause points oldest first."""

    execution_id: str
    workflow_id: str
    status: str
    total_pause_count: int
    resumed_count: int
    paused_at: float
    updated_at: float
    expires_at: float | None
    metadata: dict[str, Any] | None
    pause_points: list[PausePointRecord]


# The paused runs of a workflow, one row each: when it first paused, and its status as _aggregate
# says it (paused while any pause point waits, else the status of the one that ended last).
# A run's paused_at is its first pause point's registered_at; its status is "paused" while any of
# its points waits, else that of its latest point. The scan walks ix_pause_points_workflow_registered
# in page order and keeps a point only if it is its run's first, so a page costs about as many rows as
# it shows (plus a few index probes per run), however many pause points the workflow has.
def _aggregate(execution_id: str, points: list[PausePointRecord], run: RunOrigin | None) -> PausedExecution:
    waiting = [p for p in points if p.status == "paused"]
    latest = max(points, key=lambda p: (p.resolved_at or p.registered_at, p.registered_at, p.context_id))
    expiries = [p.expires_at for p in waiting if p.expires_at is not None]
    metadata = {
        key: value
        for key, value in (
            ("batchId", run.batch_id if run else None),
            ("workflowFile", run.source_path if run else None),
        )
        if value
    }
    return PausedExecution(
        execution_id=execution_id,
        workflow_id=str(points[0].workflow_id),
        status="paused" if waiting else str(latest.status),
        total_pause_count=len(points),
        resumed_count=sum(1 for p in points if p.status == "resumed"),
        paused_at=min(p.registered_at for p in points),
        updated_at=max(p.resolved_at or p.registered_at for p in points),
        expires_at=min(expiries) if expiries else None,
        metadata=metadata or None,
        pause_points=sorted(points, key=lambda p: (p.registered_at, p.context_id)),
    )


# The reason a workflow control call is refused names the status that refuses it.
_STATUS_REASONS: dict[str, Reason] = {
    "active": "WORKFLOW_ACTIVE",
    "paused": "WORKFLOW_PAUSED",
    "cancelled": "WORKFLOW_CANCELLED",
}


class WorkflowControl:
    def __init__(
        self,
        workflows: Workflows,
        reader: Reader,
        writer: Writer,
        control: RunControl,
        holds: WorkflowHolds,
        *,
        replicated: bool,
    ) -> None:
        self._workflows = workflows
        self._reader = reader
        self._writer = writer
        self._control = control
        self._holds = holds
        # Other replicas share the database: they hear of every change of a workflow's status.
        self._replicated = replicated

    async def _set_status(
        self,
        workspace_id: str,
        workflow_id: str,
        expected: tuple[str, ...],
        status: str,
        event: str,
        **payload: Any,
    ) -> None:
        workflows = self._workflows
        async with workflows.lock:
            row = await workflows.row(workspace_id, workflow_id)
            if row.status not in expected:
                wanted = " or ".join(expected)
                raise FailedPrecondition(
                    f"workflow {workflow_id!r} is {row.status}, not {wanted}",
                    reason=_STATUS_REASONS[row.status],
                )
            mutation = Mutation()
            stamp = now()
            mutation.add(*stored_workflows.set_status(workflow_id, status, expected=row.status, now=stamp))
            mutation.emit(
                EventRecord(
                    event, workspace_id, workflow_id=workflow_id, payload={"status": status, **payload}
                )
            )
            if self._replicated:
                # Every replica rereads the paused workflows when this commits.
                mutation.statements.append(notify_state("workflows"))
            await self._writer.commit(mutation)

    async def _runs(self, workspace_id: str, workflow_id: str, statuses: tuple[str, ...]) -> list[RunState]:
        return await stored_workflows.runs(self._reader, workspace_id, workflow_id, statuses)

    async def pause(self, workspace_id: str, workflow_id: str, reason: str = "") -> None:
        # NotFound before the engine-wide hold below is touched: another workspace's (or a made-up) id
        # must not hold that workflow's runs, not even while this call finds out it is not the caller's.
        await self._workflows.row(workspace_id, workflow_id)
        # Held before the commit: no node may start between the commit and the hold. Pending until the
        # commit: no run shows PAUSED before the event that pauses its workflow.
        with self._holds.pausing(workflow_id):
            await self._set_status(
                workspace_id, workflow_id, ("active",), "paused", "WORKFLOW_PAUSED", reason=reason
            )
        # Runs idle between nodes show PAUSED at once; busy ones once their in-flight nodes end.
        runs = await self._runs(workspace_id, workflow_id, (RUNNING,))
        await asyncio.gather(*(self._control.refresh(row.id) for row in runs))

    async def resume(self, workspace_id: str, workflow_id: str) -> None:
        await self._set_status(workspace_id, workflow_id, ("paused",), "active", "WORKFLOW_RESUMED")
        self._holds.lift(workflow_id)
        control = self._control
        runs = await self._runs(workspace_id, workflow_id, ACTIVE_EXECUTION)
        await asyncio.gather(
            *(
                control.release_queued(row.id, (WORKFLOW_PAUSED,))
                if row.status == QUEUED
                else control.refresh(row.id)
                for row in runs
                if row.status != QUEUED or row.hold == WORKFLOW_PAUSED
            )
        )

    async def cancel(self, workspace_id: str, workflow_id: str, reason: str = "") -> int:
        """Cancel for good: its runs stop and it takes no new ones. Answers how many runs stopped."""
        await self._set_status(
            workspace_id, workflow_id, ("active", "paused"), "cancelled", "WORKFLOW_CANCELLED", reason=reason
        )
        self._holds.lift(workflow_id)
        runs = await self._runs(workspace_id, workflow_id, ACTIVE_EXECUTION)
        why = f"workflow {workflow_id} was cancelled" + (f": {reason}" if reason else "")
        counts = await self._control.stop_many(workspace_id, [row.id for row in runs], why)
        return counts.total

    async def delete(self, workspace_id: str, workflow_id: str, *, force: bool = False) -> None:
        """Delete a workflow that has no unfinished runs, or with `force` after stopping them."""
        await self._workflows.row(workspace_id, workflow_id)  # NOT_FOUND before anything else
        runs = await self._runs(workspace_id, workflow_id, ACTIVE_EXECUTION)
        if runs and not force:
            raise FailedPrecondition(
                f"workflow {workflow_id!r} has {len(runs)} unfinished run(s): stop them first, or "
                "delete with force to have them stopped",
                reason="WORKFLOW_HAS_UNFINISHED_RUNS",
            )
        if runs:
            why = f"workflow {workflow_id} was deleted"
            await self._control.stop_many(workspace_id, [row.id for row in runs], why)
        await self._workflows.delete(workspace_id, workflow_id)

    async def paused_executions(
        self,
        workspace_id: str,
        workflow_id: str,
        *,
        statuses: tuple[str, ...] = (),
        size: int = 0,
        token: str = "",
    ) -> tuple[list[PausedExecution], str]:
        """The paused executions API: the runs of a workflow that paused, most recently paused first."""
        if any(status not in RESUME_STATUSES for status in statuses):
            raise InvalidArgument.single(
                "statuses", f"must be among: {', '.join(RESUME_STATUSES)}", reason="FIELD_INVALID"
            )
        await self._workflows.row(workspace_id, workflow_id)
        limit = page_size(size, default=50)
        filters = {"workflow_id": workflow_id, "statuses": frozenset(statuses)}
        after = decode_token(token, ("t", "id"), filters=filters)
        # One page of runs, chosen and ordered in the database; only their pause points are loaded.
        page_ids = await pause_points.paused_runs(
            self._reader,
            workspace_id,
            workflow_id,
            limit=limit + 1,
            statuses=statuses,
            after=None if after is None else (float(after["t"]), str(after["id"])),
        )
        ids = [row.execution_id for row in page_ids]
        next_token = ""
        if len(ids) > limit:
            ids = ids[:limit]
            last = page_ids[limit - 1]
            next_token = encode_token({"t": last.paused_at, "id": last.execution_id}, filters)
        points = await pause_points.of_runs(self._reader, ids)
        by_run: dict[str, list[PausePointRecord]] = {}
        for point in points:
            by_run.setdefault(point.execution_id, []).append(point)
        runs = await pause_points.runs_of(self._reader, ids)
        run_rows = {row.id: row for row in runs}
        page = [_aggregate(eid, by_run[eid], run_rows.get(eid)) for eid in ids if eid in by_run]
        if statuses:  # a run that changed between the page's query and these reads is left out
            page = [item for item in page if item.status in statuses]
        return page, next_token
