"""Every runctl.v1 service, with the servicer that answers it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from grpc import aio

from runctl.v1 import (
    batch_pb2,
    batch_pb2_grpc,
    event_pb2,
    event_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    pause_point_pb2,
    pause_point_pb2_grpc,
    worker_pb2,
    worker_pb2_grpc,
    workflow_pb2,
    workflow_pb2_grpc,
)
from runctl_server.api.unimplemented import complete_servicer


@dataclass(frozen=True)
class ServiceSpec:
    """One generated service: its descriptor module, its stubs module and its name."""

    messages: ModuleType
    stubs: ModuleType
    name: str

    @property
    def full_name(self) -> str:
        return str(self.messages.DESCRIPTOR.services_by_name[self.name].full_name)

    def base(self) -> type:
        return getattr(self.stubs, f"{self.name}Servicer")  # type: ignore[no-any-return]

    def register(self, servicer: Any, server: aio.Server) -> None:
        add: Callable[[Any, aio.Server], None] = getattr(self.stubs, f"add_{self.name}Servicer_to_server")
        descriptor = self.messages.DESCRIPTOR.services_by_name[self.name]
        add(complete_servicer(servicer, self.base(), descriptor), server)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(workflow_pb2, workflow_pb2_grpc, "WorkflowService"),
    ServiceSpec(execution_pb2, execution_pb2_grpc, "ExecutionService"),
    ServiceSpec(pause_point_pb2, pause_point_pb2_grpc, "PausePointService"),
    ServiceSpec(batch_pb2, batch_pb2_grpc, "BatchService"),
    ServiceSpec(event_pb2, event_pb2_grpc, "EventService"),
    ServiceSpec(worker_pb2, worker_pb2_grpc, "WorkerService"),
)


def register_all(server: aio.Server, servicers: dict[str, Any] | None = None) -> list[str]:
    """Register a servicer for every service (a bare one when none is given); answers the full names."""
    servicers = servicers or {}
    for spec in SERVICES:
        servicer = servicers.get(spec.name) or spec.base()()
        spec.register(servicer, server)
    return [spec.full_name for spec in SERVICES]
