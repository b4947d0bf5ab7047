"""The console's JSON API: `POST /console/api/{Service}/{Method}`, the runctl.v1 request message as
proto JSON in, the response message as proto JSON out.

The console in the browser speaks the contract's own messages (their JSON mapping) and reaches the very
servicers gRPC reaches, in the caller's workspace, so it can show nothing and do nothing that a gRPC
caller with the same key could not. Errors answer the `{"error", "details"}` body of the other HTTP
routes. Only the methods the console uses are served: reads, and the control calls a person makes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.message import Message
from starlette.responses import JSONResponse

from runctl_server.api.servicers import Servicers
from runctl_server.api.services import SERVICES
from runctl_server.errors import InvalidArgument, NotFound
from runctl_server.http.bridge import Unary, to_dict
from runctl_server.http.routing import Call, Endpoint

PREFIX = "/console/api"


def _console_methods(s: Servicers) -> dict[tuple[str, str], Unary[Any, Any]]:
    """The servicer methods the console may call (CONSOLE_METHODS), by the names in its URL."""
    w, e, p, b = s.workflows, s.executions, s.pause_points, s.batches
    return {
        ("WorkflowService", "ListWorkflows"): w.ListWorkflows,
        ("WorkflowService", "GetWorkflow"): w.GetWorkflow,
        ("WorkflowService", "PauseWorkflow"): w.PauseWorkflow,
        ("WorkflowService", "ResumeWorkflow"): w.ResumeWorkflow,
        ("WorkflowService", "CancelWorkflow"): w.CancelWorkflow,
        ("WorkflowService", "RotateWebhookSecret"): w.RotateWebhookSecret,
        ("ExecutionService", "ListExecutions"): e.ListExecutions,
        ("ExecutionService", "GetExecution"): e.GetExecution,
        ("ExecutionService", "GetExecutionHistory"): e.GetExecutionHistory,
        ("ExecutionService", "StopExecution"): e.StopExecution,
        ("ExecutionService", "ControlPause"): e.ControlPause,
        ("ExecutionService", "SetTraceLogs"): e.SetTraceLogs,
        ("ExecutionService", "PauseExecution"): e.PauseExecution,
        ("ExecutionService", "ResumeExecution"): e.ResumeExecution,
        ("ExecutionService", "ResumePausePoint"): e.ResumePausePoint,
        ("PausePointService", "ListPausePoints"): p.ListPausePoints,
        ("PausePointService", "GetPausePoint"): p.GetPausePoint,
        ("BatchService", "ListBatches"): b.ListBatches,
        ("BatchService", "GetBatch"): b.GetBatch,
        ("BatchService", "StopBatch"): b.StopBatch,
        ("BatchService", "ClearBatches"): b.ClearBatches,
    }


CONSOLE_METHODS: Mapping[str, tuple[str, ...]] = {
    "WorkflowService": (
        "ListWorkflows",
        "GetWorkflow",
        "PauseWorkflow",
        "ResumeWorkflow",
        "CancelWorkflow",
        "RotateWebhookSecret",
    ),
    "ExecutionService": (
        "ListExecutions",
        "GetExecution",
        "GetExecutionHistory",
        "StopExecution",
        "ControlPause",
        "SetTraceLogs",
        "PauseExecution",
        "ResumeExecution",
        "ResumePausePoint",
    ),
    "PausePointService": ("ListPausePoints", "GetPausePoint"),
    "BatchService": ("ListBatches", "GetBatch", "StopBatch", "ClearBatches"),
}
# Answers hold run data and, once, a new webhook secret: never kept by a cache.
NO_STORE = {"cache-control": "no-store"}


def _request_classes() -> dict[tuple[str, str], type[Message]]:
    specs = {spec.name: spec for spec in SERVICES}
    classes: dict[tuple[str, str], type[Message]] = {}
    for service, methods in CONSOLE_METHODS.items():
        descriptor = specs[service].messages.DESCRIPTOR.services_by_name[service]
        for method in methods:
            input_type = descriptor.methods_by_name[method].input_type
            classes[service, method] = message_factory.GetMessageClass(input_type)
    return classes


REQUEST_CLASSES = _request_classes()


def _json_content(call: Call) -> None:
    """A JSON content type makes a cross-site page's request a preflighted one, which this server never
    allows: without it, a page elsewhere could send a plain form post to a dev-mode server."""
    media_type = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise InvalidArgument.single(
            "Content-Type", f"must be application/json, got {media_type or 'none'!r}", reason="FIELD_INVALID"
        )


async def call_method(call: Call) -> JSONResponse:
    service, method = call.path["service"], call.path["method"]
    request_class = REQUEST_CLASSES.get((service, method))
    if request_class is None:
        known = ", ".join(f"{s}/{m}" for s, m in REQUEST_CLASSES)
        raise NotFound(
            f"{service}/{method} is not a method of the console API; it serves {known}",
            reason="CONSOLE_METHOD_NOT_FOUND",
        )
    _json_content(call)
    body: dict[str, Any] = await call.json_body()
    message = request_class()
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as exc:
        raise InvalidArgument.single("body", str(exc), reason="FIELD_INVALID") from None
    except RecursionError:
        raise InvalidArgument.single("body", "is nested too deeply", reason="FIELD_INVALID") from None
    response = await call.unary(_console_methods(call.servicers)[service, method], message)
    return JSONResponse(to_dict(response), headers=NO_STORE)


ENDPOINTS = [
    Endpoint(
        "POST",
        PREFIX + "/{service}/{method}",
        call_method,
        "Call a runctl.v1 method with its request message as proto JSON (the console's API)",
        "console",
        body={"type": "object"},
        error_statuses=(400, 401, 404, 409),
    )
]
