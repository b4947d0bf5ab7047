"""Server-sent events for plain HTTP watchers: GET /api/workflows/execution/{executionId}/events.

One SSE event per logged event of the run, oldest first: `id:` its global sequence, `event:` its type
(e.g. EXECUTION_PAUSED, NODE_COMPLETED), `data:` the Event in proto JSON, its
attributes printed as the `payload` object the event log stores. Quiet streams get comment
heartbeats. The stream ends after the event that finished the run. A client that reconnects with
`Last-Event-ID` (EventSource does so by itself) continues exactly after that event; once it has seen
the end, a reconnect answers 204, which tells EventSource to stop reconnecting.

Built on ExecutionService.WatchExecution, in-process: the same stream gRPC watchers get.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import duration_pb2
from starlette.responses import Response, StreamingResponse

from runctl.v1 import common_pb2, event_pb2, execution_pb2
from runctl_server.api import event_convert
from runctl_server.errors import InvalidArgument, RunctlError
from runctl_server.http.bridge import to_dict
from runctl_server.http.errors import runner_error
from runctl_server.http.routing import Call, Endpoint, Param

log = logging.getLogger(__name__)

E = execution_pb2
FINISHED = (
    common_pb2.EXECUTION_STATUS_COMPLETED,
    common_pb2.EXECUTION_STATUS_ERROR,
    common_pb2.EXECUTION_STATUS_STOPPED,
)
RETRY_MILLISECONDS = 1000
HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def last_event_id(call: Call) -> int | None:
    text = call.request.headers.get("last-event-id")
    if text is None or not text.strip():
        return None
    text = text.strip()
    if not text.isdigit() or len(text) > 18:
        raise InvalidArgument.single(
            "Last-Event-ID", f"must be an event sequence number, got {text!r}", reason="FIELD_INVALID"
        )
    return int(text)


def event_type(event: event_pb2.Event) -> str:
    return event_pb2.EventType.Name(event.type).removeprefix("EVENT_TYPE_")


def event_json(event: event_pb2.Event) -> dict[str, Any]:
    """The Event as this route has always printed it: proto JSON with the attributes as the
    `payload` object the event log stores (the typed `attributes` are a gRPC matter)."""
    data = to_dict(event)
    field = event.WhichOneof("attributes")
    if field is not None:
        data.pop(event.DESCRIPTOR.fields_by_name[field].json_name, None)
    data["payload"] = event_convert.payload(event)
    return data


def frame(data: Any, *, event: str, ident: int | None = None) -> str:
    lines = [f"id: {ident}"] if ident is not None else []
    lines += [f"event: {event}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    return "\n".join(lines) + "\n\n"


async def frames(stream: AsyncIterator[E.WatchExecutionResponse]) -> AsyncIterator[str]:
    """The watch stream as SSE text; an error mid-stream becomes an `error` event, then the end."""
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    try:
        async for message in stream:
            kind = message.WhichOneof("kind")
            if kind == "events":
                for event in message.events.events:
                    yield frame(event_json(event), event=event_type(event), ident=event.sequence)
            elif kind == "snapshot":  # only when the history asked for is gone
                yield frame(to_dict(message.snapshot), event="snapshot", ident=message.cursor)
            else:
                yield f": heartbeat {message.cursor}\n\n"
    except RunctlError as exc:
        yield frame(runner_error(exc), event="error")
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


async def execution_events(call: Call) -> Response:
    execution_id = call.path["executionId"]
    after = last_event_id(call)
    heartbeat = call.int_query("heartbeat", 15, minimum=1, maximum=300)
    request = E.GetExecutionRequest(execution_id=execution_id, view=E.EXECUTION_VIEW_BASIC)
    execution = (await call.unary(call.servicers.executions.GetExecution, request)).execution  # 404 first
    if after is not None and execution.status in FINISHED and after >= execution.last_sequence:
        return Response(status_code=204, headers=HEADERS)
    watch = E.WatchExecutionRequest(
        execution_id=execution_id,
        after_sequence=after or 0,
        view=E.EXECUTION_VIEW_BASIC,
        heartbeat_interval=duration_pb2.Duration(seconds=heartbeat),
    )
    stream = call.stream(call.servicers.executions.WatchExecution, watch)
    return StreamingResponse(frames(stream), media_type="text/event-stream", headers=HEADERS)


ENDPOINT = Endpoint(
    "GET",
    "/api/workflows/execution/{executionId}/events",
    execution_events,
    "Follow an execution's events as server-sent events (resumable with Last-Event-ID)",
    "implied",
    query=(Param("heartbeat", {"type": "integer", "minimum": 1, "maximum": 300, "default": 15}, "Seconds"),),
    response={
        "type": "string",
        "description": "text/event-stream: `id:` event sequence, `event:` event type, `data:` Event JSON; "
        "comment heartbeats; ends after the run's terminal event. 204 when Last-Event-ID is past the end.",
    },
    error_statuses=(400, 404),
    error_body=runner_error,
    media_type="text/event-stream",
)
