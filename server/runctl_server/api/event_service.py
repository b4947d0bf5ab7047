"""runctl.v1.EventService: the workspace's event log, read in pages or followed live."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from grpc import aio

from runctl.v1 import event_pb2, event_pb2_grpc
from runctl_server.api import convert, event_convert
from runctl_server.api.context import workspace_of
from runctl_server.api.watches import event_list, heartbeat, interval
from runctl_server.engine.engine import Engine
from runctl_server.engine.paging import decode_token, encode_token, page_size
from runctl_server.errors import InvalidArgument
from runctl_server.events.follow import Delivery, EventFilter, read_events

Context = aio.ServicerContext[Any, Any]


def _filter(workspace_id: str, request: Any) -> EventFilter:
    words = convert.filter_words(request.types, event_pb2.EventType, "types")
    types = frozenset(word.upper() for word in words)
    return EventFilter(
        workspace_id,
        workflow_id=request.workflow_id,
        execution_id=request.execution_id,
        batch_id=request.batch_id,
        types=types,
    )


# Serialized events messages kept for the watchers that have yet to send the same one.
RECENT_MESSAGES = 256


class EventService(event_pb2_grpc.EventServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._recent: OrderedDict[tuple[int, ...], bytes] = OrderedDict()

    async def ListEvents(
        self, request: event_pb2.ListEventsRequest, context: Context
    ) -> event_pb2.ListEventsResponse:
        if request.after_sequence < 0:
            raise InvalidArgument.single("after_sequence", "must not be negative", reason="FIELD_INVALID")
        limit = page_size(request.page_size)
        flt = _filter(workspace_of(context), request)
        filters = {
            "workflow_id": flt.workflow_id,
            "execution_id": flt.execution_id,
            "batch_id": flt.batch_id,
            "types": flt.types,
        }
        position = decode_token(request.page_token, ("s",), numbers=("s",), filters=filters)
        after = int(position["s"]) if position else request.after_sequence
        events = await read_events(self._engine.reader, flt, after, limit + 1)
        token = ""
        if len(events) > limit:
            events = events[:limit]
            token = encode_token({"s": events[-1].sequence}, filters)
        return event_pb2.ListEventsResponse(
            events=[event_convert.event(event) for event in events],
            next_page_token=token,
            head_sequence=self._engine.hub.last_sequence,
        )

    async def StreamEvents(  # type: ignore[override]  # may yield wire bytes (api/preserialized.py)
        self, request: event_pb2.StreamEventsRequest, context: Context
    ) -> AsyncIterator[event_pb2.StreamEventsResponse | bytes]:
        flt = _filter(workspace_of(context), request)
        async with self._engine.follower(flt, interval(request.heartbeat_interval)) as follower:
            truncated = False
            if request.HasField("after_sequence"):
                if request.after_sequence < 0:
                    raise InvalidArgument.single(
                        "after_sequence", "must not be negative", reason="FIELD_INVALID"
                    )
                pruned = await follower.oldest_retained()
                truncated = request.after_sequence < pruned
                cursor = max(int(request.after_sequence), pruned)
            else:
                cursor = self._engine.hub.last_sequence  # only what is committed from now on
            # At once, a heartbeat: the watcher knows the stream is open and where it starts.
            yield event_pb2.StreamEventsResponse(
                heartbeat=heartbeat(), cursor=cursor, history_truncated=truncated
            )
            async for delivery in follower.deliveries(cursor):
                if delivery.heartbeat:
                    yield event_pb2.StreamEventsResponse(heartbeat=heartbeat(), cursor=delivery.cursor)
                else:
                    yield self._encoded(delivery)

    def _encoded(self, delivery: Delivery) -> bytes:
        """The wire form of an events message. Watchers that keep up get the same events in the same
        message, so it is built and serialized once for all of them (see api/preserialized.py)."""
        key = (delivery.cursor, *(event.sequence for event in delivery.events))
        encoded = self._recent.get(key)
        if encoded is None:
            message = event_pb2.StreamEventsResponse(cursor=delivery.cursor, events=event_list(delivery))
            encoded = self._recent[key] = message.SerializeToString()
            if len(self._recent) > RECENT_MESSAGES:
                self._recent.popitem(last=False)
        return encoded
