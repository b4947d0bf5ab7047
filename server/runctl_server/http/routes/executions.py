"""The execution object API: the Execution object, one run or a page of runs.

`GET /v1/executions/{id}` answers one run (its id or its `hashid`); `GET /v1/executions` a page of
runs, newest first. The API documents the object, not the list: the list pages by token
(`limit`, `page_token` -> `next_page_token`, as ListExecutions does) and filters by `workflow_id`,
`batch_id` and `status`. `?timezone=` (an IANA name, UTC by default) sets the zone of every timestamp.
"""

from __future__ import annotations

from typing import Any

from runctl.v1 import common_pb2, execution_pb2
from runctl_server.api.convert import execution_status
from runctl_server.errors import InvalidArgument
from runctl_server.http import timefmt
from runctl_server.http.routes.execution_object import execution_id_of, execution_object
from runctl_server.http.routes.fields import renamed
from runctl_server.http.routing import Call, Endpoint, Param

DEFAULT_LIMIT = 20
# Each item of the list is a whole run (stats and template): keep a page to a reasonable size.
MAX_LIMIT = 100
STATUSES = ("queued", "running", "paused", "completed", "error", "stopped")
NODE_STATUSES = ("idle", "scheduled", "running", "waiting", "completed", "failed", "stopped", "skipped")

_TIME = {"type": "string", "format": "date-time", "nullable": True}
_NODE_STATS = {
    "type": "object",
    "description": "A node run (keyed by node id, or `loop[2].node` inside for_each bodies).",
    "properties": {
        "status": {"type": "string", "enum": list(NODE_STATUSES)},
        "scheduled_at": _TIME,
        "completed_at": _TIME,
        "stopped_at": _TIME,
        "failed_at": _TIME,
    },
    "required": ["status", "scheduled_at", "completed_at", "stopped_at", "failed_at"],
}
_EDGE_STATS = {
    "type": "object",
    "description": 'An edge (keyed "from-to"): open once taken, closed otherwise.',
    "properties": {"status": {"type": "string", "enum": ["open", "closed"]}},
    "required": ["status"],
}
EXECUTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "hashid": {"type": "string"},
        "actions_count": {"type": "integer"},
        "completed_actions_count": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "created_at_string": {"type": "string", "example": "Oct 05, 2025 11:49 pm EDT"},
        "created_at_utc": {"type": "string", "format": "date-time"},
        "execution_data": {"type": "object", "nullable": True},
        "failed_actions_count": {"type": "integer"},
        "id": {"type": "string"},
        "idle_actions_count": {"type": "integer"},
        "key": {"type": "string"},
        "log": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "message": {"type": "string"},
                        "node_id": {"type": "string", "nullable": True},
                        "code": {"type": "string"},
                    },
                },
                "nodes": {"type": "object", "additionalProperties": {"type": "array"}},
            },
        },
        "name": {"type": "string"},
        "object": {"type": "string", "enum": ["execution"]},
        "running_actions_count": {"type": "integer"},
        "stats": {"type": "object", "additionalProperties": {"oneOf": [_NODE_STATS, _EDGE_STATS]}},
        "status": {"type": "string", "enum": list(STATUSES)},
        "stopped_actions_count": {"type": "integer"},
        "template": {
            "type": "object",
            "properties": {
                "nodes": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                        },
                    },
                },
                "edges": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "from": {"type": "string"},
                            "to": {"type": "string"},
                            "when": {"type": "string", "nullable": True},
                        },
                    },
                },
                "width": {"type": "integer"},
                "height": {"type": "integer"},
                "positions": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                    },
                },
                "action_types": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
    "required": [
        "hashid",
        "actions_count",
        "completed_actions_count",
        "created_at",
        "created_at_string",
        "created_at_utc",
        "execution_data",
        "failed_actions_count",
        "id",
        "idle_actions_count",
        "key",
        "log",
        "name",
        "object",
        "running_actions_count",
        "stats",
        "status",
        "stopped_actions_count",
        "template",
    ],
}
LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "data": {"type": "array", "items": EXECUTION_SCHEMA},
        "total": {"type": "integer", "description": "Runs matching the filters, over all pages."},
        "limit": {"type": "integer"},
        "has_more": {"type": "boolean"},
        "next_page_token": {"type": "string", "nullable": True},
    },
    "required": ["object", "data", "total", "limit", "has_more", "next_page_token"],
}
TIMEZONE = Param(
    "timezone",
    {"type": "string", "default": "UTC", "example": "America/New_York"},
    "IANA time zone of created_at, created_at_string and the stats timestamps",
)


def statuses(call: Call) -> list[common_pb2.ExecutionStatus.ValueType]:
    """`?status=running,paused` or `?status=running&status=paused`."""
    words = [
        word.strip()
        for value in call.request.query_params.getlist("status")
        for word in value.split(",")
        if word.strip()
    ]
    unknown = [word for word in words if word not in STATUSES]
    if unknown:
        raise InvalidArgument.single(
            "status", f"unknown status {unknown[0]!r}; one of {', '.join(STATUSES)}", reason="FIELD_INVALID"
        )
    return [execution_status(word) for word in dict.fromkeys(words)]


async def get(call: Call) -> dict[str, Any]:
    where = timefmt.zone(call.query("timezone"))
    request = execution_pb2.GetExecutionRequest(
        execution_id=execution_id_of(call.path["id"]), view=execution_pb2.EXECUTION_VIEW_FULL
    )
    reply = await call.unary(call.servicers.executions.GetExecution, request)
    return execution_object(reply.execution, where)


async def list_executions(call: Call) -> dict[str, Any]:
    where = timefmt.zone(call.query("timezone"))
    limit = min(call.int_query("limit", DEFAULT_LIMIT, minimum=0) or DEFAULT_LIMIT, MAX_LIMIT)
    request = execution_pb2.ListExecutionsRequest(
        page_size=limit,
        page_token=call.query("page_token") or "",
        workflow_id=call.query("workflow_id") or "",
        batch_id=call.query("batch_id") or "",
        statuses=statuses(call),
        view=execution_pb2.EXECUTION_VIEW_FULL,
    )
    try:
        reply = await call.unary(call.servicers.executions.ListExecutions, request)
    except InvalidArgument as exc:
        raise renamed(exc, {"page_size": "limit", "statuses": "status"}) from None
    return {
        "object": "list",
        "data": [execution_object(execution, where) for execution in reply.executions],
        "total": int(reply.total_size),
        "limit": limit,
        "has_more": bool(reply.next_page_token),
        "next_page_token": reply.next_page_token or None,
    }


ENDPOINTS = [
    Endpoint(
        "GET",
        "/v1/executions",
        list_executions,
        "List runs as Execution objects, newest first",
        "execution object",
        query=(
            Param(
                "limit", {"type": "integer", "minimum": 0, "default": DEFAULT_LIMIT}, "page size, at most 100"
            ),
            Param("page_token", {"type": "string"}, "next_page_token of the previous page"),
            Param("workflow_id", {"type": "string"}, "only runs of this workflow"),
            Param("batch_id", {"type": "string"}, "only runs of this batch"),
            Param(
                "status",
                {"type": "string", "example": "running,paused"},
                f"only runs in these statuses (comma-separated or repeated): {', '.join(STATUSES)}",
            ),
            TIMEZONE,
        ),
        response=LIST_SCHEMA,
        error_statuses=(400,),
    ),
    Endpoint(
        "GET",
        "/v1/executions/{id}",
        get,
        "Get one run as an Execution object (by id or hashid)",
        "execution object",
        query=(TIMEZONE,),
        response=EXECUTION_SCHEMA,
    ),
]
