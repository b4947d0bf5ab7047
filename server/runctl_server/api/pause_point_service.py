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
        row = await self._engine.reader.one(
            "SELECT * FROM pause_points WHERE context_id = :id AND workspace_id = :ws",
            {"id": request.context_id, "ws": workspace_of(context)},
        )
        if row is None:
            raise NotFound(f"pause point {request.context_id!r} not found", reason="PAUSE_POINT_NOT_FOUND")
        return pause_point_pb2.GetPausePointResponse(pause_point=convert.pause_point(row, self._links))

    async def ListPausePoints(
        self, request: pause_point_pb2.ListPausePointsRequest, context: Context
    ) -> pause_point_pb2.ListPausePointsResponse:
        limit = page_size(request.page_size)
        clauses = ["workspace_id = :ws"]
        params: dict[str, Any] = {"ws": workspace_of(context), "limit": limit + 1}
        expanding = []
        for column in ("workflow_id", "execution_id"):
            if getattr(request, column):
                clauses.append(f"{column} = :{column}")
                params[column] = getattr(request, column)
        kinds = convert.filter_words(request.reasons, common_pb2.PauseReason, "reasons")
        if kinds:
            clauses.append("kind IN :kinds")
            params["kinds"] = kinds
            expanding.append("kinds")
        statuses = convert.filter_words(
            request.resume_statuses, pause_point_pb2.ResumeStatus, "resume_statuses"
        )
        if statuses:
            clauses.append("status IN :statuses")
            params["statuses"] = statuses
            expanding.append("statuses")
        filters = {
            "workflow_id": request.workflow_id,
            "execution_id": request.execution_id,
            "reasons": frozenset(kinds),
            "resume_statuses": frozenset(statuses),
        }
        position = decode_token(request.page_token, ("t", "id"), filters=filters)
        if position is not None:
            clauses.append("(registered_at < :t OR (registered_at = :t AND context_id < :after_id))")
            params.update(t=position["t"], after_id=position["id"])
        rows = await self._engine.reader.all(
            f"SELECT * FROM pause_points WHERE {' AND '.join(clauses)}"  # noqa: S608
            " ORDER BY registered_at DESC, context_id DESC LIMIT :limit",
            params,
            expanding=expanding,
        )
        token = ""
        if len(rows) > limit:
            rows = rows[:limit]
            token = encode_token({"t": rows[-1]["registered_at"], "id": rows[-1]["context_id"]}, filters)
        return pause_point_pb2.ListPausePointsResponse(
            pause_points=[convert.pause_point(row, self._links) for row in rows], next_page_token=token
        )
