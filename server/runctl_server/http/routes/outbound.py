"""The workflow pause API: pause, resume, cancel and get a workflow.

404 when the workflow does not exist, 409 when it is not in a state the call applies to.
"""

from __future__ import annotations

from typing import Any

from runctl.v1 import workflow_pb2
from runctl_server.http.bridge import to_dict
from runctl_server.http.routing import Call, Endpoint

WORKFLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": ["active", "paused", "cancelled"]},
        "version": {"type": "integer"},
    },
    "required": ["id", "status"],
}


def workflow_json(workflow: workflow_pb2.Workflow) -> dict[str, Any]:
    body = to_dict(workflow)
    body.pop("definition", None)
    body["status"] = (
        workflow_pb2.WorkflowStatus.Name(workflow.status).removeprefix("WORKFLOW_STATUS_").lower()
    )
    return body


async def pause(call: Call) -> dict[str, Any]:
    body = await call.json_body()
    reason = body.get("reason", "")
    request = workflow_pb2.PauseWorkflowRequest(workflow_id=call.path["id"], reason=str(reason or ""))
    reply = await call.unary(call.servicers.workflows.PauseWorkflow, request)
    return workflow_json(reply.workflow)


async def resume(call: Call) -> dict[str, Any]:
    request = workflow_pb2.ResumeWorkflowRequest(workflow_id=call.path["id"])
    reply = await call.unary(call.servicers.workflows.ResumeWorkflow, request)
    return workflow_json(reply.workflow)


async def cancel(call: Call) -> dict[str, Any]:
    body = await call.json_body()
    request = workflow_pb2.CancelWorkflowRequest(
        workflow_id=call.path["id"], reason=str(body.get("reason") or "")
    )
    reply = await call.unary(call.servicers.workflows.CancelWorkflow, request)
    return workflow_json(reply.workflow)


async def get(call: Call) -> dict[str, Any]:
    request = workflow_pb2.GetWorkflowRequest(
        workflow_id=call.path["id"], view=workflow_pb2.WORKFLOW_VIEW_BASIC
    )
    reply = await call.unary(call.servicers.workflows.GetWorkflow, request)
    return workflow_json(reply.workflow)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/workflows/{id}/pause",
        pause,
        "Pause an active workflow",
        "workflow pause",
        response=WORKFLOW_SCHEMA,
        error_statuses=(400, 404, 409),
    ),
    Endpoint(
        "POST",
        "/v1/workflows/{id}/resume",
        resume,
        "Resume a paused workflow",
        "workflow pause",
        response=WORKFLOW_SCHEMA,
        error_statuses=(400, 404, 409),
    ),
    Endpoint(
        "POST",
        "/v1/workflows/{id}/cancel",
        cancel,
        "Cancel a workflow for good",
        "workflow pause",
        response=WORKFLOW_SCHEMA,
        error_statuses=(400, 404, 409),
    ),
    Endpoint("GET", "/v1/workflows/{id}", get, "Get a workflow", "workflow pause", response=WORKFLOW_SCHEMA),
]
