"""What can happen to a run from outside its driver, one frozen class per kind (matched by the driver).

Every message may carry how to answer its sender: a future in this process (`reply`), or the run inbox
row it was read from (`inbox_id`, `inbox_sender`) when another replica sent it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from runctl_server.nodes.base import NodeFailure, NodeResult


@dataclass(frozen=True, kw_only=True)
class Message:
    """Base of every message: how its sender is answered."""

    # Meaningless to another replica: the outcome of this process's own node work or timers (a new
    # owner runs the node again and keeps its own timers), or a nudge to load the run.
    local_only: ClassVar[bool] = False

    reply: asyncio.Future[Any] | None = field(default=None, compare=False)
    # Set when the message came through the run inbox: its answer is committed to that row.
    inbox_id: int | None = None
    inbox_sender: str = ""


@dataclass(frozen=True, kw_only=True)
class Wake(Message):
    """Load the run and look at it (its inbox may hold messages)."""

    local_only: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class NodeMessage(Message):
    """A message about one node of the run."""

    node_key: str


@dataclass(frozen=True, kw_only=True)
class NodeWorkDone(NodeMessage):
    """A node run in a task of its own (not inline) finished, with a result or a failure."""

    local_only: ClassVar[bool] = True

    result: NodeResult | None = None
    error: NodeFailure | None = None
    logs: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, kw_only=True)
class TimerFired(NodeMessage):
    """A node's wake time (a delay, a retry backoff, a pause or task timeout) came."""

    local_only: ClassVar[bool] = True

    wake_at: float


@dataclass(frozen=True, kw_only=True)
class TaskCompleted(NodeMessage):
    """An external worker completed the task a node handed out."""

    task_id: str
    output: Any = None


@dataclass(frozen=True, kw_only=True)
class TaskFailed(NodeMessage):
    """An attempt of an external worker's task failed."""

    task_id: str
    error: NodeFailure


@dataclass(frozen=True, kw_only=True)
class ChildCompleted(NodeMessage):
    """The sub-workflow run a node waits on completed (or was started, when the node does not wait)."""

    output: Any = None


@dataclass(frozen=True, kw_only=True)
class ChildFailed(NodeMessage):
    """The sub-workflow run a node waits on ended otherwise than completed, or could not start."""

    error: NodeFailure


@dataclass(frozen=True, kw_only=True)
class Command(Message):
    """Run the named driver command (engine/commands.py) inside the driver; JSON arguments, so it can go
    to any replica."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    # The caller's trace context: the command's span in the run's trace links to it.
    traceparent: str | None = None
