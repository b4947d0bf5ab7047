"""The routes DESIGN.md implies ("Running it"): create and list workflows, execute one run, execute a batch.

`GET /v1/workflows/{id}` is the workflow pause API's route (outbound.py); the workflows here answer
the same shape.

- `POST /v1/workflows`: the body is a workflow document (DESIGN.md "Workflow files"). 201 Created
  with the workflow, its `id`, its `webhookSecret` (shown this once) and a `Location` header; with an
  `Idempotency-Key` header a repeated call answers 200 with the workflow the first one created and
  `webhookSecret: null` (a secret is shown once; rotate it if the first answer was lost).
- `POST /v1/workflows/{id}/rotate-secret` with an optional `{"overlapSeconds": 3600}`: a new
  `webhookSecret` (shown this once); the one it replaces keeps working until
  `previousSecretExpiresAt` (null when `overlapSeconds` is 0), by default for 24 hours.
- `GET /v1/workflows?pageSize=&pageToken=&status=`: `{"workflows": [...], "nextPageToken"}`,
  most recently updated first.
- `POST /api/workflows/execute` and `/api/workflows/execute/batch` are in the style of the local
  runner API: 200 `{"success": true, "message", "executionId" | "batchId", ...}`, and errors
  `{"success": false, "message", "error", "details"}`.

Bad documents answer 400 with one field violation per problem, paths from the body's root
(`nodes[1].type`, or `workflow.nodes[1].type` for an inline document to execute).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2
from starlette.responses import JSONResponse

from runctl.v1 import batch_pb2, batch_resource_pb2, common_pb2, execution_pb2, workflow_pb2
from runctl_server.api.convert import status_word
from runctl_server.engine.workflows import MAX_SECRET_OVERLAP_SECONDS
from runctl_server.errors import FieldViolation, InvalidArgument, describe
from runctl_server.http.errors import runner_error
from runctl_server.http.routes.fields import renamed
from runctl_server.http.routes.outbound import WORKFLOW_SCHEMA, workflow_json
from runctl_server.http.routes.workflow_document import (
    DOCUMENT_SCHEMA,
    definition_message,
    plain_json_violations,
    under,
)
from runctl_server.http.routing import Call, Endpoint, Param

INT32_MAX = 2**31 - 1
WORKFLOW_STATUSES = ("active", "paused", "cancelled")
EXECUTE_NAMES = {
    "workflow_id": "workflowId",
    "workflow_path": "workflowPath",
    "workflow_version": "workflowVersion",
    "request_id": "requestId",
    "definition": "workflow",
}
BATCH_NAMES = {"folder_path": "folderPath", "request_id": "requestId"}
BATCH_PREFIXES = (("workflow_paths.paths", "workflowPaths"), ("workflow_ids.ids", "workflowIds"))
LIST_NAMES = {"page_size": "pageSize", "page_token": "pageToken"}


class BodyReader:
    """Typed reads of a JSON body's members, collecting a violation per bad one."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body
        self.violations: list[FieldViolation] = []

    def bad(self, field: str, description: str) -> None:
        self.violations.append(FieldViolation(field, description))

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self.body.get(key)
        if isinstance(value, str) and not value and required:
            self.bad(key, "must not be empty")
            return None
        if value is None or isinstance(value, str):
            return value
        self.bad(key, f"must be a string, not {describe(value)}")
        return None

    def strings(self, key: str) -> list[str] | None:
        value = self.body.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.bad(key, f"must be an array of strings, not {describe(value)}")
            return None
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.bad(f"{key}[{index}]", f"must be a string, not {describe(item)}")
        return [item for item in value if isinstance(item, str)]

    def integer(self, key: str, *, minimum: int = 0) -> int:
        value = self.body.get(key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
            self.bad(key, f"must be an integer, not {describe(value)}")
            return 0
        if not minimum <= value <= INT32_MAX:
            self.bad(key, f"must lie between {minimum} and {INT32_MAX}")
            return 0
        return int(value)

    def boolean(self, key: str) -> bool:
        value = self.body.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.bad(key, f"must be a boolean (true or false), not {describe(value)}")
            return False
        return value

    def object(self, key: str) -> struct_pb2.Struct:
        message = struct_pb2.Struct()
        value = self.body.get(key)
        if value is None:
            return message
        if not isinstance(value, Mapping):
            self.bad(key, f"must be an object, not {describe(value)}")
            return message
        problems = plain_json_violations(value, key)
        if problems:
            self.violations.extend(problems)
        else:
            message.update(value)
        return message

    def one_of(self, *keys: str) -> str | None:
        """The one member of `keys` that is present (not null); a violation unless exactly one is."""
        given = [key for key in keys if self.body.get(key) is not None]
        if len(given) == 1:
            return given[0]
        names = ", ".join(keys[:-1]) + " or " + keys[-1]
        self.bad(keys[0], f"give exactly one of {names}" + (f" (got {', '.join(given)})" if given else ""))
        return None

    def check(self, what: str) -> None:
        if self.violations:
            count = len(self.violations)
            noun = "problem" if count == 1 else "problems"
            raise InvalidArgument(f"{what}: {count} {noun}", self.violations, reason="FIELD_INVALID")


def _request_id(call: Call, reader: BodyReader) -> str:
    return reader.string("requestId") or call.request.headers.get("idempotency-key", "")


# -- workflows ---------------------------------------------------------------------------------------


def _created(workflow: workflow_pb2.Workflow) -> dict[str, Any]:
    body = workflow_json(workflow)
    body["webhookSecret"] = workflow.webhook_secret or None
    return body


async def create_workflow(call: Call) -> JSONResponse:
    document = await call.json_body(required=True)
    request = workflow_pb2.CreateWorkflowRequest(
        definition=definition_message(document),
        request_id=call.request.headers.get("idempotency-key", ""),
    )
    try:
        reply = await call.unary(call.servicers.workflows.CreateWorkflow, request)
    except InvalidArgument as exc:
        raise renamed(exc, {"request_id": "Idempotency-Key"}) from None
    workflow = reply.workflow
    # A secret is returned only when this call created the workflow; a repeated Idempotency-Key
    # answers the existing workflow without it.
    status = 201 if workflow.webhook_secret else 200
    return JSONResponse(
        _created(workflow), status_code=status, headers={"location": f"/v1/workflows/{workflow.id}"}
    )


async def rotate_secret(call: Call) -> dict[str, Any]:
    body = await call.json_body()
    request = workflow_pb2.RotateWebhookSecretRequest(workflow_id=call.path["id"])
    overlap = body.get("overlapSeconds")
    if overlap is not None:
        if isinstance(overlap, bool) or not isinstance(overlap, int | float):
            raise InvalidArgument.single(
                "overlapSeconds", "must be a number of seconds", reason="FIELD_INVALID"
            )
        if not 0 <= overlap <= MAX_SECRET_OVERLAP_SECONDS:
            raise InvalidArgument.single(
                "overlapSeconds",
                f"must be between 0 and {MAX_SECRET_OVERLAP_SECONDS:g} (30 days)",
                reason="FIELD_INVALID",
            )
        request.overlap.FromNanoseconds(round(overlap * 1e9))
    unknown = sorted(set(body) - {"overlapSeconds"})
    if unknown:
        raise InvalidArgument.single(
            unknown[0], "is not a field of this request (only overlapSeconds)", reason="FIELD_INVALID"
        )
    try:
        reply = await call.unary(call.servicers.workflows.RotateWebhookSecret, request)
    except InvalidArgument as exc:
        raise renamed(exc, {"overlap": "overlapSeconds"}) from None
    body = _created(reply.workflow)
    body["previousSecretExpiresAt"] = (
        reply.previous_secret_expire_time.ToJsonString()
        if reply.HasField("previous_secret_expire_time")
        else None
    )
    return body


async def list_workflows(call: Call) -> dict[str, Any]:
    status = call.query("status") or ""
    if status and status not in WORKFLOW_STATUSES:
        raise InvalidArgument.single(
            "status", f"must be one of {', '.join(WORKFLOW_STATUSES)}", reason="FIELD_INVALID"
        )
    request = workflow_pb2.ListWorkflowsRequest(
        page_size=call.int_query("pageSize", 0, maximum=INT32_MAX),
        page_token=call.query("pageToken") or "",
        statuses=[workflow_pb2.WorkflowStatus.Value(f"WORKFLOW_STATUS_{status.upper()}")] if status else [],
    )
    try:
        reply = await call.unary(call.servicers.workflows.ListWorkflows, request)
    except InvalidArgument as exc:
        raise renamed(exc, LIST_NAMES) from None
    return {
        "workflows": [workflow_json(workflow) for workflow in reply.workflows],
        "nextPageToken": reply.next_page_token or None,
    }


# -- execute -----------------------------------------------------------------------------------------


def start_request(call: Call, body: Mapping[str, Any]) -> tuple[execution_pb2.StartExecutionRequest, str]:
    """The StartExecutionRequest of an execute body, and which source it names."""
    reader = BodyReader(body)
    source = reader.one_of("workflowId", "workflow", "workflowPath")
    request = execution_pb2.StartExecutionRequest(
        input=reader.object("input"),
        request_id=_request_id(call, reader),
        trace_logs=reader.boolean("traceLogs"),
        disable_breakpoints=reader.boolean("disableBreakpoints"),
        workflow_version=reader.integer("workflowVersion"),
    )
    if source == "workflowId":
        request.workflow_id = reader.string("workflowId", required=True) or ""
    elif source == "workflowPath":
        request.workflow_path = reader.string("workflowPath", required=True) or ""
    elif source == "workflow" and body["workflow"] == {}:
        reader.bad("workflow", "must be a workflow document with nodes, not an empty object")
    elif source == "workflow":
        try:
            request.definition.CopyFrom(definition_message(body["workflow"], prefix="workflow"))
        except InvalidArgument as exc:
            reader.violations.extend(exc.violations)
    reader.check("the execute request is invalid")
    return request, source or ""


async def execute(call: Call) -> dict[str, Any]:
    body = await call.json_body(required=True)
    request, source = start_request(call, body)
    try:
        reply = await call.unary(call.servicers.executions.StartExecution, request)
    except InvalidArgument as exc:
        moved = under("workflow", exc) if source == "workflow" else exc
        raise renamed(moved, EXECUTE_NAMES, deep=False) from None
    execution = reply.execution
    return {
        "success": True,
        "message": "Workflow execution started",
        "executionId": execution.id,
        "workflowId": execution.workflow_id or None,
        "status": status_word(execution.status),
    }


# -- execute a batch ---------------------------------------------------------------------------------


def batch_request(call: Call, body: Mapping[str, Any]) -> batch_pb2.StartBatchRequest:
    reader = BodyReader(body)
    source = reader.one_of("folderPath", "workflowPaths", "workflowIds")
    request = batch_pb2.StartBatchRequest(
        input=reader.object("input"),
        concurrency=reader.integer("concurrency"),
        request_id=_request_id(call, reader),
        trace_logs=reader.boolean("traceLogs"),
        disable_breakpoints=reader.boolean("disableBreakpoints"),
    )
    if source == "folderPath":
        request.folder_path = reader.string("folderPath") or ""
    elif source == "workflowPaths":
        request.workflow_paths.paths.extend(reader.strings("workflowPaths") or [])
    elif source == "workflowIds":
        request.workflow_ids.ids.extend(reader.strings("workflowIds") or [])
    reader.check("the batch request is invalid")
    return request


def _item(item: batch_resource_pb2.BatchItem) -> dict[str, Any]:
    body: dict[str, Any] = {"executionId": item.execution_id}
    if item.workflow_id:
        body["workflowId"] = item.workflow_id
    if item.workflow_file_name or item.workflow_path:
        body["workflowFileName"] = item.workflow_file_name
        body["workflowPath"] = item.workflow_path
    body["status"] = (
        status_word(item.status) if item.status != common_pb2.EXECUTION_STATUS_UNSPECIFIED else "queued"
    )
    if item.current_node_id:
        body["currentNodeId"] = item.current_node_id
    return body


def _word(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


async def execute_batch(call: Call) -> dict[str, Any]:
    body = await call.json_body(required=True)
    request = batch_request(call, body)
    try:
        reply = await call.unary(call.servicers.batches.StartBatch, request)
    except InvalidArgument as exc:
        raise renamed(exc, BATCH_NAMES, BATCH_PREFIXES, deep=False) from None
    batch = reply.batch
    answer: dict[str, Any] = {
        "success": True,
        "message": "Batch started",
        "batchId": batch.batch_id,
        "status": _word(batch_resource_pb2.BatchStatus, batch.status, "BATCH_STATUS_"),
        "sourceType": _word(batch_resource_pb2.BatchSourceType, batch.source_type, "BATCH_SOURCE_TYPE_"),
    }
    if batch.source_type == batch_resource_pb2.BATCH_SOURCE_TYPE_FOLDER:
        answer["folderPath"] = batch.folder_path
    answer.update(
        totalWorkflows=int(batch.total_workflows),
        concurrency=int(batch.concurrency),
        startTime=batch.start_time.ToMilliseconds(),
        executions=[_item(item) for item in batch.executions],
    )
    return answer


# -- declarations ------------------------------------------------------------------------------------

CREATED_SCHEMA: dict[str, Any] = {
    **WORKFLOW_SCHEMA,
    "properties": {
        **WORKFLOW_SCHEMA["properties"],
        "description": {"type": "string"},
        "createTime": {"type": "string", "format": "date-time"},
        "updateTime": {"type": "string", "format": "date-time"},
        "webhookSecret": {
            "type": "string",
            "nullable": True,
            "description": "The secret for node resume calls, shown only by this answer",
        },
    },
    "required": ["id", "status", "version", "webhookSecret"],
}
ROTATED_SCHEMA: dict[str, Any] = {
    **CREATED_SCHEMA,
    "properties": {
        **CREATED_SCHEMA["properties"],
        "previousSecretExpiresAt": {
            "type": "string",
            "format": "date-time",
            "nullable": True,
            "description": "Until when the replaced secret is still accepted; null if it stopped at once",
        },
    },
    "required": [*CREATED_SCHEMA["required"], "previousSecretExpiresAt"],
}
LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "workflows": {"type": "array", "items": WORKFLOW_SCHEMA},
        "nextPageToken": {"type": "string", "nullable": True},
    },
    "required": ["workflows", "nextPageToken"],
}
_RUN_OPTIONS: dict[str, Any] = {
    "input": {"type": "object", "description": "The run's input (expressions read it as `input`)"},
    "requestId": {"type": "string", "description": "Idempotency key (or the Idempotency-Key header)"},
    "traceLogs": {"type": "boolean"},
    "disableBreakpoints": {"type": "boolean"},
}
EXECUTE_BODY: dict[str, Any] = {
    "type": "object",
    "description": "Exactly one of workflowId, workflow, workflowPath",
    "properties": {
        "workflowId": {"type": "string"},
        "workflowVersion": {"type": "integer", "minimum": 0, "description": "With workflowId; 0 = latest"},
        "workflow": DOCUMENT_SCHEMA,
        "workflowPath": {"type": "string", "description": "A workflow file under a configured root"},
        **_RUN_OPTIONS,
    },
}
EXECUTE_RESPONSE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "message": {"type": "string"},
        "executionId": {"type": "string"},
        "workflowId": {"type": "string", "nullable": True},
        "status": {
            "type": "string",
            "enum": ["queued", "running", "paused", "completed", "error", "stopped"],
        },
    },
    "required": ["success", "message", "executionId", "workflowId", "status"],
}
BATCH_BODY: dict[str, Any] = {
    "type": "object",
    "description": "Exactly one of folderPath, workflowPaths, workflowIds",
    "properties": {
        "folderPath": {"type": "string", "description": "A folder under a configured root"},
        "workflowPaths": {"type": "array", "items": {"type": "string"}},
        "workflowIds": {"type": "array", "items": {"type": "string"}},
        "concurrency": {"type": "integer", "minimum": 0, "maximum": 100, "description": "0 = 4"},
        **_RUN_OPTIONS,
    },
}
BATCH_RESPONSE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "success": {"type": "boolean"},
        "message": {"type": "string"},
        "batchId": {"type": "string"},
        "status": {"type": "string", "enum": ["running", "completed", "error", "stopped"]},
        "sourceType": {"type": "string", "enum": ["folder", "files", "workflows"]},
        "folderPath": {"type": "string"},
        "totalWorkflows": {"type": "integer"},
        "concurrency": {"type": "integer"},
        "startTime": {"type": "integer", "description": "Unix time in milliseconds"},
        "executions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "executionId": {"type": "string"},
                    "workflowId": {"type": "string"},
                    "workflowFileName": {"type": "string"},
                    "workflowPath": {"type": "string"},
                    "status": {"type": "string"},
                    "currentNodeId": {"type": "string"},
                },
                "required": ["executionId", "status"],
            },
        },
    },
    "required": [
        "success",
        "message",
        "batchId",
        "status",
        "sourceType",
        "totalWorkflows",
        "concurrency",
        "startTime",
        "executions",
    ],
}

ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/workflows",
        create_workflow,
        "Create a workflow from a workflow document",
        "implied",
        body=DOCUMENT_SCHEMA,
        response=CREATED_SCHEMA,
        status=201,
        error_statuses=(400, 409),
    ),
    Endpoint(
        "POST",
        "/v1/workflows/{id}/rotate-secret",
        rotate_secret,
        "Replace the workflow's webhook secret; the old one keeps working for overlapSeconds (24 h)",
        "implied",
        body={
            "type": "object",
            "properties": {
                "overlapSeconds": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": MAX_SECRET_OVERLAP_SECONDS,
                    "description": "How long the replaced secret keeps working (server default if absent)",
                }
            },
            "additionalProperties": False,
        },
        response=ROTATED_SCHEMA,
        error_statuses=(400, 404),
    ),
    Endpoint(
        "GET",
        "/v1/workflows",
        list_workflows,
        "List workflows, most recently updated first",
        "implied",
        query=(
            Param("pageSize", {"type": "integer", "minimum": 0, "default": 50}, "at most 1000"),
            Param("pageToken", {"type": "string"}, "nextPageToken of the previous page"),
            Param(
                "status", {"type": "string", "enum": list(WORKFLOW_STATUSES)}, "only workflows in this status"
            ),
        ),
        response=LIST_SCHEMA,
        error_statuses=(400,),
    ),
    Endpoint(
        "POST",
        "/api/workflows/execute",
        execute,
        "Start a run of a stored workflow, an inline document or a workflow file",
        "implied",
        body=EXECUTE_BODY,
        response=EXECUTE_RESPONSE,
        error_statuses=(400, 404, 409),
        error_body=runner_error,
    ),
    Endpoint(
        "POST",
        "/api/workflows/execute/batch",
        execute_batch,
        "Start a batch from a folder, a list of workflow files or a list of workflow ids",
        "implied",
        body=BATCH_BODY,
        response=BATCH_RESPONSE,
        error_statuses=(400, 404, 409),
        error_body=runner_error,
    ),
]
