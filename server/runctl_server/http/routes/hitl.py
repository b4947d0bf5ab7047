"""The paused executions API: paused executions, the resume apiUrl, the approval page.

    GET  /api/workflows/{id}/paused?status=          WorkflowService.ListPausedExecutions
    POST /api/resume/{workflowId}/{executionId}/{contextId}   ExecutionService.ResumePausePoint (JSON)
    GET  /resume/{workflowId}/{executionId}          the approval page (HTML)
    POST /resume/{workflowId}/{executionId}          the page's form post (ResumePausePoint)

The JSON is built key by key, because the API shows keys that protobuf's JSON mapping leaves out when
empty (`expiresAt: null`, `metadata: null`), and keys the gRPC messages do not carry because their
value never varies in runctl: `snapshotReady` is always true (a pause is reported only once the run's
state is committed) and `triggerIds` always empty (runctl has no triggers). A run without a stored
workflow has "-" in place of the workflow id in its links; every route here takes "-" for such runs.

The links carry `?token=`, a signed credential for that one pause point (api/resume_links.py,
http/auth.py): with it, the apiUrl and the page need no API key, see only that pause point, and
refuse with 401 once it no longer waits (used, expired, cancelled). A retry with the same
Idempotency-Key still gets the answer of the call that resumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from google.protobuf import timestamp_pb2
from starlette.responses import HTMLResponse, JSONResponse

from runctl.v1 import common_pb2, execution_pb2, pause_point_pb2, workflow_pb2
from runctl_server.api.context import link_claim
from runctl_server.api.convert import struct_to_dict
from runctl_server.engine.resumes import NO_WORKFLOW, SKIP_REASONS
from runctl_server.errors import FailedPrecondition, InvalidArgument, NotFound, RunctlError, Unauthenticated
from runctl_server.http import approval_page
from runctl_server.http.approval_form import (
    CONTEXT_FIELD,
    DECISION_FIELD,
    FORM_MEDIA_TYPE,
    form_values,
    read_form,
)
from runctl_server.http.errors import PayloadTooLarge, http_status
from runctl_server.http.routing import Call, Endpoint, Param

RESUME_STATUSES = ("paused", "resumed", "expired", "cancelled")
RESUMABLE = (common_pb2.PAUSE_REASON_APPROVAL, common_pb2.PAUSE_REASON_WAIT)
MAX_DEPTH = 32  # nesting of resume values; each level is two protobuf messages (Struct, Value)
PAGE_SIZE = 100  # open pause points shown on one approval page (a run rarely waits at more than one)

# -- paused executions API shapes ----------------------------------------------------------------------------


def iso(stamp: timestamp_pb2.Timestamp) -> str:
    """ISO 8601 in UTC with a "Z", whole seconds, as the API writes "2026-01-15T10:30:00Z"."""
    return stamp.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_or_none(message: Any, name: str) -> str | None:
    return iso(getattr(message, name)) if message.HasField(name) else None


def resume_status_word(status: pause_point_pb2.ResumeStatus.ValueType) -> str:
    return pause_point_pb2.ResumeStatus.Name(status).removeprefix("RESUME_STATUS_").lower()


def field_type_word(kind: pause_point_pb2.FormFieldType.ValueType) -> str:
    if kind == pause_point_pb2.FORM_FIELD_TYPE_UNSPECIFIED:
        return "text"
    return pause_point_pb2.FormFieldType.Name(kind).removeprefix("FORM_FIELD_TYPE_").lower()


def form_field_json(field: pause_point_pb2.FormField) -> dict[str, Any]:
    """One form field, with the keys a workflow document declares it with."""
    return {
        "name": field.name,
        "type": field_type_word(field.type),
        "label": field.label or field.name,
        "description": field.description,
        "required": field.required,
        "default": approval_page.plain(field.default_value) if field.HasField("default_value") else None,
        "options": list(field.options),
    }


def pause_point_json(point: pause_point_pb2.PausePoint) -> dict[str, Any]:
    """A `pausePoints[]` item."""
    links = point.resume_links
    return {
        "contextId": point.context_id,
        "blockId": point.node_id,
        "registeredAt": iso(point.create_time),
        "resumeStatus": resume_status_word(point.resume_status),
        "snapshotReady": True,
        "resumeLinks": {
            "apiUrl": links.api_url,
            "uiUrl": links.ui_url,
            "contextId": links.context_id,
            "executionId": links.execution_id,
            "workflowId": links.workflow_id or NO_WORKFLOW,
        },
        "response": {
            "displayData": {
                "title": point.response.display_data.title,
                "message": point.response.display_data.message,
            },
            "formFields": [form_field_json(field) for field in point.response.form_fields],
        },
    }


def paused_execution_json(item: pause_point_pb2.PausedExecution) -> dict[str, Any]:
    """A `pausedExecutions[]` item."""
    return {
        "id": item.id,
        "workflowId": item.workflow_id,
        "executionId": item.execution_id,
        "status": resume_status_word(item.status),
        "totalPauseCount": item.total_pause_count,
        "resumedCount": item.resumed_count,
        "pausedAt": iso(item.pause_time),
        "updatedAt": iso(item.update_time),
        "expiresAt": _iso_or_none(item, "expire_time"),
        "metadata": struct_to_dict(item.metadata) if item.HasField("metadata") else None,
        "triggerIds": [],
        "pausePoints": [pause_point_json(point) for point in item.pause_points],
    }


def resume_json(reply: execution_pb2.ResumePausePointResponse) -> dict[str, Any]:
    point = reply.pause_point
    return {
        "action": "resumed" if reply.action == execution_pb2.RESUME_ACTION_RESUMED else "skipped",
        "reason": reply.reason,
        "values": struct_to_dict(point.resume_data) if point.HasField("resume_data") else None,
        "pausePoint": pause_point_json(point),
    }


# -- JSON routes --------------------------------------------------------------------------------------


async def list_paused(call: Call) -> dict[str, Any] | JSONResponse:
    word = (call.query("status") or "").strip()
    if word and word not in RESUME_STATUSES:
        raise InvalidArgument.single(
            "status", f"must be one of: {', '.join(RESUME_STATUSES)}; got {word!r}", reason="FIELD_INVALID"
        )
    request = workflow_pb2.ListPausedExecutionsRequest(
        workflow_id=call.path["id"],
        statuses=[pause_point_pb2.ResumeStatus.Value(f"RESUME_STATUS_{word.upper()}")] if word else [],
        page_size=call.int_query("limit", 100, minimum=1, maximum=1000),
        page_token=call.query("pageToken") or "",
    )
    reply = await call.unary(call.servicers.workflows.ListPausedExecutions, request)
    body = {"pausedExecutions": [paused_execution_json(item) for item in reply.paused_executions]}
    if reply.next_page_token:
        # The documented body has no paging keys: the next page's token travels in a header.
        return JSONResponse(body, headers={"X-Next-Page-Token": reply.next_page_token})
    return body


def _problem(value: Any, depth: int = 0) -> str | None:
    """What makes a JSON value unfit for a protobuf Struct: too deep a nesting, or NaN / Infinity
    (which Python's JSON reader accepts and protobuf cannot carry)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "holds NaN or Infinity, which JSON numbers cannot be"
    if not isinstance(value, dict | list):
        return None
    if depth >= MAX_DEPTH:
        # Deeper than a gRPC client could send it (protobuf's nesting limit), or read it back.
        return f"nests deeper than {MAX_DEPTH} levels"
    children = value.values() if isinstance(value, dict) else value
    return next((problem for child in children if (problem := _problem(child, depth + 1))), None)


def spent_link(reason: str) -> Unauthenticated:
    """A resume link whose pause point no longer waits: used, expired or cancelled with its run."""
    return Unauthenticated(
        f"this resume link can no longer be used: its pause point is {reason}", reason="RESUME_LINK_SPENT"
    )


async def resume(call: Call) -> dict[str, Any]:
    values = await call.json_body()
    if problem := _problem(values):
        raise InvalidArgument.single("body", problem, reason="FIELD_INVALID")
    request = execution_pb2.ResumePausePointRequest(
        context_id=call.path["contextId"],
        workflow_id=call.path["workflowId"],
        execution_id=call.path["executionId"],
        request_id=call.request.headers.get("idempotency-key", ""),
    )
    request.values.update(values)
    reply = await call.unary(call.servicers.executions.ResumePausePoint, request)
    if link_claim() is not None and reply.action != execution_pb2.RESUME_ACTION_RESUMED:
        # Through a link, only the answer that resumed may be repeated (the same Idempotency-Key).
        raise spent_link(reply.reason)
    return resume_json(reply)


# -- the approval page --------------------------------------------------------------------------------


async def _execution(call: Call) -> execution_pb2.Execution:
    """The run the page's path names; NotFound unless the workflow id in the path is its own."""
    workflow_id, execution_id = call.path["workflowId"], call.path["executionId"]
    reply = await call.unary(
        call.servicers.executions.GetExecution,
        execution_pb2.GetExecutionRequest(execution_id=execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC),
    )
    execution: execution_pb2.Execution = reply.execution
    if (execution.workflow_id or NO_WORKFLOW) != workflow_id:
        raise NotFound(f"execution {execution_id!r} not found", reason="EXECUTION_NOT_FOUND")
    return execution


async def _open_pause_points(call: Call, execution_id: str) -> list[pause_point_pb2.PausePoint]:
    """The run's waiting pause points, oldest first."""
    reply = await call.unary(
        call.servicers.pause_points.ListPausePoints,
        pause_point_pb2.ListPausePointsRequest(
            execution_id=execution_id,
            resume_statuses=[pause_point_pb2.RESUME_STATUS_PAUSED],
            page_size=PAGE_SIZE,
        ),
    )
    return list(reversed(reply.pause_points))


def _error_page(error: RunctlError) -> HTMLResponse:
    status = 413 if isinstance(error, PayloadTooLarge) else http_status(error)
    return HTMLResponse(approval_page.error_page(status, error.message), status_code=status)


async def _pause_point(
    call: Call, execution: execution_pb2.Execution, context_id: str
) -> pause_point_pb2.PausePoint:
    """One pause point of the run the path names; NotFound for another run's."""
    reply = await call.unary(
        call.servicers.pause_points.GetPausePoint, pause_point_pb2.GetPausePointRequest(context_id=context_id)
    )
    point: pause_point_pb2.PausePoint = reply.pause_point
    if point.execution_id != execution.id:
        raise NotFound(f"pause point {context_id!r} not found", reason="PAUSE_POINT_NOT_FOUND")
    return point


async def show_page(call: Call) -> HTMLResponse:
    claim = link_claim()
    try:
        execution = await _execution(call)
        if claim is None:
            points = await _open_pause_points(call, execution.id)
        else:  # a resume link shows its own pause point, and only while it waits
            point = await _pause_point(call, execution, claim.context_id)
            if point.resume_status != pause_point_pb2.RESUME_STATUS_PAUSED:
                raise spent_link(_skip_reason(point))
            points = [point]
    except RunctlError as error:
        return _error_page(error)
    waiting = [point for point in points if point.reason in RESUMABLE]
    if not waiting:
        return HTMLResponse(approval_page.nothing_waiting_page(execution, points))
    return HTMLResponse(approval_page.request_page(execution, waiting))


async def submit_page(call: Call) -> HTMLResponse:
    try:
        form = await read_form(call)
        context_id = form.get(CONTEXT_FIELD, "")
        if not context_id:
            raise InvalidArgument.single(
                CONTEXT_FIELD, "is required: the form names the pause point", reason="FIELD_REQUIRED"
            )
        claim = link_claim()
        if claim is not None and context_id != claim.context_id:
            raise NotFound(f"pause point {context_id!r} not found", reason="PAUSE_POINT_NOT_FOUND")
        execution = await _execution(call)
        point = await _pause_point(call, execution, context_id)
        if claim is not None and point.resume_status != pause_point_pb2.RESUME_STATUS_PAUSED:
            raise spent_link(_skip_reason(point))
    except RunctlError as error:
        return _error_page(error)
    if point.reason not in RESUMABLE:
        return _error_page(
            FailedPrecondition(
                f"this pause point is a {approval_page.reason_word(point.reason)}, which is not answered "
                "with a form: an operator continues the run (ControlPause)",
                reason="PAUSE_POINT_NOT_RESUMABLE",
            )
        )
    if point.resume_status != pause_point_pb2.RESUME_STATUS_PAUSED:
        return HTMLResponse(approval_page.handled_page(execution, point, _skip_reason(point)))
    values, violations = form_values(point.response.form_fields, form)
    if violations:
        return _form_again(execution, point, form, violations)
    request = execution_pb2.ResumePausePointRequest(
        context_id=context_id, workflow_id=call.path["workflowId"], execution_id=execution.id
    )
    request.values.update(values)
    try:
        outcome = await call.unary(call.servicers.executions.ResumePausePoint, request)
    except InvalidArgument as error:
        return _form_again(execution, point, form, error.violations)
    except RunctlError as error:
        return _error_page(error)
    if outcome.action != execution_pb2.RESUME_ACTION_RESUMED:
        if claim is not None:  # someone else answered between the page's checks and this resume
            return _error_page(spent_link(outcome.reason))
        return HTMLResponse(approval_page.handled_page(execution, outcome.pause_point, outcome.reason))
    return HTMLResponse(approval_page.confirmation_page(execution, outcome.pause_point))


def _skip_reason(point: pause_point_pb2.PausePoint) -> str:
    """The engine's words for why a resume of this pause point would be skipped."""
    return SKIP_REASONS.get(resume_status_word(point.resume_status), "no longer waiting")


def _form_again(
    execution: execution_pb2.Execution,
    point: pause_point_pb2.PausePoint,
    form: dict[str, str],
    violations: Sequence[Any],
) -> HTMLResponse:
    """The form once more, with what the person typed and each problem beside its input."""
    page = approval_page.request_page(execution, [point], submitted={point.context_id: (form, violations)})
    return HTMLResponse(page, status_code=400)


# -- declarations ---------------------------------------------------------------------------------------

TIMESTAMP = {"type": "string", "format": "date-time", "example": "2026-01-15T10:30:00Z"}
FORM_FIELD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string", "enum": ["text", "number", "boolean", "select"]},
        "label": {"type": "string"},
        "description": {"type": "string"},
        "required": {"type": "boolean"},
        "default": {"nullable": True},
        "options": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "type", "label", "description", "required", "default", "options"],
}
PAUSE_POINT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "contextId": {"type": "string"},
        "blockId": {"type": "string"},
        "registeredAt": TIMESTAMP,
        "resumeStatus": {"type": "string", "enum": list(RESUME_STATUSES)},
        "snapshotReady": {"type": "boolean"},
        "resumeLinks": {
            "type": "object",
            "properties": {
                name: {"type": "string"}
                for name in ("apiUrl", "uiUrl", "contextId", "executionId", "workflowId")
            },
            "required": ["apiUrl", "uiUrl", "contextId", "executionId", "workflowId"],
        },
        "response": {
            "type": "object",
            "properties": {
                "displayData": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}, "message": {"type": "string"}},
                    "required": ["title", "message"],
                },
                "formFields": {"type": "array", "items": FORM_FIELD_SCHEMA},
            },
            "required": ["displayData", "formFields"],
        },
    },
    "required": [
        "contextId",
        "blockId",
        "registeredAt",
        "resumeStatus",
        "snapshotReady",
        "resumeLinks",
        "response",
    ],
}
PAUSED_EXECUTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "workflowId": {"type": "string"},
        "executionId": {"type": "string"},
        "status": {"type": "string", "enum": list(RESUME_STATUSES)},
        "totalPauseCount": {"type": "integer"},
        "resumedCount": {"type": "integer"},
        "pausedAt": TIMESTAMP,
        "updatedAt": TIMESTAMP,
        "expiresAt": {**TIMESTAMP, "nullable": True},
        "metadata": {"type": "object", "nullable": True},
        "triggerIds": {"type": "array", "items": {"type": "string"}},
        "pausePoints": {"type": "array", "items": PAUSE_POINT_SCHEMA},
    },
    "required": [
        "id",
        "workflowId",
        "executionId",
        "status",
        "totalPauseCount",
        "resumedCount",
        "pausedAt",
        "updatedAt",
        "expiresAt",
        "metadata",
        "triggerIds",
        "pausePoints",
    ],
}
RESUME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["resumed", "skipped"]},
        "reason": {"type": "string", "description": 'Why it was skipped ("already resumed", ...); "" if not'},
        "values": {
            "type": "object",
            "nullable": True,
            "description": "What the pause point was resumed with (the node's output); null until then",
        },
        "pausePoint": PAUSE_POINT_SCHEMA,
    },
    "required": ["action", "reason", "values", "pausePoint"],
}
FORM_POST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        CONTEXT_FIELD: {"type": "string", "description": "The pause point the form answers"},
        DECISION_FIELD: {"type": "string", "enum": ["approve", "reject"]},
    },
    "required": [CONTEXT_FIELD, DECISION_FIELD],
    "additionalProperties": {"type": "string", "description": "A form field's value, by its name"},
}

LINK_TOKEN = Param(
    "token",
    {"type": "string"},
    "The resume link's token: the credential for that one pause point, no key needed",
)
ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/workflows/{id}/paused",
        list_paused,
        "List the paused executions of a workflow, with their pause points, resume links and forms",
        "paused executions",
        query=(
            Param(
                "status",
                {"type": "string", "enum": list(RESUME_STATUSES)},
                "Only paused executions in this status (any when absent)",
            ),
            Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Page size"),
            Param("pageToken", {"type": "string"}, "The X-Next-Page-Token header of the previous page"),
        ),
        response={
            "type": "object",
            "properties": {"pausedExecutions": {"type": "array", "items": PAUSED_EXECUTION_SCHEMA}},
            "required": ["pausedExecutions"],
        },
    ),
    Endpoint(
        "POST",
        "/api/resume/{workflowId}/{executionId}/{contextId}",
        resume,
        "Resume a pause point with the form values (the apiUrl); a later call answers skipped",
        "implied",
        body={
            "type": "object",
            "description": 'The form values by field name, e.g. {"approved": true, "note": "ok"}',
            "additionalProperties": True,
        },
        response=RESUME_SCHEMA,
        error_statuses=(400, 401, 404, 409),
        query=(LINK_TOKEN,),
    ),
    Endpoint(
        "GET",
        "/resume/{workflowId}/{executionId}",
        show_page,
        "The approval page (the uiUrl): what the run asks, its form, Approve and Reject",
        "implied",
        response={"type": "string", "description": "An HTML page"},
        media_type="text/html",
        error_media_type="text/html",
        query=(LINK_TOKEN,),
        error_statuses=(401, 404),
    ),
    Endpoint(
        "POST",
        "/resume/{workflowId}/{executionId}",
        submit_page,
        "The approval page's form post: resumes the pause point and answers a page saying how it went",
        "implied",
        body=FORM_POST_SCHEMA,
        response={"type": "string", "description": "An HTML page"},
        error_statuses=(400, 401, 404, 409),
        query=(LINK_TOKEN,),
        media_type="text/html",
        error_media_type="text/html",
        body_media_type=FORM_MEDIA_TYPE,
    ),
]
