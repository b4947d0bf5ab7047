"""Run control: stop, continue, skip, operator pause and resume, trace logs, releasing queued runs.

Every operation is a handler that runs inside the run's driver (Engine.send), so it sees the run as its
driver does and its changes are committed, with their events, before the caller gets an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runctl_server.engine.commands import RunSteering, SendCommand, command
from runctl_server.engine.model import (
    ACTIVE_EXECUTION,
    BREAKPOINT,
    MANUAL,
    PAUSED,
    QUEUED,
    WAITING,
    WORKFLOW_PAUSED,
    NodeRecord,
    Run,
)
from runctl_server.errors import FailedPrecondition, InvalidArgument, NotFound
from runctl_server.store import executions
from runctl_server.store.reads import Reader
from runctl_server.store.records import RunState

if TYPE_CHECKING:
    from runctl_server.engine.scheduler import Driven

PAUSE_ACTIONS = ("continue", "skip", "continueWithoutBreakpoint")  # stopping is `stop`


@dataclass(frozen=True)
class StopOutcome:
    execution_id: str
    was_running: bool
    was_queued: bool


@dataclass(frozen=True)
class StopCounts:
    running_stopped: int
    queued_cancelled: int

    @property
    def total(self) -> int:
        return self.running_stopped + self.queued_cancelled


@dataclass(frozen=True)
class StopAllOutcome:
    counts: StopCounts
    batch_ids: list[str]


def _ended(run: Run) -> FailedPrecondition:
    return FailedPrecondition(
        f"execution {run.id!r} has already ended ({run.status})",
        reason="EXECUTION_ENDED",
        metadata={"status": str(run.status)},
    )


def _paused_record(run: Run) -> NodeRecord | None:
    """The node an operator is looking at when the run is paused: its open breakpoint or pause point."""
    waiting = [r for r in run.nodes.values() if r.status == WAITING and (r.state or {}).get("contextId")]
    for record in waiting:
        if (record.state or {}).get("pauseKind") == BREAKPOINT:
            return record
    return waiting[0] if waiting else None


class RunControl:
    """The operations of ExecutionService that steer one run or all of them."""

    def __init__(
        self, reader: Reader, send: SendCommand, stop_batches: Callable[[str], Awaitable[list[str]]]
    ) -> None:
        self._reader = reader
        self._send_command = send
        # Marks every running batch of a workspace stopped, so none releases a run while stop_all works.
        self._stop_batches = stop_batches

    async def _existing(self, workspace_id: str, execution_id: str) -> RunState:
        """Where the run stands; every control call names its run (no implicit "most recent")."""
        if not execution_id:
            raise InvalidArgument.single("execution_id", "is required", reason="FIELD_REQUIRED")
        run = await executions.state_of(self._reader, execution_id, workspace_id)
        if run is None:
            raise NotFound(f"execution {execution_id!r} not found", reason="EXECUTION_NOT_FOUND")
        return run

    async def _send(
        self, workspace_id: str, execution_id: str, name: str, args: dict[str, Any] | None = None
    ) -> Any:
        result = await self._send_command(execution_id, name, args)
        if result is None:  # the run ended before the handler could run
            run = await self._existing(workspace_id, execution_id)
            raise FailedPrecondition(
                f"execution {execution_id!r} has already ended ({run.status})",
                reason="EXECUTION_ENDED",
                metadata={"status": run.status},
            )
        return result

    # -- stop ------------------------------------------------------------------------------------

    async def stop(self, workspace_id: str, execution_id: str, reason: str = "") -> StopOutcome:
        await self._existing(workspace_id, execution_id)
        why = reason or "stopped by an operator"
        was = await self._send(workspace_id, execution_id, "stop", {"reason": why})
        await self._stop_children(workspace_id, execution_id, why)
        return StopOutcome(execution_id, was_running=was != QUEUED, was_queued=was == QUEUED)

    async def _stop_children(self, workspace_id: str, parent_id: str, reason: str) -> None:
        """Sub-workflow runs awaited by a stopped run stop with it."""
        for child_id in await executions.children_in(self._reader, parent_id, ACTIVE_EXECUTION):
            with contextlib.suppress(FailedPrecondition):  # it ended meanwhile
                await self.stop(workspace_id, child_id, f"its parent run {parent_id} was stopped")

    async def stop_many(self, workspace_id: str, execution_ids: list[str], reason: str) -> StopCounts:
        """Stop every listed run that is still active; runs that ended meanwhile are not counted."""

        async def one(execution_id: str) -> StopOutcome | None:
            try:
                return await self.stop(workspace_id, execution_id, reason)
            except (FailedPrecondition, NotFound):
                return None

        outcomes = await asyncio.gather(*(one(execution_id) for execution_id in execution_ids))
        return StopCounts(
            running_stopped=sum(1 for o in outcomes if o is not None and o.was_running),
            queued_cancelled=sum(1 for o in outcomes if o is not None and o.was_queued),
        )

    async def stop_all(self, workspace_id: str, reason: str = "") -> StopAllOutcome:
        """Stop every running batch, every running or paused run, and cancel every queued run."""
        # Batches first, so that none of them releases a queued run while its runs are stopped.
        batch_ids = await self._stop_batches(workspace_id)
        ids = await self.active_ids(workspace_id)
        counts = await self.stop_many(workspace_id, ids, reason or "stopped with all other runs")
        return StopAllOutcome(counts, batch_ids)

    async def active_ids(self, workspace_id: str, *, workflow_id: str = "", batch_id: str = "") -> list[str]:
        """The workspace's active runs, oldest first, optionally of one workflow or batch."""
        return await executions.ids_matching(
            self._reader, workspace_id, ACTIVE_EXECUTION, workflow_id=workflow_id, batch_id=batch_id
        )

    # -- paused runs -----------------------------------------------------------------------------

    async def control_pause(self, workspace_id: str, execution_id: str, action: str) -> str:
        """Act on a paused run: continue, skip the paused node, or continue without breakpoints."""
        if action not in PAUSE_ACTIONS:
            raise InvalidArgument.single(
                "action", f"must be one of: {', '.join(PAUSE_ACTIONS)}", reason="FIELD_INVALID"
            )
        await self._existing(workspace_id, execution_id)
        await self._send(workspace_id, execution_id, "control_pause", {"action": action})
        return execution_id

    async def pause(self, workspace_id: str, execution_id: str) -> str:
        """An operator's pause: the run starts no new node; it shows paused once in-flight nodes end."""
        await self._existing(workspace_id, execution_id)
        return str(await self._send(workspace_id, execution_id, "pause"))

    async def resume(self, workspace_id: str, execution_id: str) -> str:
        """Lift an operator's pause."""
        await self._existing(workspace_id, execution_id)
        return str(await self._send(workspace_id, execution_id, "resume"))

    async def set_trace_logs(self, workspace_id: str, execution_id: str, enabled: bool) -> str:
        await self._existing(workspace_id, execution_id)
        await self._send(workspace_id, execution_id, "set_trace_logs", {"enabled": enabled})
        return execution_id

    # -- queued runs -----------------------------------------------------------------------------

    async def release_queued(self, execution_id: str, reasons: tuple[str, ...] = ()) -> bool:
        """Start a queued run (only if it is queued for one of `reasons`, when given); answers whether
        it started."""
        return bool(await self._send_command(execution_id, "release_queued", {"reasons": list(reasons)}))

    async def refresh(self, execution_id: str) -> None:
        """Have a run look at its graph again (a hold was lifted elsewhere)."""
        await self._send_command(execution_id, "refresh")


# -- the driver commands (run inside the run's driver, on whichever replica drives it) ------------------


@command("stop")
def _stop_command(steer: RunSteering, driven: Driven, args: dict[str, Any]) -> str:
    """Answers the status the run had."""
    run = driven.run
    if run.finished:
        raise _ended(run)
    was = run.status
    steer.stop_run(driven, str(args.get("reason") or "stopped by an operator"))
    return was


@command("control_pause")
def _control_pause_command(steer: RunSteering, driven: Driven, args: dict[str, Any]) -> str:
    action = str(args["action"])
    run = driven.run
    if run.finished:
        raise _ended(run)
    record = _paused_record(run)
    if record is None and run.hold != MANUAL:
        if run.status == PAUSED and run.pause_reason == WORKFLOW_PAUSED:
            raise FailedPrecondition(
                f"execution {run.id!r} is held by its paused workflow: resume the workflow",
                reason="WORKFLOW_PAUSED",
            )
        raise FailedPrecondition(f"execution {run.id!r} is not paused", reason="EXECUTION_NOT_PAUSED")
    if record is None and action == "skip":
        raise FailedPrecondition(
            f"execution {run.id!r} is paused by an operator between nodes, so there is no node "
            "to skip: continue it instead",
            reason="NOTHING_TO_SKIP",
        )
    if action == "continueWithoutBreakpoint" and not run.breakpoints_disabled:
        run.breakpoints_disabled = True
        run.row_dirty = True
    if record is not None:
        kind = (record.state or {}).get("pauseKind")
        if action == "skip":
            steer.skip_paused(driven, record)
        elif kind == BREAKPOINT:
            steer.pass_breakpoint(driven, record)
        else:
            # A wait or an approval continued by an operator goes on with no data.
            steer.resume_waiting(driven, record, None)
    if run.hold == MANUAL:
        steer.release(driven)  # going on lifts an operator's pause too
    return run.id


@command("pause")
def _pause_command(steer: RunSteering, driven: Driven, args: dict[str, Any]) -> str:
    run = driven.run
    if run.finished:
        raise _ended(run)
    if run.hold == MANUAL:
        raise FailedPrecondition(
            f"execution {run.id!r} is already paused by an operator", reason="EXECUTION_ALREADY_PAUSED"
        )
    if run.status == QUEUED:
        raise FailedPrecondition(
            f"execution {run.id!r} is queued: nothing runs yet; stop it to cancel it",
            reason="EXECUTION_QUEUED",
        )
    run.hold = MANUAL
    run.row_dirty = True
    return run.id


@command("resume")
def _resume_command(steer: RunSteering, driven: Driven, args: dict[str, Any]) -> str:
    run = driven.run
    if run.finished:
        raise _ended(run)
    if run.hold != MANUAL:
        raise FailedPrecondition(
            f"execution {run.id!r} is not paused by an operator; to go on from a breakpoint or "
            "a wait use ControlPause",
            reason="EXECUTION_NOT_MANUALLY_PAUSED",
        )
    steer.release(driven)
    return run.id


@command("set_trace_logs")
def _trace_logs_command(steer: RunSteering, driven: Driven, args: dict[str, Any]) -> str:
    run = driven.run
    enabled = bool(args["enabled"])
    if run.finished:
        raise _ended(run)
    if run.trace_logs != enabled:
        run.trace_logs = enabled
        run.row_dirty = True
        run.emit("EXECUTION_TRACE_LOGS_CHANGED", enabled=enabled)
    return run.id


@command("release_queued")
def _release_queued_command(steer: RunSteering, driven: Driven, args: dict[str, Any]) -> bool:
    run = driven.run
    reasons = tuple(args.get("reasons") or ())
    if run.status != QUEUED or (reasons and run.hold not in reasons):
        return False
    steer.release(driven)
    return True


@command("refresh")
def _refresh_command(steer: RunSteering, driven: Driven, args: dict[str, Any]) -> bool:
    if not driven.run.finished and driven.run.status != QUEUED:
        steer.refresh(driven)
    return True
