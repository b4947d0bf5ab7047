"""runctl.v1.BatchService: start, read, list, stop and clear batches."""

from __future__ import annotations

from typing import Any

from grpc import aio

from runctl.v1 import batch_pb2_grpc
from runctl_server.engine.engine import Engine

Context = aio.ServicerContext[Any, Any]


class BatchService(batch_pb2_grpc.BatchServiceServicer):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
