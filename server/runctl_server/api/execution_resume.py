"""ExecutionService resume calls: ResumePausePoint and ResumeNode."""

from __future__ import annotations

from typing import Any

from grpc import aio

from runctl.v1 import common_pb2, execution_pb2
from runctl_server.api import convert
from runctl_server.api.context import workspace_of
from runctl_server.api.resume_links import ResumeLinks
from runctl_server.engine.engine import Engine

Context = aio.ServicerContext[Any, Any]


def _action(resumed: bool) -> execution_pb2.ResumeAction.ValueType:
    return execution_pb2.RESUME_ACTION_RESUMED if resumed else execution_pb2.RESUME_ACTION_SKIPPED


def for_each_context(message: common_pb2.ForEachContext) -> dict[str, Any]:
    """The node resume API's forEachContext shape (its stack), which the engine reads."""
    return {
        "stack": [
            {"index": level.index, "parentNodeId": level.parent_node_id, "total": level.total}
            for level in message.stack
        ]
    }


class ExecutionResumeCalls:
    """Mixed into ExecutionService."""

    _engine: Engine
    _links: ResumeLinks

    async def ResumePausePoint(
        self, request: execution_pb2.ResumePausePointRequest, context: Context
    ) -> execution_pb2.ResumePausePointResponse:
        outcome = await self._engine.resumes.resume_pause_point(
            workspace_of(context),
            request.context_id,
            convert.struct_to_dict(request.values, "values"),
            workflow_id=request.workflow_id,
            execution_id=request.execution_id,
            request_id=request.request_id,
            actor=request.actor,
        )
        pause_point = convert.pause_point(outcome.pause_point, self._links)
        pause_point.resolved_by = outcome.resolved_by
        return execution_pb2.ResumePausePointResponse(
            action=_action(outcome.resumed), reason=outcome.reason, pause_point=pause_point
        )

    async def ResumeNode(
        self, request: execution_pb2.ResumeNodeRequest, context: Context
    ) -> execution_pb2.ResumeNodeResponse:
        outcome = await self._engine.resumes.resume_node(
            workspace_of(context),
            request.execution_id,
            request.node_id,
            request.secret,
            convert.struct_to_dict(request.data, "data"),
            for_each=for_each_context(request.for_each_context)
            if request.HasField("for_each_context")
            else None,
            request_id=request.request_id,
        )
        return execution_pb2.ResumeNodeResponse(action=_action(outcome.resumed), reason=outcome.reason)
