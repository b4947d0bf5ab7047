"""runctl.v1.PausePointService: find and show what is waiting (resuming is ExecutionService's)."""

from __future__ import annotations

from typing import Any

from grpc import aio

from runctl.v1 import common_pb2, pause_point_pb2, pause_point_pb2_grpc
from runctl_server.api import convert
from runctl_server.api.context import workspace_of
from runctl_server.api.resume_links import ResumeLinks
from runctl_server.engine.engine import Engine
from runctl_server.engine.paging import decode_token, encode_token, page_size
from runctl_server.errors import InvalidArgument, NotFound
from runctl_server.store import pause_points

Context = aio.ServicerContext[Any, Any]


class PausePointService(pause_point_pb2_grpc.PausePointServiceServicer):
    def __init__(self, engine: Engine, links: ResumeLinks) -> None:
        self._engine = engine
        self._links = links

    async def GetPausePoint(
        self, request: pause_point_pb2.GetPausePointRequest, context: Context
    ) -> pause_point_pb2.GetPausePointResponse:
        if not request.context_id:
            raise InvalidArgument.single("context_id", "is required", reason="FIELD_REQUIRED")
        row = await pause_points.by_context(self._engine.reader, workspace_of(context), request.context_id)
        if row is None:
            raise NotFound(f"pause point {request.context_id!r} not found", reason="PAUSE_POINT_NOT_FOUND")
        return pause_point_pb2.GetPausePointResponse(pause_point=convert.pause_point(row, self._links))

    async def ListPausePoints(
        self, request: pause_point_pb2.ListPausePointsRequest, context: Context
    ) -> pause_point_pb2.ListPausePointsResponse:
        limit = page_size(request.page_size)
        kinds = convert.filter_words(request.reasons, common_pb2.PauseReason, "reasons")
        statuses = convert.filter_words(
            request.resume_statuses, pause_point_pb2.ResumeStatus, "resume_statuses"
        )
        filters = {
            "workflow_id": request.workflow_id,
            "execution_id": request.execution_id,
            "reasons": frozenset(kinds),
            "resume_statuses": frozenset(statuses),
        }
        position = decode_token(request.page_token, ("t", "id"), filters=filters)
        rows = await pause_points.page(
            self._engine.reader,
            workspace_of(context),
            limit=limit + 1,
            workflow_id=request.workflow_id,
            execution_id=request.execution_id,
            kinds=kinds,
            statuses=statuses,
            before=None if position is None else (position["t"], position["id"]),
        )
        token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            token = encode_token({"t": rows[-1].registered_at, "id": rows[-1].context_id}, filters)
        return pause_point_pb2.ListPausePointsResponse(
            pause_points=[convert.pause_point(row, self._links) for row in rows], next_page_token=token
        )
