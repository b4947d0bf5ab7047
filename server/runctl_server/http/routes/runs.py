"""The node resume API: resume a waiting node with the workflow's webhook secret.

`POST /v1/runs/{id}/nodes/{nodeId}/resume?secret=` with `{"data": {...}, "forEachContext": {"stack":
[{"index", "parentNodeId", "total"}], "index", "parentNodeId", "total"}}` (both members optional; the
flat fields are the legacy single-loop form, read only when `stack` is empty) answers 200
`{"action": "resumed" | "skipped", "reason": "..."}` (reason "" when resumed).

ResumeNode takes only `stack`: this route turns the legacy flat fields into a stack of one frame, and
names that frame's problems by the flat fields the caller sent (`forEachContext.parentNodeId`).

A missing or empty `secret` is 401, not 400: the secret is the call's credential, and a request
without its credential is unauthenticated (as ExecutionService.ResumeNode answers UNAUTHENTICATED
over gRPC). A wrong secret is 401 too, an unknown run or node 404, a malformed body 400 with a field
violation per problem. `Authorization: Bearer` is passed on with the call like any credential header.
An `Idempotency-Key` header becomes ResumeNode's `request_id`: a retry of the call that resumed the
node answers "resumed" again instead of "skipped".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

from runctl.v1 import common_pb2, execution_pb2
from runctl_server.errors import FieldViolation, InvalidArgument, describe
from runctl_server.http.routes.fields import renamed
from runctl_server.http.routes.workflow_document import plain_json_violations
from runctl_server.http.routing import Call, Endpoint, Param

INT32_MAX = 2**31 - 1
ACTIONS = {execution_pb2.RESUME_ACTION_RESUMED: "resumed", execution_pb2.RESUME_ACTION_SKIPPED: "skipped"}
# The servicer's field names -> this route's (path parameters and the body's camelCase).
HTTP_NAMES = {
    "for_each_context": "forEachContext",
    "parent_node_id": "parentNodeId",
    "execution_id": "id",
    "node_id": "nodeId",
    "request_id": "Idempotency-Key",
}

_FRAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "index": {"type": "integer", "minimum": 0, "description": "Current iteration index (0, 1, 2...)"},
        "parentNodeId": {"type": "string", "description": 'For-each node ID (e.g., "for_each_send")'},
        "total": {"type": "integer", "minimum": 0, "description": "Total iterations"},
    },
}
BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Resume payload",
    "properties": {
        "data": {"type": "object", "description": "Becomes the node's output"},
        "forEachContext": {
            "type": "object",
            "properties": {
                "stack": {
                    "type": "array",
                    "items": _FRAME_SCHEMA,
                    "description": "Nesting levels from outermost to innermost",
                },
                "index": {"type": "integer", "description": "Legacy; read only when stack is empty"},
                "parentNodeId": {"type": "string", "description": "Legacy; read only when stack is empty"},
                "total": {"type": "integer", "description": "Legacy; read only when stack is empty"},
            },
        },
    },
}
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["resumed", "skipped"]},
        "reason": {"type": "string"},
    },
    "required": ["action", "reason"],
}


class _Body:
    """Reads the resume body, collecting a violation per bad field."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []
        # The forEachContext came in the legacy flat form, sent on as a stack of one frame.
        self.legacy = False

    def integer(self, raw: Mapping[str, Any], key: str, path: str) -> int:
        value = raw.get(key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
            self.violations.append(FieldViolation(path, f"must be an integer, not {describe(value)}"))
            return 0
        if not 0 <= value <= INT32_MAX:
            self.violations.append(FieldViolation(path, f"must lie between 0 and {INT32_MAX}"))
            return 0
        return int(value)

    def string(self, raw: Mapping[str, Any], key: str, path: str) -> str:
        value = raw.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.violations.append(FieldViolation(path, f"must be a string, not {describe(value)}"))
            return ""
        return value

    def frame(self, raw: Any, path: str) -> common_pb2.ForEachFrame:
        if not isinstance(raw, Mapping):
            self.violations.append(FieldViolation(path, f"must be an object, not {describe(raw)}"))
            return common_pb2.ForEachFrame()
        return common_pb2.ForEachFrame(
            index=self.integer(raw, "index", f"{path}.index"),
            parent_node_id=self.string(raw, "parentNodeId", f"{path}.parentNodeId"),
            total=self.integer(raw, "total", f"{path}.total"),
        )

    def for_each_context(self, raw: Any) -> common_pb2.ForEachContext | None:
        path = "forEachContext"
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            self.violations.append(FieldViolation(path, f"must be an object, not {describe(raw)}"))
            return None
        stack = raw.get("stack")
        frames: list[common_pb2.ForEachFrame] = []
        if isinstance(stack, list):
            frames = [self.frame(level, f"{path}.stack[{depth}]") for depth, level in enumerate(stack)]
        elif stack is not None:
            self.violations.append(
                FieldViolation(f"{path}.stack", f"must be an array, not {describe(stack)}")
            )
        legacy = self.frame(raw, path)
        if not frames and (legacy.parent_node_id or legacy.index):
            self.legacy = True
            frames = [legacy]
        return common_pb2.ForEachContext(stack=frames)

    def data(self, raw: Any) -> struct_pb2.Struct:
        message = struct_pb2.Struct()
        if raw is None:
            return message
        if not isinstance(raw, Mapping):
            self.violations.append(FieldViolation("data", f"must be an object, not {describe(raw)}"))
            return message
        problems = plain_json_violations(raw, "data")
        if problems:
            self.violations.extend(problems)
            return message
        message.update(raw)
        return message


def resume_request(
    call_path: Mapping[str, str], secret: str, body: Mapping[str, Any]
) -> tuple[execution_pb2.ResumeNodeRequest, bool]:
    """The ResumeNodeRequest of a node resume call, and whether its forEachContext was in the legacy
    flat form; InvalidArgument with every bad field of the body."""
    reader = _Body()
    data = reader.data(body.get("data"))
    context = reader.for_each_context(body.get("forEachContext"))
    if reader.violations:
        count = len(reader.violations)
        noun = "problem" if count == 1 else "problems"
        raise InvalidArgument(
            f"resume payload is invalid: {count} {noun}", reader.violations, reason="FIELD_INVALID"
        )
    request = execution_pb2.ResumeNodeRequest(
        execution_id=call_path["id"], node_id=call_path["nodeId"], secret=secret, data=data
    )
    if context is not None:
        request.for_each_context.CopyFrom(context)
    return request, reader.legacy


async def resume(call: Call) -> dict[str, Any]:
    body = await call.json_body()
    request, legacy = resume_request(call.path, call.query("secret") or "", body)
    request.request_id = call.request.headers.get("idempotency-key", "")
    try:
        reply = await call.unary(call.servicers.executions.ResumeNode, request)
    except InvalidArgument as exc:
        # The frame this route made of the flat fields is named as the caller sent it.
        prefixes = [("for_each_context.stack[0]", "forEachContext")] if legacy else []
        raise renamed(exc, HTTP_NAMES, prefixes) from None
    return {"action": ACTIONS.get(reply.action, "skipped"), "reason": reply.reason}


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/runs/{id}/nodes/{nodeId}/resume",
        resume,
        "Resume a waiting node in a workflow run",
        "node resume",
        query=(Param("secret", {"type": "string"}, "Per-workflow webhook secret", required=True),),
        body=BODY_SCHEMA,
        response=RESPONSE_SCHEMA,
        error_statuses=(400, 401, 404),
    ),
]
