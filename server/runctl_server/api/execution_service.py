"""runctl.v1.ExecutionService: starting runs and reading them; control and resume calls are mixed in."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from google.protobuf import timestamp_pb2
from grpc import aio

from runctl.v1 import common_pb2, execution_pb2, execution_pb2_grpc
from runctl_server.api import convert, event_convert
from runctl_server.api.context import workspace_of
from runctl_server.api.execution_control import ExecutionControlCalls
from runctl_server.api.execution_resume import ExecutionResumeCalls
from runctl_server.api.resume_links import ResumeLinks
from runctl_server.api.watches import ExecutionWatch
from runctl_server.engine.engine import Engine
from runctl_server.engine.queries import ExecutionView
from runctl_server.engine.start_request import StartRequest

Context = aio.ServicerContext[Any, Any]
KEPT_ANSWERS = 512


def _seconds(stamp: timestamp_pb2.Timestamp, given: bool) -> float | None:
    """A time filter as epoch seconds, None when not given."""
    return float(stamp.seconds) + stamp.nanos / 1e9 if given else None


class ExecutionService(
    ExecutionControlCalls, ExecutionResumeCalls, ExecutionWatch, execution_pb2_grpc.ExecutionServiceServicer
):
    def __init__(self, engine: Engine, links: ResumeLinks) -> None:
        self._engine = engine
        self._links = links
        # Answers made from views the engine keeps for ended runs, which it hands out again unchanged:
        # the same view object gets the same answer without converting it again.
        self._answers: OrderedDict[tuple[int, bool], tuple[ExecutionView, execution_pb2.GetExecutionResponse]]
        self._answers = OrderedDict()

    async def StartExecution(
        self, request: execution_pb2.StartExecutionRequest, context: Context
    ) -> execution_pb2.StartExecutionResponse:
        workspace_id = workspace_of(context)
        source = request.WhichOneof("source")
        started = await self._engine.start_execution(
            StartRequest(
                workspace_id=workspace_id,
                workflow_id=request.workflow_id if source == "workflow_id" else "",
                document=convert.definition_document(request.definition) if source == "definition" else None,
                workflow_path=request.workflow_path if source == "workflow_path" else "",
                input=convert.struct_to_dict(request.input, "input"),
                request_id=request.request_id,
                trace_logs=request.trace_logs,
                disable_breakpoints=request.disable_breakpoints,
                workflow_version=request.workflow_version,
            )
        )
        return execution_pb2.StartExecutionResponse(execution=convert.execution(started, full=False))

    async def GetExecution(
        self, request: execution_pb2.GetExecutionRequest, context: Context
    ) -> execution_pb2.GetExecutionResponse:
        full = request.view != execution_pb2.EXECUTION_VIEW_BASIC
        view = await self._engine.queries.execution(workspace_of(context), request.execution_id, full=full)
        key = (id(view), full)
        kept = self._answers.get(key)
        if kept is not None and kept[0] is view:
            return kept[1]
        answer = execution_pb2.GetExecutionResponse(
            execution=convert.execution(view, full=full, links=self._links)
        )
        if self._engine.queries.ended.holds(view):
            self._answers[key] = (view, answer)
            while len(self._answers) > KEPT_ANSWERS:
                self._answers.popitem(last=False)
        return answer

    async def ListExecutions(
        self, request: execution_pb2.ListExecutionsRequest, context: Context
    ) -> execution_pb2.ListExecutionsResponse:
        workspace_id = workspace_of(context)
        page = await self._engine.queries.list(
            workspace_id,
            size=request.page_size,
            token=request.page_token,
            workflow_id=request.workflow_id,
            batch_id=request.batch_id,
            statuses=convert.filter_words(request.statuses, common_pb2.ExecutionStatus, "statuses"),
            created_after=_seconds(request.create_time_after, request.HasField("create_time_after")),
            created_before=_seconds(request.create_time_before, request.HasField("create_time_before")),
        )
        full = request.view == execution_pb2.EXECUTION_VIEW_FULL
        executions = []
        tallies = {} if full else await self._engine.queries.tallies(page.rows)
        for row in page.rows:
            if full:
                executions.append(await self._execution(workspace_id, row.id, True))
            else:
                view = self._engine.queries.basic(row, tallies.get(row.id))
                executions.append(convert.execution(view, full=False))
        return execution_pb2.ListExecutionsResponse(
            executions=executions, next_page_token=page.next_token, total_size=page.total
        )

    async def GetExecutionHistory(
        self, request: execution_pb2.GetExecutionHistoryRequest, context: Context
    ) -> execution_pb2.GetExecutionHistoryResponse:
        page = await self._engine.queries.history(
            workspace_of(context),
            request.execution_id,
            after_sequence=request.after_sequence,
            size=request.page_size,
            token=request.page_token,
        )
        return execution_pb2.GetExecutionHistoryResponse(
            events=[event_convert.event(event) for event in page.events], next_page_token=page.next_token
        )
