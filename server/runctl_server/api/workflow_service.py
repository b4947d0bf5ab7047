"""runctl.v1.WorkflowService: thin translation between messages and engine.workflows."""

from __future__ import annotations

from typing import Any

from grpc import aio

from runctl.v1 import pause_point_pb2, workflow_pb2, workflow_pb2_grpc
from runctl_server.api import convert
from runctl_server.api.context import workspace_of
from runctl_server.api.resume_links import ResumeLinks
from runctl_server.engine.engine import Engine
from runctl_server.errors import InvalidArgument

Context = aio.ServicerContext[Any, Any]


class WorkflowService(workflow_pb2_grpc.WorkflowServiceServicer):
    def __init__(self, engine: Engine, links: ResumeLinks) -> None:
        self._engine = engine
        self._links = links

    async def CreateWorkflow(
        self, request: workflow_pb2.CreateWorkflowRequest, context: Context
    ) -> workflow_pb2.CreateWorkflowResponse:
        if not request.HasField("definition"):
            raise InvalidArgument.single("definition", "is required", reason="FIELD_REQUIRED")
        view = await self._engine.workflows.create(
            workspace_of(context), convert.definition_document(request.definition), request.request_id
        )
        return workflow_pb2.CreateWorkflowResponse(workflow=convert.workflow(view))

    async def GetWorkflow(
        self, request: workflow_pb2.GetWorkflowRequest, context: Context
    ) -> workflow_pb2.GetWorkflowResponse:
        view = await self._engine.workflows.get(workspace_of(context), request.workflow_id, request.version)
        full = request.view != workflow_pb2.WORKFLOW_VIEW_BASIC
        return workflow_pb2.GetWorkflowResponse(workflow=convert.workflow(view, full=full))

    async def ListWorkflows(
        self, request: workflow_pb2.ListWorkflowsRequest, context: Context
    ) -> workflow_pb2.ListWorkflowsResponse:
        views, token = await self._engine.workflows.list(
            workspace_of(context),
            size=request.page_size,
            token=request.page_token,
            statuses=convert.filter_words(request.statuses, workflow_pb2.WorkflowStatus, "statuses"),
        )
        full = request.view == workflow_pb2.WORKFLOW_VIEW_FULL
        return workflow_pb2.ListWorkflowsResponse(
            workflows=[convert.workflow(view, full=full) for view in views], next_page_token=token
        )

    async def UpdateWorkflow(
        self, request: workflow_pb2.UpdateWorkflowRequest, context: Context
    ) -> workflow_pb2.UpdateWorkflowResponse:
        if not request.HasField("definition"):
            raise InvalidArgument.single("definition", "is required", reason="FIELD_REQUIRED")
        view = await self._engine.workflows.update(
            workspace_of(context),
            request.workflow_id,
            convert.definition_document(request.definition),
            expected_version=request.expected_version,
        )
        return workflow_pb2.UpdateWorkflowResponse(workflow=convert.workflow(view))

    async def DeleteWorkflow(
        self, request: workflow_pb2.DeleteWorkflowRequest, context: Context
    ) -> workflow_pb2.DeleteWorkflowResponse:
        _require_id(request.workflow_id)
        workflow_control = self._engine.workflow_control
        await workflow_control.delete(workspace_of(context), request.workflow_id, force=request.force)
        return workflow_pb2.DeleteWorkflowResponse()

    # -- workflow control (the workflow pause API) and paused executions --------------------------

    async def _workflow(self, workspace_id: str, workflow_id: str) -> workflow_pb2.Workflow:
        return convert.workflow(await self._engine.workflows.get(workspace_id, workflow_id), full=False)

    async def PauseWorkflow(
        self, request: workflow_pb2.PauseWorkflowRequest, context: Context
    ) -> workflow_pb2.PauseWorkflowResponse:
        workspace_id = workspace_of(context)
        _require_id(request.workflow_id)
        await self._engine.workflow_control.pause(workspace_id, request.workflow_id, request.reason)
        return workflow_pb2.PauseWorkflowResponse(
            workflow=await self._workflow(workspace_id, request.workflow_id)
        )

    async def ResumeWorkflow(
        self, request: workflow_pb2.ResumeWorkflowRequest, context: Context
    ) -> workflow_pb2.ResumeWorkflowResponse:
        workspace_id = workspace_of(context)
        _require_id(request.workflow_id)
        await self._engine.workflow_control.resume(workspace_id, request.workflow_id)
        return workflow_pb2.ResumeWorkflowResponse(
            workflow=await self._workflow(workspace_id, request.workflow_id)
        )

    async def CancelWorkflow(
        self, request: workflow_pb2.CancelWorkflowRequest, context: Context
    ) -> workflow_pb2.CancelWorkflowResponse:
        workspace_id = workspace_of(context)
        _require_id(request.workflow_id)
        await self._engine.workflow_control.cancel(workspace_id, request.workflow_id, request.reason)
        return workflow_pb2.CancelWorkflowResponse(
            workflow=await self._workflow(workspace_id, request.workflow_id)
        )

    async def RotateWebhookSecret(
        self, request: workflow_pb2.RotateWebhookSecretRequest, context: Context
    ) -> workflow_pb2.RotateWebhookSecretResponse:
        _require_id(request.workflow_id)
        # Seconds and nanos as they are: a timedelta overflows for durations far out of range.
        overlap = (
            request.overlap.seconds + request.overlap.nanos / 1e9 if request.HasField("overlap") else None
        )
        view = await self._engine.workflows.rotate_secret(workspace_of(context), request.workflow_id, overlap)
        reply = workflow_pb2.RotateWebhookSecretResponse(workflow=convert.workflow(view, full=False))
        if (until := convert.timestamp(view.previous_secret_until)) is not None:
            reply.previous_secret_expire_time.CopyFrom(until)
        return reply

    async def ListPausedExecutions(
        self, request: workflow_pb2.ListPausedExecutionsRequest, context: Context
    ) -> workflow_pb2.ListPausedExecutionsResponse:
        _require_id(request.workflow_id)
        page, token = await self._engine.workflow_control.paused_executions(
            workspace_of(context),
            request.workflow_id,
            statuses=convert.filter_words(request.statuses, pause_point_pb2.ResumeStatus, "statuses"),
            size=request.page_size,
            token=request.page_token,
        )
        return workflow_pb2.ListPausedExecutionsResponse(
            paused_executions=[convert.paused_execution(item, self._links) for item in page],
            next_page_token=token,
        )


def _require_id(workflow_id: str) -> None:
    if not workflow_id:
        raise InvalidArgument.single("workflow_id", "is required", reason="FIELD_REQUIRED")
