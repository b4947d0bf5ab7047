"""What starting a run takes: one typed request instead of a dozen loose arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class StartRequest:
    """A run to create in `workspace_id`, from exactly one of workflow_id, document or workflow_path."""

    workspace_id: str
    workflow_id: str = ""
    # Which stored version of `workflow_id` (0: its current one).
    workflow_version: int = 0
    document: Mapping[str, Any] | None = None
    workflow_path: str = ""
    input: Mapping[str, Any] | None = None
    # The same id in the same workspace answers the run the first request created.
    request_id: str = ""
    trace_logs: bool = False
    disable_breakpoints: bool = False
    batch_id: str | None = None
    # (parent execution id, parent node key) of a sub-workflow run its parent waits on.
    parent: tuple[str, str] | None = None
    # Why the run waits as queued until released with release_queued ("batch", ...); None starts it.
    queued: str | None = None
