"""runctl.v1.BatchService: start, read, list, stop and clear batches."""

from __future__ import annotations

from typing import Any

from grpc import aio

from runctl.v1 import batch_pb2, batch_pb2_grpc, batch_resource_pb2
from runctl_server.api import batch_convert, convert
from runctl_server.api.context import workspace_of
from runctl_server.api.watches import BatchWatch
from runctl_server.engine.engine import Engine
from runctl_server.errors import InvalidArgument

Context = aio.ServicerContext[Any, Any]


class BatchService(BatchWatch, batch_pb2_grpc.BatchServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def StartBatch(
        self, request: batch_pb2.StartBatchRequest, context: Context
    ) -> batch_pb2.StartBatchResponse:
        source = request.WhichOneof("source")
        if source is None:
            raise InvalidArgument.single(
                "source",
                "give exactly one of folder_path, workflow_paths or workflow_ids",
                reason="FIELD_INVALID",
            )
        workspace_id = workspace_of(context)
        batch_id = await self._engine.batches.start_batch(
            workspace_id,
            folder_path=request.folder_path if source == "folder_path" else None,
            workflow_paths=list(request.workflow_paths.paths) if source == "workflow_paths" else None,
            workflow_ids=list(request.workflow_ids.ids) if source == "workflow_ids" else None,
            input=convert.struct_to_dict(request.input, "input"),
            concurrency=request.concurrency,
            request_id=request.request_id,
            trace_logs=request.trace_logs,
            disable_breakpoints=request.disable_breakpoints,
        )
        view = await self._engine.batch_queries.get(workspace_id, batch_id)
        return batch_pb2.StartBatchResponse(batch=batch_convert.batch(view))

    async def GetBatch(
        self, request: batch_pb2.GetBatchRequest, context: Context
    ) -> batch_pb2.GetBatchResponse:
        view = await self._engine.batch_queries.get(workspace_of(context), request.batch_id)
        return batch_pb2.GetBatchResponse(batch=batch_convert.batch(view))

    async def ListBatches(
        self, request: batch_pb2.ListBatchesRequest, context: Context
    ) -> batch_pb2.ListBatchesResponse:
        page = await self._engine.batch_queries.list(
            workspace_of(context),
            statuses=convert.filter_words(request.statuses, batch_resource_pb2.BatchStatus, "statuses"),
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return batch_pb2.ListBatchesResponse(
            batches=[batch_convert.batch(view) for view in page.batches],
            total_size=page.total,
            next_page_token=page.next_token,
        )

    async def StopBatch(
        self, request: batch_pb2.StopBatchRequest, context: Context
    ) -> batch_pb2.StopBatchResponse:
        counts = await self._engine.batches.stop(workspace_of(context), request.batch_id, request.reason)
        return batch_pb2.StopBatchResponse(
            batch_id=request.batch_id,
            running_stopped=counts.running_stopped,
            queued_cancelled=counts.queued_cancelled,
        )

    async def ClearBatches(
        self, request: batch_pb2.ClearBatchesRequest, context: Context
    ) -> batch_pb2.ClearBatchesResponse:
        outcome = await self._engine.batches.clear(workspace_of(context))
        return batch_pb2.ClearBatchesResponse(
            batches_deleted=outcome.batches_deleted,
            executions_deleted=outcome.executions_deleted,
            skipped_batch_ids=outcome.skipped_batch_ids,
        )
