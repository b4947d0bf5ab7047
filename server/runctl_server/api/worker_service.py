"""runctl.v1.WorkerService: external workers poll for tasks, heartbeat, and complete or fail them.

A thin translation over engine/tasks.py (the TaskDispatcher), which owns leasing and delivery.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import duration_pb2, struct_pb2
from grpc import aio

from runctl.v1 import common_pb2, worker_pb2, worker_pb2_grpc
from runctl_server.api import convert
from runctl_server.api.context import workspace_of
from runctl_server.engine.engine import Engine
from runctl_server.engine.model import now
from runctl_server.engine.tasks import DispatchedTask

Context = aio.ServicerContext[Any, Any]


def _duration(seconds: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromNanoseconds(round(seconds * 1e9))
    return message


def _plain(message: struct_pb2.Value, field: str) -> Any:
    """A Value as plain JSON data, whole numbers as ints (Struct numbers travel as doubles)."""
    return convert.struct_to_dict(struct_pb2.Struct(fields={"value": message}), field)["value"]


def task_message(task: DispatchedTask) -> worker_pb2.Task:
    """The Task a worker is sent for a leased task."""
    return worker_pb2.Task(
        task_id=task.id,
        execution_id=task.execution_id,
        workflow_id=task.workflow_id,
        node_id=task.node_id,
        type=task.type,
        queue=task.queue,
        config=convert.struct(task.config),
        input=convert.value(task.input),
        attempt=task.attempt,
        idempotency_key=task.idempotency_key,
        heartbeat_timeout=_duration(task.heartbeat_timeout),
        stack=convert.frames(task.stack),
        deadline_time=convert.timestamp(task.deadline),
    )


class WorkerService(worker_pb2_grpc.WorkerServiceServicer):
    """Workers poll for tasks of their queues, heartbeat them, and complete or fail them."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def PollTasks(
        self, request: worker_pb2.PollTasksRequest, context: Context
    ) -> AsyncIterator[worker_pb2.PollTasksResponse]:
        # A heartbeat goes out at once when no task is ready (the worker knows it is subscribed), then
        # after every quiet spell, so a worker can tell a quiet stream from a dead one.
        stream = self._engine.tasks.poll(
            workspace_of(context), request.worker_id, list(request.queues), request.max_in_flight
        )
        # aclosing: when the worker goes away, the dispatcher forgets this stream at once.
        async with contextlib.aclosing(stream):
            async for task in stream:
                if task is None:
                    heartbeat = common_pb2.Heartbeat(time=convert.timestamp(now()))
                    yield worker_pb2.PollTasksResponse(heartbeat=heartbeat)
                else:
                    yield worker_pb2.PollTasksResponse(task=task_message(task))

    async def HeartbeatTask(
        self, request: worker_pb2.HeartbeatTaskRequest, context: Context
    ) -> worker_pb2.HeartbeatTaskResponse:
        progress = (
            convert.struct_to_dict(request.progress, "progress") if request.HasField("progress") else None
        )
        cancel = await self._engine.tasks.heartbeat(
            workspace_of(context), request.task_id, request.worker_id, progress
        )
        return worker_pb2.HeartbeatTaskResponse(cancel_requested=cancel)

    async def CompleteTask(
        self, request: worker_pb2.CompleteTaskRequest, context: Context
    ) -> worker_pb2.CompleteTaskResponse:
        output = _plain(request.output, "output") if request.HasField("output") else None
        await self._engine.tasks.complete(workspace_of(context), request.task_id, request.worker_id, output)
        return worker_pb2.CompleteTaskResponse()

    async def FailTask(
        self, request: worker_pb2.FailTaskRequest, context: Context
    ) -> worker_pb2.FailTaskResponse:
        await self._engine.tasks.fail(
            workspace_of(context),
            request.task_id,
            request.worker_id,
            request.message,
            code=request.code,
            retryable=request.retryable,
        )
        return worker_pb2.FailTaskResponse()
