"""The runctl client for asyncio, over grpc.aio: the one written by hand.

```python
from runctl import AsyncClient

async with AsyncClient("127.0.0.1:50051") as runctl:
    run = await runctl.start("examples/hello.json", input={"name": "Ada"})
    async for message in runctl.watch_execution(run.id):
        ...
    done = await runctl.wait(run.id, timeout=60)
```

runctl.client.Client, the synchronous client, is generated from this file by
scripts/unasync_client.py (`make generate`): edit this one, never that one.

Unary calls that fail with UNAVAILABLE are retried with exponential backoff (RetryPolicy); failures
raise runctl.errors.RpcFailure subclasses (also grpc.RpcError) with the google.rpc details unpacked.
Calls that create something send a fresh `request_id` unless given one, so a retry never creates twice.
"""

from __future__ import annotations

import os
import time
from asyncio import sleep
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from runctl.connection import DEFAULT_WATCH_RETRY, ConnectionSettings, RetryPolicy
from runctl.messages import (
    FINISHED_EXECUTION_STATUSES,
    EventType,
    ExecutionStatus,
    ExecutionView,
    ForEach,
    WorkflowSource,
    as_definition,
    new_request_id,
    resume_node_request,
    rotate_secret_request,
    start_batch_request,
    start_execution_request,
    stream_events_request,
    to_struct,
    watch_batch_request,
    watch_execution_request,
)
from runctl.v1 import (
    batch_pb2,
    batch_pb2_grpc,
    batch_resource_pb2,
    common_pb2,
    event_pb2,
    event_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    pause_point_pb2,
    pause_point_pb2_grpc,
    worker_pb2_grpc,
    workflow_pb2,
    workflow_pb2_grpc,
)
from runctl.watch import AsyncStream, Reconnects, follow_async

__all__ = ["AsyncClient"]

DEFAULT_TIMEOUT = 30.0


class AsyncClient:
    """A connection to one runctl server, with its services and convenience methods.

    `addr` is HOST:PORT (default: env RUNCTL_ADDR, then 127.0.0.1:50051). `api_key` is sent as the
    `x-api-key` metadata of every call (default: env RUNCTL_API_KEY). `tls_ca` names a PEM file of
    root certificates (default: env RUNCTL_TLS_CA); `tls=True` uses the system's roots; otherwise the
    channel is plaintext. `retry` paces the retries of unary calls on UNAVAILABLE, `watch_retry` the
    reconnects of watches; `timeout` is the deadline, in seconds, of each convenience call.

    The generated stubs are `workflows`, `executions`, `batches`, `events`, `pause_points` and
    `workers`; they share the channel, so they send the API key and retry too.
    """

    def __init__(
        self,
        addr: str | None = None,
        *,
        api_key: str | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        tls: bool = False,
        retry: RetryPolicy | None = None,
        watch_retry: RetryPolicy | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.settings = ConnectionSettings.resolve(
            addr, api_key=api_key, tls_ca=tls_ca, tls=tls, retry=retry, options=options
        )
        self.watch_retry = watch_retry or DEFAULT_WATCH_RETRY
        self.timeout = timeout
        self.channel = self.settings.aio_channel()
        self.workflows = workflow_pb2_grpc.WorkflowServiceStub(self.channel)
        self.executions = execution_pb2_grpc.ExecutionServiceStub(self.channel)
        self.batches = batch_pb2_grpc.BatchServiceStub(self.channel)
        self.events = event_pb2_grpc.EventServiceStub(self.channel)
        self.pause_points = pause_point_pb2_grpc.PausePointServiceStub(self.channel)
        self.workers = worker_pb2_grpc.WorkerServiceStub(self.channel)

    @property
    def target(self) -> str:
        """The server address, HOST:PORT."""
        return self.settings.target

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        await self.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- runs -------------------------------------------------------------------------------------

    async def start(
        self,
        source: WorkflowSource | None = None,
        *,
        workflow_id: str | None = None,
        workflow_path: str | None = None,
        input: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        trace_logs: bool = False,
        disable_breakpoints: bool = False,
        workflow_version: int = 0,
    ) -> execution_pb2.Execution:
        """Start a run and return it (QUEUED or already RUNNING).

        Give exactly one of: `source`, a local workflow file (path to JSON or YAML), a document
        (dict) or a WorkflowDefinition, sent inline; `workflow_id`, a stored workflow (at
        `workflow_version`, 0 = latest); `workflow_path`, a file under the server's workflow roots.
        """
        request = start_execution_request(
            source,
            workflow_id=workflow_id,
            workflow_path=workflow_path,
            input=input,
            request_id=request_id,
            trace_logs=trace_logs,
            disable_breakpoints=disable_breakpoints,
            workflow_version=workflow_version,
        )
        return (await self.executions.StartExecution(request, timeout=self.timeout)).execution

    async def get(
        self, execution_id: str, *, view: ExecutionView = execution_pb2.EXECUTION_VIEW_FULL
    ) -> execution_pb2.Execution:
        """One run: status, nodes, edges, data context and pause points (FULL view by default)."""
        request = execution_pb2.GetExecutionRequest(execution_id=execution_id, view=view)
        return (await self.executions.GetExecution(request, timeout=self.timeout)).execution

    async def status(self, execution_id: str) -> execution_pb2.Execution:
        """A run without its nodes, data and definition (the BASIC view): the cheap read to poll."""
        return await self.get(execution_id, view=execution_pb2.EXECUTION_VIEW_BASIC)

    async def latest(self, *, statuses: Iterable[ExecutionStatus] = ()) -> execution_pb2.Execution | None:
        """The most recently created run in one of `statuses` (any when empty), BASIC view; None when
        there is none. Calls on one run need its id: this is how to pick "the most recent" on purpose."""
        reply = await self.list_executions(
            statuses=statuses, page_size=1, view=execution_pb2.EXECUTION_VIEW_BASIC
        )
        return reply.executions[0] if reply.executions else None

    async def list_executions(
        self,
        *,
        statuses: Iterable[ExecutionStatus] = (),
        workflow_id: str = "",
        batch_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        view: ExecutionView = execution_pb2.EXECUTION_VIEW_UNSPECIFIED,
    ) -> execution_pb2.ListExecutionsResponse:
        """One page of runs, newest first, filtered by status, workflow and batch."""
        request = execution_pb2.ListExecutionsRequest(
            statuses=list(statuses),
            workflow_id=workflow_id,
            batch_id=batch_id,
            page_size=page_size,
            page_token=page_token,
            view=view,
        )
        return await self.executions.ListExecutions(request, timeout=self.timeout)

    async def wait(
        self,
        execution_id: str,
        *,
        until: Iterable[ExecutionStatus] = FINISHED_EXECUTION_STATUSES,
        timeout: float | None = None,  # noqa: ASYNC109 (the sync twin, generated from this, needs it too)
        poll_interval: float = 0.3,
    ) -> execution_pb2.Execution:
        """Poll a run until its status is one of `until` (by default: finished) and return it.

        Raises TimeoutError after `timeout` seconds (None = no limit).
        """
        wanted = frozenset(until)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            execution = await self.get(execution_id)
            if execution.status in wanted:
                return execution
            if deadline is not None and time.monotonic() >= deadline:
                status = common_pb2.ExecutionStatus.Name(execution.status)
                raise TimeoutError(f"{execution_id} is still {status} after {timeout} s")
            await sleep(poll_interval)

    async def stop(self, execution_id: str, *, reason: str = "") -> execution_pb2.StopExecutionResponse:
        """Stop a run."""
        request = execution_pb2.StopExecutionRequest(execution_id=execution_id, reason=reason)
        return await self.executions.StopExecution(request, timeout=self.timeout)

    async def continue_(self, execution_id: str) -> execution_pb2.Execution:
        """Continue a run paused at a breakpoint or a wait (ControlPause with PAUSE_ACTION_CONTINUE)."""
        return await self.control_pause(execution_pb2.PAUSE_ACTION_CONTINUE, execution_id)

    async def control_pause(
        self, action: execution_pb2.PauseAction.ValueType, execution_id: str
    ) -> execution_pb2.Execution:
        """Apply a PauseAction (continue, skip, continue without breakpoints) to a paused run."""
        request = execution_pb2.ControlPauseRequest(execution_id=execution_id, action=action)
        return (await self.executions.ControlPause(request, timeout=self.timeout)).execution

    async def pause_execution(self, execution_id: str, *, reason: str = "") -> execution_pb2.Execution:
        """An operator's pause: nodes in flight finish, no new node starts until resume_execution."""
        request = execution_pb2.PauseExecutionRequest(execution_id=execution_id, reason=reason)
        return (await self.executions.PauseExecution(request, timeout=self.timeout)).execution

    async def resume_execution(self, execution_id: str) -> execution_pb2.Execution:
        """Lift an operator's pause."""
        request = execution_pb2.ResumeExecutionRequest(execution_id=execution_id)
        return (await self.executions.ResumeExecution(request, timeout=self.timeout)).execution

    async def approve(
        self,
        context_id: str,
        values: Mapping[str, Any] | None = None,
        *,
        actor: str = "",
        request_id: str | None = None,
        execution_id: str = "",
        workflow_id: str = "",
    ) -> execution_pb2.ResumePausePointResponse:
        """Resume a pause point with values (an approval's form, or a wait's data).

        The answer's `action` is RESUME_ACTION_RESUMED, or RESUME_ACTION_SKIPPED with a `reason` when
        there was nothing to resume; values that do not fit the form raise InvalidArgumentError.
        """
        request = execution_pb2.ResumePausePointRequest(
            context_id=context_id,
            values=to_struct(values),
            actor=actor,
            request_id=request_id or new_request_id(),
            execution_id=execution_id,
            workflow_id=workflow_id,
        )
        return await self.executions.ResumePausePoint(request, timeout=self.timeout)

    async def resume_node(
        self,
        execution_id: str,
        node_id: str,
        *,
        secret: str,
        data: Mapping[str, Any] | None = None,
        for_each: Iterable[ForEach] = (),
        request_id: str | None = None,
    ) -> execution_pb2.ResumeNodeResponse:
        """Resume a waiting node with data, proving the workflow's webhook `secret`.

        Inside for-each loops `for_each` picks the iteration, outermost loop first.
        """
        request = resume_node_request(
            execution_id, node_id, secret=secret, data=data, for_each=for_each, request_id=request_id
        )
        return await self.executions.ResumeNode(request, timeout=self.timeout)

    async def history(self, execution_id: str, *, after_sequence: int = 0) -> AsyncIterator[event_pb2.Event]:
        """The logged events of a run after `after_sequence`, oldest first, fetched page by page."""
        request = execution_pb2.GetExecutionHistoryRequest(
            execution_id=execution_id, after_sequence=after_sequence, page_size=1000
        )
        while True:
            reply = await self.executions.GetExecutionHistory(request, timeout=self.timeout)
            for event in reply.events:
                yield event
            if not reply.next_page_token:
                return
            request = execution_pb2.GetExecutionHistoryRequest(
                execution_id=execution_id, page_token=reply.next_page_token, page_size=1000
            )

    async def list_events(
        self,
        *,
        after_sequence: int = 0,
        workflow_id: str = "",
        execution_id: str = "",
        batch_id: str = "",
        types: Iterable[EventType] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> event_pb2.ListEventsResponse:
        """One page of the event log after `after_sequence`, oldest first, filtered; the answer's
        `head_sequence` is where a stream_events that follows on should start."""
        request = event_pb2.ListEventsRequest(
            after_sequence=after_sequence,
            workflow_id=workflow_id,
            execution_id=execution_id,
            batch_id=batch_id,
            types=list(types),
            page_size=page_size,
            page_token=page_token,
        )
        return await self.events.ListEvents(request, timeout=self.timeout)

    async def get_pause_point(self, context_id: str) -> pause_point_pb2.PausePoint:
        """One pause point, with its form and resume links."""
        request = pause_point_pb2.GetPausePointRequest(context_id=context_id)
        return (await self.pause_points.GetPausePoint(request, timeout=self.timeout)).pause_point

    # -- batches ----------------------------------------------------------------------------------

    async def start_batch(
        self,
        folder: str | None = None,
        *,
        workflow_paths: Sequence[str] | None = None,
        workflow_ids: Sequence[str] | None = None,
        concurrency: int = 0,
        input: Mapping[str, Any] | None = None,
        request_id: str | None = None,
        trace_logs: bool = False,
        disable_breakpoints: bool = False,
    ) -> batch_resource_pb2.Batch:
        """Start a batch from a folder or files under the server's workflow roots, or stored workflows.

        `concurrency` 0 means the server's default (4).
        """
        request = start_batch_request(
            folder,
            workflow_paths=workflow_paths,
            workflow_ids=workflow_ids,
            concurrency=concurrency,
            input=input,
            request_id=request_id,
            trace_logs=trace_logs,
            disable_breakpoints=disable_breakpoints,
        )
        return (await self.batches.StartBatch(request, timeout=self.timeout)).batch

    async def get_batch(self, batch_id: str) -> batch_resource_pb2.Batch:
        """One batch with its counts and runs."""
        request = batch_pb2.GetBatchRequest(batch_id=batch_id)
        return (await self.batches.GetBatch(request, timeout=self.timeout)).batch

    async def stop_batch(self, batch_id: str, *, reason: str = "") -> batch_pb2.StopBatchResponse:
        """Stop a batch: running runs stopped, queued ones cancelled."""
        request = batch_pb2.StopBatchRequest(batch_id=batch_id, reason=reason)
        return await self.batches.StopBatch(request, timeout=self.timeout)

    async def list_batches(
        self,
        *,
        statuses: Iterable[batch_resource_pb2.BatchStatus.ValueType] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> batch_pb2.ListBatchesResponse:
        """One page of batches (in one of `statuses`, or any), newest first, without their runs."""
        request = batch_pb2.ListBatchesRequest(
            statuses=list(statuses), page_size=page_size, page_token=page_token
        )
        return await self.batches.ListBatches(request, timeout=self.timeout)

    async def clear_batches(self) -> batch_pb2.ClearBatchesResponse:
        """Delete every finished batch with its runs (running batches are kept and listed)."""
        return await self.batches.ClearBatches(batch_pb2.ClearBatchesRequest(), timeout=self.timeout)

    # -- workflows --------------------------------------------------------------------------------

    async def create_workflow(
        self, source: WorkflowSource, *, request_id: str | None = None
    ) -> workflow_pb2.Workflow:
        """Store a workflow (from a local file, a document or a definition); the answer holds its
        webhook secret, shown this once."""
        request = workflow_pb2.CreateWorkflowRequest(
            definition=as_definition(source),
            request_id=request_id or new_request_id(),
        )
        return (await self.workflows.CreateWorkflow(request, timeout=self.timeout)).workflow

    async def get_workflow(self, workflow_id: str, *, version: int = 0) -> workflow_pb2.Workflow:
        """One stored workflow at its latest (or a given) version, with its definition."""
        request = workflow_pb2.GetWorkflowRequest(workflow_id=workflow_id, version=version)
        return (await self.workflows.GetWorkflow(request, timeout=self.timeout)).workflow

    async def delete_workflow(self, workflow_id: str, *, force: bool = False) -> None:
        """Delete a workflow and all its versions; with `force`, its unfinished runs are stopped first
        (else FailedPreconditionError WORKFLOW_HAS_UNFINISHED_RUNS)."""
        request = workflow_pb2.DeleteWorkflowRequest(workflow_id=workflow_id, force=force)
        await self.workflows.DeleteWorkflow(request, timeout=self.timeout)

    async def list_workflows(
        self,
        *,
        statuses: Iterable[workflow_pb2.WorkflowStatus.ValueType] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> workflow_pb2.ListWorkflowsResponse:
        """One page of stored workflows (in one of `statuses`, or any), most recently updated first."""
        request = workflow_pb2.ListWorkflowsRequest(
            statuses=list(statuses), page_size=page_size, page_token=page_token
        )
        return await self.workflows.ListWorkflows(request, timeout=self.timeout)

    async def pause_workflow(self, workflow_id: str, *, reason: str = "") -> workflow_pb2.Workflow:
        """Pause a workflow: no new node starts in any of its runs until resume_workflow."""
        request = workflow_pb2.PauseWorkflowRequest(workflow_id=workflow_id, reason=reason)
        return (await self.workflows.PauseWorkflow(request, timeout=self.timeout)).workflow

    async def resume_workflow(self, workflow_id: str) -> workflow_pb2.Workflow:
        """Resume a paused workflow."""
        request = workflow_pb2.ResumeWorkflowRequest(workflow_id=workflow_id)
        return (await self.workflows.ResumeWorkflow(request, timeout=self.timeout)).workflow

    async def cancel_workflow(self, workflow_id: str, *, reason: str = "") -> workflow_pb2.Workflow:
        """Cancel a workflow for good: its runs stop, new starts are refused."""
        request = workflow_pb2.CancelWorkflowRequest(workflow_id=workflow_id, reason=reason)
        return (await self.workflows.CancelWorkflow(request, timeout=self.timeout)).workflow

    async def rotate_webhook_secret(
        self, workflow_id: str, *, overlap_seconds: float | None = None
    ) -> workflow_pb2.RotateWebhookSecretResponse:
        """A new webhook secret (in `.workflow.webhook_secret`, shown this once). The old one keeps
        working for `overlap_seconds` (the server's default, 24 h, when None; 0 = not at all)."""
        request = rotate_secret_request(workflow_id, overlap_seconds)
        return await self.workflows.RotateWebhookSecret(request, timeout=self.timeout)

    # -- watches ----------------------------------------------------------------------------------

    def _reconnects(self, method: str, after_sequence: int | None) -> Reconnects:
        return Reconnects(after_sequence, self.watch_retry, self.target, f"/runctl.v1.{method}")

    def watch_execution(
        self,
        execution_id: str,
        after_sequence: int | None = None,
        *,
        view: ExecutionView = execution_pb2.EXECUTION_VIEW_UNSPECIFIED,
        heartbeat_interval: float | None = None,
    ) -> AsyncIterator[execution_pb2.WatchExecutionResponse]:
        """Follow one run: a snapshot (unless `after_sequence` is given), then its events, with
        heartbeats while idle; the iterator ends after the message that finished the run.

        On UNAVAILABLE, or when the server cuts off a slow watcher, the stream is reopened with
        `after_sequence` = the last message's `cursor`, so nothing is missed or repeated.
        """

        def open_stream(after: int | None) -> AsyncStream[execution_pb2.WatchExecutionResponse]:
            request = watch_execution_request(execution_id, after, view, heartbeat_interval)
            return self.executions.WatchExecution(request)

        return follow_async(open_stream, self._reconnects("ExecutionService/WatchExecution", after_sequence))

    def watch_batch(
        self,
        batch_id: str,
        after_sequence: int | None = None,
        *,
        include_node_events: bool = False,
        heartbeat_interval: float | None = None,
    ) -> AsyncIterator[batch_pb2.WatchBatchResponse]:
        """Follow one batch: a snapshot, then its events and its runs' events; ends with the batch.

        Reconnects from the last cursor as watch_execution does.
        """

        def open_stream(after: int | None) -> AsyncStream[batch_pb2.WatchBatchResponse]:
            request = watch_batch_request(batch_id, after, include_node_events, heartbeat_interval)
            return self.batches.WatchBatch(request)

        return follow_async(open_stream, self._reconnects("BatchService/WatchBatch", after_sequence))

    def stream_events(
        self,
        after_sequence: int | None = None,
        *,
        workflow_id: str = "",
        execution_id: str = "",
        batch_id: str = "",
        types: Iterable[EventType] = (),
        heartbeat_interval: float | None = None,
    ) -> AsyncIterator[event_pb2.StreamEventsResponse]:
        """Follow the event log, filtered; replays events after `after_sequence` first when given.

        Never ends by itself; reconnects from the last cursor as watch_execution does.
        """
        kinds = list(types)

        def open_stream(after: int | None) -> AsyncStream[event_pb2.StreamEventsResponse]:
            request = stream_events_request(
                after,
                workflow_id=workflow_id,
                execution_id=execution_id,
                batch_id=batch_id,
                types=kinds,
                heartbeat_interval=heartbeat_interval,
            )
            return self.events.StreamEvents(request)

        return follow_async(open_stream, self._reconnects("EventService/StreamEvents", after_sequence))
