"""The servicer objects of one server: they answer gRPC and, through the HTTP shim, HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runctl_server.api.batch_service import BatchService
from runctl_server.api.event_service import EventService
from runctl_server.api.execution_service import ExecutionService
from runctl_server.api.pause_point_service import PausePointService
from runctl_server.api.resume_links import ResumeLinks
from runctl_server.api.worker_service import WorkerService
from runctl_server.api.workflow_service import WorkflowService
from runctl_server.engine.engine import Engine


@dataclass(frozen=True)
class Servicers:
    workflows: WorkflowService
    executions: ExecutionService
    batches: BatchService
    events: EventService
    pause_points: PausePointService
    workers: WorkerService

    @classmethod
    def build(cls, engine: Engine, links: ResumeLinks) -> Servicers:
        return cls(
            workflows=WorkflowService(engine, links),
            executions=ExecutionService(engine, links),
            batches=BatchService(engine),
            events=EventService(engine),
            pause_points=PausePointService(engine, links),
            workers=WorkerService(engine),
        )

    def by_name(self) -> dict[str, Any]:
        """Each servicer under its service's name (e.g. "ExecutionService"), for registering with gRPC."""
        return {
            "WorkflowService": self.workflows,
            "ExecutionService": self.executions,
            "BatchService": self.batches,
            "EventService": self.events,
            "PausePointService": self.pause_points,
            "WorkerService": self.workers,
        }
