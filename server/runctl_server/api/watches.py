"""The server-streaming watches: WatchExecution, WatchBatch and StreamEvents.

Each starts with what a watcher needs to render the present (a snapshot), unless it resumes from a
cursor, then sends every event in order; a quiet stream gets heartbeats. Every message carries the
cursor to resume from.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import duration_pb2
from grpc import aio

from runctl.v1 import batch_pb2, common_pb2, event_pb2, execution_pb2
from runctl_server.api import batch_convert, convert, event_convert
from runctl_server.api.context import workspace_of
from runctl_server.api.resume_links import ResumeLinks
from runctl_server.engine.engine import Engine
from runctl_server.engine.model import FINISHED_EXECUTION
from runctl_server.errors import InvalidArgument
from runctl_server.events.follow import (
    TERMINAL_EXECUTION_EVENTS,
    Delivery,
    EventFilter,
    Follower,
    heartbeat_seconds,
)

Context = aio.ServicerContext[Any, Any]
TERMINAL_BATCH_EVENTS = frozenset({"BATCH_COMPLETED"})


def interval(duration: duration_pb2.Duration) -> float:
    return heartbeat_seconds(duration.seconds + duration.nanos / 1e9)


def heartbeat() -> common_pb2.Heartbeat:
    beat = common_pb2.Heartbeat()
    beat.time.FromNanoseconds(time.time_ns())
    return beat


def event_list(delivery: Delivery) -> event_pb2.EventList:
    return event_pb2.EventList(events=[event_convert.shared(event) for event in delivery.events])


async def _start(follower: Follower, request: Any) -> tuple[int | None, bool]:
    """The cursor a watcher asked to resume from (None: send a snapshot), and whether the history
    after it is gone (then a snapshot is sent all the same)."""
    if not request.HasField("after_sequence"):
        return None, False
    if request.after_sequence < 0:
        raise InvalidArgument.single("after_sequence", "must not be negative", reason="FIELD_INVALID")
    truncated = request.after_sequence < await follower.oldest_retained()
    return (None if truncated else int(request.after_sequence)), truncated


class ExecutionWatch:
    """Mixed into ExecutionService."""

    _engine: Engine
    _links: ResumeLinks

    async def WatchExecution(
        self, request: execution_pb2.WatchExecutionRequest, context: Context
    ) -> AsyncIterator[execution_pb2.WatchExecutionResponse]:
        if not request.execution_id:
            raise InvalidArgument.single("execution_id", "is required", reason="FIELD_REQUIRED")
        workspace_id = workspace_of(context)
        full = request.view != execution_pb2.EXECUTION_VIEW_BASIC
        queries = self._engine.queries
        flt = EventFilter(workspace_id, execution_id=request.execution_id)
        async with self._engine.follower(flt, interval(request.heartbeat_interval)) as follower:
            cursor, truncated = await _start(follower, request)
            if cursor is None:
                view = await queries.execution(workspace_id, request.execution_id, full=full)
                cursor = view.last_sequence
                snapshot = convert.execution(view, full=full, links=self._links)
                yield execution_pb2.WatchExecutionResponse(
                    snapshot=snapshot, cursor=cursor, history_truncated=truncated
                )
                if view.row.status in FINISHED_EXECUTION:
                    return
            else:
                run = await queries.status(workspace_id, request.execution_id)
                if run.status in FINISHED_EXECUTION and cursor >= await queries.last_sequence(run.id):
                    return  # the watcher has seen the end already
            async for delivery in follower.deliveries(cursor):
                if delivery.heartbeat:
                    yield execution_pb2.WatchExecutionResponse(heartbeat=heartbeat(), cursor=delivery.cursor)
                    continue
                yield execution_pb2.WatchExecutionResponse(
                    events=event_list(delivery), cursor=delivery.cursor
                )
                if any(event.type in TERMINAL_EXECUTION_EVENTS for event in delivery.events):
                    return


class BatchWatch:
    """Mixed into BatchService."""

    _engine: Engine

    async def WatchBatch(
        self, request: batch_pb2.WatchBatchRequest, context: Context
    ) -> AsyncIterator[batch_pb2.WatchBatchResponse]:
        if not request.batch_id:
            raise InvalidArgument.single("batch_id", "is required", reason="FIELD_REQUIRED")
        workspace_id = workspace_of(context)
        batches = self._engine.batch_queries
        flt = EventFilter(
            workspace_id, batch_id=request.batch_id, without_node_events=not request.include_node_events
        )
        async with self._engine.follower(flt, interval(request.heartbeat_interval)) as follower:
            cursor, truncated = await _start(follower, request)
            if cursor is None:
                view = await batches.get(workspace_id, request.batch_id)
                cursor = view.last_sequence
                yield batch_pb2.WatchBatchResponse(
                    snapshot=batch_convert.batch(view), cursor=cursor, history_truncated=truncated
                )
                if await self._over(request.batch_id, view.row.status):
                    return
            else:
                row = await batches.row(workspace_id, request.batch_id)  # NOT_FOUND for an unknown one
                if await self._over(request.batch_id, row.status):
                    ended = await batches.get(workspace_id, request.batch_id, items=False)
                    if cursor >= ended.last_sequence:
                        return  # the watcher has seen the end already
            stopping = False
            async for delivery in follower.deliveries(cursor):
                if delivery.heartbeat:
                    yield batch_pb2.WatchBatchResponse(heartbeat=heartbeat(), cursor=delivery.cursor)
                    continue
                yield batch_pb2.WatchBatchResponse(events=event_list(delivery), cursor=delivery.cursor)
                types = {event.type for event in delivery.events}
                if types & TERMINAL_BATCH_EVENTS:
                    return
                stopping = stopping or "BATCH_STOPPED" in types
                ends_runs = types & (TERMINAL_EXECUTION_EVENTS | {"BATCH_STOPPED"})
                if stopping and ends_runs and await self._over(request.batch_id, "stopped"):
                    return

    async def _over(self, batch_id: str, status: str) -> bool:
        """A batch's stream ends once it completed, or it was stopped and its last run has ended."""
        if status == "completed":
            return True
        return status == "stopped" and (await self._engine.batch_queries.counts(batch_id)).active == 0
