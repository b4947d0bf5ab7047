"""ExecutionService control calls: stop, stop all, pause control, operator pause, trace logs.

Every call on one run needs its `execution_id` (the engine refuses an empty one): gRPC has no implicit
"most recent" run.
"""

from __future__ import annotations

from typing import Any

from grpc import aio

from runctl.v1 import execution_pb2
from runctl_server.api import convert
from runctl_server.api.context import workspace_of
from runctl_server.api.resume_links import ResumeLinks
from runctl_server.engine.engine import Engine
from runctl_server.errors import InvalidArgument

Context = aio.ServicerContext[Any, Any]

PAUSE_ACTION_WORDS = {
    execution_pb2.PAUSE_ACTION_CONTINUE: "continue",
    execution_pb2.PAUSE_ACTION_SKIP: "skip",
    execution_pb2.PAUSE_ACTION_CONTINUE_WITHOUT_BREAKPOINT: "continueWithoutBreakpoint",
}


class ExecutionControlCalls:
    """Mixed into ExecutionService."""

    _engine: Engine
    _links: ResumeLinks

    async def _execution(
        self, workspace_id: str, execution_id: str, full: bool = True
    ) -> execution_pb2.Execution:
        """The run as GetExecution shows it (every control call answers the run it changed)."""
        view = await self._engine.queries.execution(workspace_id, execution_id, full=full)
        return convert.execution(view, full=full, links=self._links)

    async def StopExecution(
        self, request: execution_pb2.StopExecutionRequest, context: Context
    ) -> execution_pb2.StopExecutionResponse:
        outcome = await self._engine.control.stop(workspace_of(context), request.execution_id, request.reason)
        return execution_pb2.StopExecutionResponse(
            execution_id=outcome.execution_id,
            was_running=outcome.was_running,
            was_queued=outcome.was_queued,
        )

    async def StopAllExecutions(
        self, request: execution_pb2.StopAllExecutionsRequest, context: Context
    ) -> execution_pb2.StopAllExecutionsResponse:
        outcome = await self._engine.control.stop_all(workspace_of(context), request.reason)
        return execution_pb2.StopAllExecutionsResponse(
            running_stopped=outcome.counts.running_stopped,
            queued_cancelled=outcome.counts.queued_cancelled,
            batch_ids=outcome.batch_ids,
        )

    async def ControlPause(
        self, request: execution_pb2.ControlPauseRequest, context: Context
    ) -> execution_pb2.ControlPauseResponse:
        action = PAUSE_ACTION_WORDS.get(request.action)
        if action is None:
            raise InvalidArgument.single(
                "action",
                "is required: one of PAUSE_ACTION_CONTINUE, PAUSE_ACTION_SKIP, "
                "PAUSE_ACTION_CONTINUE_WITHOUT_BREAKPOINT (stopping is StopExecution)",
                reason="FIELD_REQUIRED",
            )
        workspace_id = workspace_of(context)
        execution_id = await self._engine.control.control_pause(workspace_id, request.execution_id, action)
        return execution_pb2.ControlPauseResponse(execution=await self._execution(workspace_id, execution_id))

    async def PauseExecution(
        self, request: execution_pb2.PauseExecutionRequest, context: Context
    ) -> execution_pb2.PauseExecutionResponse:
        if not request.execution_id:
            raise InvalidArgument.single("execution_id", "is required", reason="FIELD_REQUIRED")
        workspace_id = workspace_of(context)
        execution_id = await self._engine.control.pause(workspace_id, request.execution_id)
        return execution_pb2.PauseExecutionResponse(
            execution=await self._execution(workspace_id, execution_id)
        )

    async def ResumeExecution(
        self, request: execution_pb2.ResumeExecutionRequest, context: Context
    ) -> execution_pb2.ResumeExecutionResponse:
        if not request.execution_id:
            raise InvalidArgument.single("execution_id", "is required", reason="FIELD_REQUIRED")
        workspace_id = workspace_of(context)
        execution_id = await self._engine.control.resume(workspace_id, request.execution_id)
        return execution_pb2.ResumeExecutionResponse(
            execution=await self._execution(workspace_id, execution_id)
        )

    async def SetTraceLogs(
        self, request: execution_pb2.SetTraceLogsRequest, context: Context
    ) -> execution_pb2.SetTraceLogsResponse:
        execution_id = await self._engine.control.set_trace_logs(
            workspace_of(context), request.execution_id, request.enabled
        )
        return execution_pb2.SetTraceLogsResponse(execution_id=execution_id, enabled=request.enabled)
