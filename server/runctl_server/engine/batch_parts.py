"""What batches use of the rest of the engine, named one by one (never the whole Engine)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runctl_server.engine.batch_queries import BatchQueries
from runctl_server.engine.control import RunControl
from runctl_server.engine.definition import Definition
from runctl_server.engine.ended_runs import EndedRuns
from runctl_server.engine.queries import ExecutionView
from runctl_server.engine.start_request import StartRequest
from runctl_server.engine.workflows import Workflows
from runctl_server.store.reads import Reader
from runctl_server.store.writer import Writer


@dataclass(frozen=True)
class BatchParts:
    reader: Reader
    writer: Writer
    queries: BatchQueries
    control: RunControl
    workflows: Workflows
    workflows_dirs: tuple[Path, ...]
    # Parses and checks a workflow document (RunStore.parse).
    parse: Callable[[Mapping[str, Any]], Definition]
    # Checks a run's input against the limits (Engine.checked_input).
    checked_input: Callable[[Mapping[str, Any] | None], dict[str, Any]]
    start_run: Callable[[StartRequest], Awaitable[ExecutionView]]
    # Runs work as a task the engine cancels when it stops.
    in_background: Callable[[Coroutine[Any, Any, Any]], Any]
    # The views kept of ended runs: a batch's cleared runs are forgotten there.
    ended: EndedRuns[ExecutionView]
    # With replicas, the database to take the batches' advisory locks in.
    cluster_dsn: str | None
