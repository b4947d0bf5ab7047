"""ExecutionService resume calls: ResumePausePoint and ResumeNode."""

from __future__ import annotations

from typing import Any

from grpc import aio

from runctl_server.engine.engine import Engine

Context = aio.ServicerContext[Any, Any]


class ExecutionResumeCalls:
    """Mixed into ExecutionService."""

    _engine: Engine
    _base_url: str
